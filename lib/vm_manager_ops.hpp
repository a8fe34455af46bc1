// The common shape of vm_manager's per-VM operations (shared by vm_manager*.cpp).
#pragma once

#include "vm_actor.hpp"

#include <vmrt/detail/async_op.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/awaitable.hpp>

#include <memory>
#include <utility>

namespace vmrt::detail {

namespace asio = boost::asio;

template <typename T>
asio::awaitable<std::pair<error_code, T>> immediate(error_code ec, T value) {
    co_return std::pair{ec, std::move(value)};
}

// Runs `op(actor)` (an awaitable<T>) on the actor's strand; the coroutine owns the actor, so the
// VM's state outlives the operation even if the VM is removed meanwhile.
template <typename T, typename Op>
asio::awaitable<std::pair<error_code, T>> on_actor(std::shared_ptr<detail::vm_actor> actor, Op op) {
    // A named local, not `std::pair{..., co_await ...}`: GCC 12 mishandles temporaries of a braced
    // initialiser that suspends (they can be destroyed twice).
    T value = co_await op(*actor);
    co_return std::pair<error_code, T>(error_code{}, std::move(value));
}

// The common shape of the per-VM operations: not_found for an unknown name, else the operation
// on the VM's strand.
template <typename T, typename Op>
void run_vm_op(asio::any_io_executor ex, std::shared_ptr<detail::vm_actor> actor, T not_found_value,
               asio::any_completion_handler<void(error_code, T)> h, Op op) {
    if (!actor)
        return detail::run_op<T>(ex, immediate(make_error_code(errc::not_found), std::move(not_found_value)),
                                 std::move(h));
    auto strand = actor->strand();
    detail::run_op<T>(strand, on_actor<T>(std::move(actor), std::move(op)), std::move(h));
}

}  // namespace vmrt::detail
