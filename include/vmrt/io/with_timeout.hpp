// Timeouts composed at the call site (Boost 1.81 has no asio::cancel_after): runs a deferred
// asynchronous operation against a steady_timer and cancels whichever loses.
//
//   auto [ec, status] = co_await with_timeout(proc.async_wait(asio::deferred), 5s);
//   if (ec == vmrt::errc::timeout) ...
//
// The operation must complete with an error_code first (void(error_code, T...)). On expiry the
// operation is cancelled (terminal cancellation through the parallel group), its own results are
// returned as they came back, and the error code is replaced by vmrt::errc::timeout.
#pragma once

#include <vmrt/error.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <tuple>
#include <utility>

namespace vmrt::io {

namespace detail {
template <typename Signature>
struct timeout_result;

template <typename... Args>
struct timeout_result<void(error_code, Args...)> {
    using type = std::tuple<error_code, std::decay_t<Args>...>;
};

template <typename Tuple, std::size_t... I>
auto drop_order_and_timer(Tuple&& t, std::index_sequence<I...>) {
    // The group's result is (order, op results..., timer error): keep the op results.
    return std::make_tuple(std::get<I + 1>(std::forward<Tuple>(t))...);
}
}  // namespace detail

template <typename Op>
auto with_timeout(Op op, std::chrono::steady_clock::duration timeout) -> boost::asio::awaitable<
    typename detail::timeout_result<boost::asio::completion_signature_of_t<Op>>::type> {
    namespace asio = boost::asio;
    using result_type = typename detail::timeout_result<asio::completion_signature_of_t<Op>>::type;

    asio::steady_timer timer(co_await asio::this_coro::executor, timeout);
    auto all =
        co_await asio::experimental::make_parallel_group(std::move(op), timer.async_wait(asio::deferred))
            .async_wait(asio::experimental::wait_for_one(), asio::use_awaitable);

    constexpr auto op_results = std::tuple_size_v<result_type>;
    result_type result = detail::drop_order_and_timer(std::move(all), std::make_index_sequence<op_results>{});
    if (std::get<0>(all)[0] == 1)  // the timer finished first
        std::get<0>(result) = make_error_code(errc::timeout);
    co_return result;
}

}  // namespace vmrt::io
