// Glue between vmrt's coroutine bodies (compiled once, in .cpp files) and the completion-token
// API of the public classes: runs an awaitable that yields (error_code, T) and completes a
// type-erased handler on the handler's own associated executor, with the handler's cancellation
// slot connected to the coroutine.
#pragma once

#include <vmrt/error.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/append.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/system/system_error.hpp>

#include <exception>
#include <utility>

namespace vmrt::detail {

/// Maps an exception escaping a coroutine body onto an error code.
error_code exception_to_error(std::exception_ptr e) noexcept;

template <typename T>
void run_op(boost::asio::any_io_executor ex, boost::asio::awaitable<std::pair<error_code, T>> body,
            boost::asio::any_completion_handler<void(error_code, T)> handler) {
    auto slot = boost::asio::get_associated_cancellation_slot(handler);
    boost::asio::co_spawn(
        ex, std::move(body),
        boost::asio::bind_cancellation_slot(
            slot, [h = std::move(handler)](std::exception_ptr e, std::pair<error_code, T> r) mutable {
                if (e) r = {exception_to_error(e), T{}};
                auto hex = boost::asio::get_associated_executor(h);
                boost::asio::dispatch(hex, boost::asio::append(std::move(h), r.first, std::move(r.second)));
            }));
}

}  // namespace vmrt::detail
