// The small async building blocks: with_timeout, the broadcast channel, atomic file writes.
#include "support/test_support.hpp"

#include <vmrt/io/atomic_file.hpp>
#include <vmrt/io/broadcast_channel.hpp>
#include <vmrt/io/with_timeout.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/test/unit_test.hpp>

#include <thread>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using vmrt::test::run_coro;

BOOST_AUTO_TEST_SUITE(async_core_test)

BOOST_AUTO_TEST_CASE(with_timeout_passes_results_through) {
    run_coro([]() -> asio::awaitable<void> {
        asio::steady_timer t(co_await asio::this_coro::executor, 10ms);
        auto [ec] = co_await vmrt::io::with_timeout(t.async_wait(asio::deferred), 5s);
        BOOST_TEST(!ec);
    });
}

BOOST_AUTO_TEST_CASE(with_timeout_reports_timeout_and_cancels_the_operation) {
    run_coro([]() -> asio::awaitable<void> {
        asio::steady_timer t(co_await asio::this_coro::executor, 1h);
        auto begin = std::chrono::steady_clock::now();
        auto [ec] = co_await vmrt::io::with_timeout(t.async_wait(asio::deferred), 20ms);
        BOOST_TEST((ec == vmrt::errc::timeout));
        BOOST_TEST((std::chrono::steady_clock::now() - begin < 5s));  // the hour-long wait was cancelled
    });
}

BOOST_AUTO_TEST_CASE(broadcast_delivers_everything_in_order_to_every_subscriber) {
    run_coro([]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        vmrt::io::broadcast_channel<int> ch;
        auto a = ch.subscribe(ex);
        auto b = ch.subscribe(ex);
        for (int i = 0; i < 100; ++i) ch.publish(i);
        for (int i = 0; i < 100; ++i) {
            auto [ea, va] = co_await a.async_next(asio::as_tuple(asio::use_awaitable));
            auto [eb, vb] = co_await b.async_next(asio::as_tuple(asio::use_awaitable));
            BOOST_TEST(!ea);
            BOOST_TEST(va == i);
            BOOST_TEST(vb == i);
        }
        auto late = ch.subscribe(ex);  // sees only what is published after it subscribed
        ch.publish(1000);
        auto [el, vl] = co_await late.async_next(asio::as_tuple(asio::use_awaitable));
        BOOST_TEST(vl == 1000);
    });
}

BOOST_AUTO_TEST_CASE(broadcast_bounds_a_lagging_subscriber) {
    run_coro([]() -> asio::awaitable<void> {
        vmrt::io::broadcast_channel<int> ch(8);
        auto slow = ch.subscribe(co_await asio::this_coro::executor);
        for (int i = 0; i < 100; ++i) ch.publish(i);
        BOOST_TEST(slow.dropped() == 92u);
        auto [ec, v] = co_await slow.async_next(asio::as_tuple(asio::use_awaitable));
        BOOST_TEST(v == 92);  // the newest 8 are kept
    });
}

BOOST_AUTO_TEST_CASE(broadcast_wait_is_woken_by_publish_from_another_thread) {
    run_coro([]() -> asio::awaitable<void> {
        vmrt::io::broadcast_channel<int> ch;
        auto sub = ch.subscribe(co_await asio::this_coro::executor);
        std::thread publisher([&] {
            std::this_thread::sleep_for(20ms);
            ch.publish(42);
        });
        auto [ec, v] = co_await sub.async_next(asio::as_tuple(asio::use_awaitable));
        publisher.join();
        BOOST_TEST(!ec);
        BOOST_TEST(v == 42);
    });
}

BOOST_AUTO_TEST_CASE(broadcast_cancel_and_close) {
    run_coro([]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        vmrt::io::broadcast_channel<int> ch;
        auto sub = ch.subscribe(ex);
        asio::cancellation_signal cancel;
        asio::steady_timer t(ex, 10ms);
        t.async_wait([&](auto) { cancel.emit(asio::cancellation_type::terminal); });
        auto [ec, v] = co_await sub.async_next(
            asio::bind_cancellation_slot(cancel.slot(), asio::as_tuple(asio::use_awaitable)));
        BOOST_TEST((ec == asio::error::operation_aborted));
        ch.publish(5);  // nothing lost by the cancellation
        auto [ec2, v2] = co_await sub.async_next(asio::as_tuple(asio::use_awaitable));
        BOOST_TEST(v2 == 5);
        ch.close();
        auto [ec3, v3] = co_await sub.async_next(asio::as_tuple(asio::use_awaitable));
        BOOST_TEST((ec3 == asio::error::eof));
    });
}

BOOST_AUTO_TEST_CASE(atomic_write_replaces_and_leaves_no_temp_file) {
    vmrt::test::temp_dir dir;
    auto target = dir / "state.json";
    vmrt::io::write_file_atomically(target, "first");
    vmrt::io::write_file_atomically(target, "second");
    BOOST_TEST(vmrt::test::read_file(target) == "second");
    int entries = 0;
    for ([[maybe_unused]] auto& e : std::filesystem::directory_iterator(dir.path())) ++entries;
    BOOST_TEST(entries == 1);
}

BOOST_AUTO_TEST_CASE(atomic_write_failure_keeps_the_old_contents) {
    vmrt::test::temp_dir dir;
    auto target = dir / "data";
    vmrt::io::write_file_atomically(target, "precious");
    vmrt::error_code ec;
    // The rename cannot replace a non-empty directory: the old contents must stay and no temp remain.
    std::filesystem::create_directory(dir / "blocker");
    vmrt::test::write_file(dir / "blocker" / "x", "");
    vmrt::io::write_file_atomically(dir / "blocker", "new", std::filesystem::perms::owner_all, ec);
    BOOST_TEST(!!ec);
    BOOST_TEST(vmrt::test::read_file(target) == "precious");
    int entries = 0;
    for ([[maybe_unused]] auto& e : std::filesystem::directory_iterator(dir.path())) ++entries;
    BOOST_TEST(entries == 2);  // "data" and "blocker", no temp file
    vmrt::io::write_file_atomically(dir / "missing-dir" / "f", "x", std::filesystem::perms::owner_all, ec);
    BOOST_TEST((ec == boost::system::errc::no_such_file_or_directory));
}

BOOST_AUTO_TEST_SUITE_END()
