// file_tail on real files in a private temp directory: every way a serial log grows, is created,
// truncated or replaced, plus cancellation and close. Every wait is bounded (with_timeout and
// run_coro's hard limit), so a missed inotify wake-up fails a test instead of hanging it.
#include "support/test_support.hpp"

#include <vmrt/io/file_tail.hpp>
#include <vmrt/io/readiness.hpp>
#include <vmrt/io/with_timeout.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <tuple>

namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;
using vmrt::error_code;
using vmrt::io::file_tail;
using vmrt::io::tail_chunk;
using vmrt::test::append_file;
using vmrt::test::run_coro;
using vmrt::test::temp_dir;
using vmrt::test::write_file;

// Long enough never to fire on a healthy run, short enough to fail fast on a lost wake-up.
constexpr auto read_limit = 5s;
// How long "nothing arrives" is observed.
constexpr auto quiet_period = 150ms;

asio::awaitable<std::tuple<error_code, tail_chunk>> read_for(file_tail& tail,
                                                             std::chrono::milliseconds limit) {
    co_return co_await vmrt::io::with_timeout(tail.async_read(asio::deferred), limit);
}

asio::awaitable<tail_chunk> next_chunk(file_tail& tail) {
    auto [ec, chunk] = co_await read_for(tail, read_limit);
    BOOST_TEST_REQUIRE(!ec, "read failed: " << ec.message());
    BOOST_TEST(chunk.data.size() <= file_tail::max_chunk_bytes);
    BOOST_TEST((chunk.reset || !chunk.data.empty()), "a chunk without bytes must be a reset");
    co_return chunk;
}

asio::awaitable<void> expect_nothing(file_tail& tail) {
    auto [ec, chunk] = co_await read_for(tail, quiet_period);
    BOOST_TEST(ec == make_error_code(vmrt::errc::timeout),
               "unexpected read: " << ec.message() << " '" << chunk.data << "'");
}

// What a reader saw, with each reset written as "<reset>": compares the whole story at once.
asio::awaitable<std::string> read_story(file_tail& tail, const std::string& until) {
    std::string story;
    while (story.size() < until.size() ||
           story.compare(story.size() - until.size(), until.size(), until) != 0) {
        auto chunk = co_await next_chunk(tail);
        if (chunk.reset) story += "<reset>";
        story += chunk.data;
    }
    co_return story;
}

asio::awaitable<void> pause(std::chrono::milliseconds d) {
    asio::steady_timer timer(co_await asio::this_coro::executor, d);
    co_await timer.async_wait(asio::use_awaitable);
}

asio::awaitable<void> append_after(std::chrono::milliseconds d, std::filesystem::path file,
                                   std::string contents) {
    co_await pause(d);
    append_file(file, contents);
}

void truncate_to(const std::filesystem::path& file, off_t size) {
    BOOST_REQUIRE(::truncate(file.c_str(), size) == 0);
}

// A read's result recorded by a plain callback; shared so that a late completion (the test
// failed and unwound) never writes into a dead stack frame.
struct recorded {
    std::optional<error_code> ec;
    tail_chunk chunk;
};

auto recorder(const std::shared_ptr<recorded>& r) {
    return [r](error_code ec, tail_chunk chunk) {
        r->ec = ec;
        r->chunk = std::move(chunk);
    };
}

// Waits (bounded) for a callback-style read to complete.
asio::awaitable<void> wait_for(const std::shared_ptr<recorded>& r) {
    for (int i = 0; i < 100 && !r->ec; ++i) co_await pause(50ms);
}

// Lets everything already posted run (the io_context runs handlers in FIFO order).
asio::awaitable<void> drain_posted() {
    for (int i = 0; i < 3; ++i) co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(file_tail_test)

BOOST_AUTO_TEST_CASE(reads_what_was_written_before_it_started) {
    temp_dir dir;
    write_file(dir / "serial.log", "line one\nline two\n");
    run_coro([&]() -> asio::awaitable<void> {
        file_tail tail(co_await asio::this_coro::executor, dir / "serial.log");
        BOOST_TEST(tail.path() == dir / "serial.log");
        auto chunk = co_await next_chunk(tail);
        BOOST_TEST(!chunk.reset);
        BOOST_TEST(chunk.data == "line one\nline two\n");
        co_await expect_nothing(tail);
    });
}

BOOST_AUTO_TEST_CASE(available_data_completes_the_read_but_never_inline) {
    temp_dir dir;
    write_file(dir / "serial.log", "ready\n");
    run_coro([&]() -> asio::awaitable<void> {
        file_tail tail(co_await asio::this_coro::executor, dir / "serial.log");
        auto result = std::make_shared<recorded>();
        tail.async_read(recorder(result));
        BOOST_TEST(!result->ec);  // not inside async_read itself
        co_await drain_posted();
        BOOST_TEST_REQUIRE(result->ec.has_value());
        BOOST_TEST(!*result->ec);
        BOOST_TEST(result->chunk.data == "ready\n");
    });
}

BOOST_AUTO_TEST_CASE(an_append_wakes_the_read_promptly) {
    temp_dir dir;
    write_file(dir / "serial.log", "");
    run_coro([&]() -> asio::awaitable<void> {
        file_tail tail(co_await asio::this_coro::executor, dir / "serial.log");
        co_await expect_nothing(tail);
        auto start = std::chrono::steady_clock::now();
        auto chunk = co_await (next_chunk(tail) && append_after(100ms, dir / "serial.log", "hello\n"));
        auto waited = std::chrono::steady_clock::now() - start;
        BOOST_TEST(chunk.data == "hello\n");
        BOOST_TEST(!chunk.reset);
        // 100 ms until the write, then an inotify wake-up, not a polling period.
        BOOST_TEST(waited < 1s);
    });
}

BOOST_AUTO_TEST_CASE(the_file_may_be_created_after_the_tail_starts) {
    temp_dir dir;
    run_coro([&]() -> asio::awaitable<void> {
        file_tail tail(co_await asio::this_coro::executor, dir / "serial.log");
        co_await expect_nothing(tail);
        auto chunk = co_await (next_chunk(tail) && append_after(50ms, dir / "serial.log", "first\n"));
        BOOST_TEST(!chunk.reset);  // nothing was read before: nothing to start over
        BOOST_TEST(chunk.data == "first\n");
    });
}

BOOST_AUTO_TEST_CASE(a_missing_directory_is_an_error) {
    temp_dir dir;
    asio::io_context ctx;
    BOOST_CHECK_THROW(file_tail(ctx.get_executor(), dir / "no-such-dir" / "serial.log"),
                      boost::system::system_error);
}

BOOST_AUTO_TEST_CASE(a_line_split_across_two_writes) {
    temp_dir dir;
    run_coro([&]() -> asio::awaitable<void> {
        file_tail tail(co_await asio::this_coro::executor, dir / "serial.log");
        vmrt::io::readiness_parser parser;
        append_file(dir / "serial.log", "VMRS_READY 10.0");
        auto chunk = co_await next_chunk(tail);
        BOOST_TEST(parser.feed(chunk.data).empty());
        co_await pause(100ms);
        append_file(dir / "serial.log", ".2.15\n");
        chunk = co_await next_chunk(tail);
        BOOST_TEST(chunk.data == ".2.15\n");
        auto events = parser.feed(chunk.data);
        BOOST_TEST_REQUIRE(events.size() == 1u);
        BOOST_TEST(*events[0].ip == "10.0.2.15");
    });
}

BOOST_AUTO_TEST_CASE(a_large_backlog_comes_in_bounded_chunks_in_order) {
    temp_dir dir;
    std::string backlog;
    for (int i = 0; backlog.size() < 3 * file_tail::max_chunk_bytes + 100; ++i)
        backlog += "console line " + std::to_string(i) + "\n";
    write_file(dir / "serial.log", backlog);
    run_coro([&]() -> asio::awaitable<void> {
        file_tail tail(co_await asio::this_coro::executor, dir / "serial.log");
        auto story = co_await read_story(tail, backlog.substr(backlog.size() - 20));
        BOOST_TEST(story == backlog);  // next_chunk checked each chunk against the bound
    });
}

BOOST_AUTO_TEST_CASE(truncation_gives_a_reset) {
    temp_dir dir;
    write_file(dir / "serial.log", "old boot output\n");
    run_coro([&]() -> asio::awaitable<void> {
        file_tail tail(co_await asio::this_coro::executor, dir / "serial.log");
        BOOST_TEST((co_await next_chunk(tail)).data == "old boot output\n");
        truncate_to(dir / "serial.log", 0);
        auto chunk = co_await next_chunk(tail);
        BOOST_TEST(chunk.reset);
        BOOST_TEST(chunk.data.empty());
        append_file(dir / "serial.log", "new\n");
        chunk = co_await next_chunk(tail);
        BOOST_TEST(!chunk.reset);
        BOOST_TEST(chunk.data == "new\n");
    });
}

BOOST_AUTO_TEST_CASE(truncate_and_rewrite_gives_a_reset_then_the_new_bytes) {
    temp_dir dir;
    write_file(dir / "serial.log", "a long first boot\n");
    run_coro([&]() -> asio::awaitable<void> {
        file_tail tail(co_await asio::this_coro::executor, dir / "serial.log");
        co_await next_chunk(tail);
        write_file(dir / "serial.log", "boot 2\n");  // O_TRUNC then write: seen together or apart
        BOOST_TEST(co_await read_story(tail, "boot 2\n") == "<reset>boot 2\n");
    });
}

BOOST_AUTO_TEST_CASE(rotation_drains_the_old_file_then_resets) {
    temp_dir dir;
    const auto log = dir / "serial.log";
    write_file(log, "old 1\n");
    run_coro([&]() -> asio::awaitable<void> {
        file_tail tail(co_await asio::this_coro::executor, log);
        BOOST_TEST((co_await next_chunk(tail)).data == "old 1\n");
        // More than one chunk is still unread in the old file when a new one takes its name.
        const std::string old_rest = std::string(2 * file_tail::max_chunk_bytes, 'o') + "\n";
        append_file(log, old_rest);
        write_file(dir / "serial.log.new", "new 1\n");
        std::filesystem::rename(dir / "serial.log.new", log);
        BOOST_TEST(co_await read_story(tail, "new 1\n") == old_rest + "<reset>new 1\n");
        append_file(log, "new 2\n");
        BOOST_TEST(co_await read_story(tail, "new 2\n") == "new 2\n");
    });
}

BOOST_AUTO_TEST_CASE(rotation_while_a_read_is_waiting) {
    temp_dir dir;
    const auto log = dir / "serial.log";
    write_file(log, "old\n");
    run_coro([&]() -> asio::awaitable<void> {
        file_tail tail(co_await asio::this_coro::executor, log);
        co_await next_chunk(tail);
        auto rotate = [&]() -> asio::awaitable<void> {
            co_await pause(50ms);
            write_file(dir / "next.log", "new\n");
            std::filesystem::rename(dir / "next.log", log);
        };
        auto story = co_await (read_story(tail, "new\n") && rotate());
        BOOST_TEST(story == "<reset>new\n");
    });
}

BOOST_AUTO_TEST_CASE(delete_and_recreate) {
    temp_dir dir;
    const auto log = dir / "serial.log";
    write_file(log, "first life\n");
    run_coro([&]() -> asio::awaitable<void> {
        file_tail tail(co_await asio::this_coro::executor, log);
        BOOST_TEST((co_await next_chunk(tail)).data == "first life\n");
        std::filesystem::remove(log);
        co_await expect_nothing(tail);  // a name without a file: wait for the next one
        auto story = co_await (read_story(tail, "second life\n") && append_after(50ms, log, "second life\n"));
        BOOST_TEST(story == "<reset>second life\n");
    });
}

BOOST_AUTO_TEST_CASE(other_files_of_the_directory_are_ignored) {
    temp_dir dir;
    write_file(dir / "serial.log", "x\n");
    run_coro([&]() -> asio::awaitable<void> {
        file_tail tail(co_await asio::this_coro::executor, dir / "serial.log");
        co_await next_chunk(tail);
        auto churn = [&]() -> asio::awaitable<void> {
            co_await pause(20ms);
            write_file(dir / "other.log", "noise\n");
            std::filesystem::rename(dir / "other.log", dir / "other2.log");
            std::filesystem::remove(dir / "other2.log");
        };
        co_await (expect_nothing(tail) && churn());
    });
}

BOOST_AUTO_TEST_CASE(cancelling_a_pending_read_loses_no_data) {
    temp_dir dir;
    const auto log = dir / "serial.log";
    write_file(log, "");
    run_coro([&]() -> asio::awaitable<void> {
        asio::cancellation_signal signal;
        file_tail tail(co_await asio::this_coro::executor, log);
        auto result = std::make_shared<recorded>();
        tail.async_read(asio::bind_cancellation_slot(signal.slot(), recorder(result)));
        co_await pause(20ms);
        BOOST_TEST(!result->ec);  // still waiting: nothing was written
        // The bytes are written, and the read cancelled before the tail could notice them.
        append_file(log, "VMRS_READY 10.0.0.2\n");
        signal.emit(asio::cancellation_type::terminal);
        BOOST_TEST(!result->ec);  // never completed inline
        co_await drain_posted();
        BOOST_TEST_REQUIRE(result->ec.has_value());
        BOOST_TEST(*result->ec == asio::error::operation_aborted);
        BOOST_TEST(result->chunk.data.empty());
        // A signal emitted again must not touch a later read that is not bound to it.
        auto chunk = co_await next_chunk(tail);
        signal.emit(asio::cancellation_type::terminal);
        BOOST_TEST(chunk.data == "VMRS_READY 10.0.0.2\n");
        co_await (expect_nothing(tail) && [&]() -> asio::awaitable<void> {
            co_await pause(20ms);
            signal.emit(asio::cancellation_type::total);
        }());
    });
}

BOOST_AUTO_TEST_CASE(cancellation_then_a_new_read_waits_again) {
    temp_dir dir;
    const auto log = dir / "serial.log";
    write_file(log, "");
    run_coro([&]() -> asio::awaitable<void> {
        file_tail tail(co_await asio::this_coro::executor, log);
        for (int i = 0; i < 3; ++i) co_await expect_nothing(tail);  // with_timeout cancels each read
        auto chunk = co_await (next_chunk(tail) && append_after(50ms, log, "late\n"));
        BOOST_TEST(chunk.data == "late\n");
    });
}

BOOST_AUTO_TEST_CASE(one_read_at_a_time) {
    temp_dir dir;
    run_coro([&]() -> asio::awaitable<void> {
        file_tail tail(co_await asio::this_coro::executor, dir / "serial.log");
        auto first = std::make_shared<recorded>(), second = std::make_shared<recorded>();
        tail.async_read(recorder(first));
        tail.async_read(recorder(second));
        co_await drain_posted();
        BOOST_TEST(!first->ec);
        BOOST_TEST_REQUIRE(second->ec.has_value());
        BOOST_TEST(*second->ec == asio::error::already_started);
        append_file(dir / "serial.log", "data\n");
        co_await wait_for(first);
        BOOST_TEST_REQUIRE(first->ec.has_value());
        BOOST_TEST(first->chunk.data == "data\n");
    });
}

BOOST_AUTO_TEST_CASE(close_during_a_read) {
    temp_dir dir;
    run_coro([&]() -> asio::awaitable<void> {
        file_tail tail(co_await asio::this_coro::executor, dir / "serial.log");
        auto result = std::make_shared<recorded>();
        tail.async_read(recorder(result));
        co_await pause(20ms);
        tail.close();
        BOOST_TEST(!result->ec);
        co_await drain_posted();
        BOOST_TEST_REQUIRE(result->ec.has_value());
        BOOST_TEST(*result->ec == asio::error::operation_aborted);
        auto [ec, chunk] = co_await read_for(tail, read_limit);
        BOOST_TEST(ec == asio::error::bad_descriptor);
    });
}

BOOST_AUTO_TEST_CASE(destroying_the_tail_during_a_read) {
    temp_dir dir;
    run_coro([&]() -> asio::awaitable<void> {
        auto result = std::make_shared<recorded>();
        {
            file_tail tail(co_await asio::this_coro::executor, dir / "serial.log");
            tail.async_read(recorder(result));
            co_await pause(20ms);
        }
        append_file(dir / "serial.log", "after\n");  // must wake nothing that still exists
        co_await pause(50ms);
        BOOST_TEST_REQUIRE(result->ec.has_value());
        BOOST_TEST(*result->ec == asio::error::operation_aborted);
    });
}

BOOST_AUTO_TEST_CASE(a_moved_tail_keeps_following) {
    temp_dir dir;
    write_file(dir / "serial.log", "one\n");
    run_coro([&]() -> asio::awaitable<void> {
        file_tail first(co_await asio::this_coro::executor, dir / "serial.log");
        BOOST_TEST((co_await next_chunk(first)).data == "one\n");
        file_tail second(std::move(first));
        append_file(dir / "serial.log", "two\n");
        BOOST_TEST((co_await next_chunk(second)).data == "two\n");
    });
}

// Many more directory events than the inotify queue holds, while a read waits: the event that
// announces our data is lost in the overflow, and IN_Q_OVERFLOW must still wake the read.
BOOST_AUTO_TEST_CASE(an_inotify_queue_overflow_loses_nothing) {
    long max_events = 16384;
    std::ifstream("/proc/sys/fs/inotify/max_queued_events") >> max_events;
    if (max_events > 200000) return;  // too slow to overflow here; nothing to prove
    temp_dir dir;
    write_file(dir / "serial.log", "");
    run_coro([&]() -> asio::awaitable<void> {
        file_tail tail(co_await asio::this_coro::executor, dir / "serial.log");
        auto result = std::make_shared<recorded>();
        tail.async_read(recorder(result));
        co_await pause(20ms);
        const auto noise = dir / "noise";
        for (long i = 0; i < max_events / 2 + 100; ++i) {  // two events (create, delete) each
            int fd = ::open(noise.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
            BOOST_REQUIRE(fd >= 0);
            ::close(fd);
            ::unlink(noise.c_str());
        }
        append_file(dir / "serial.log", "after the flood\n");
        co_await wait_for(result);
        BOOST_TEST_REQUIRE(result->ec.has_value());
        BOOST_TEST(!*result->ec);
        BOOST_TEST(result->chunk.data == "after the flood\n");
    });
}

// The way the VM actor uses the two together: the tail's chunks feed the parser, and a reset
// makes the parser start over.
BOOST_AUTO_TEST_CASE(end_to_end_with_the_readiness_parser) {
    temp_dir dir;
    const auto log = dir / "serial.log";
    run_coro([&]() -> asio::awaitable<void> {
        file_tail tail(co_await asio::this_coro::executor, log);
        vmrt::io::readiness_parser parser;

        auto guest = [&]() -> asio::awaitable<void> {
            for (std::string piece : {"[    0.000000] Linux version 6.1.0 #1 SMP\r\n", "systemd[1]: Start",
                                      "ing...\r\nVMRS_REA", "DY fd00::", "2\r\n", "login: "}) {
                append_file(log, piece);
                co_await pause(10ms);
            }
        };
        auto host = [&]() -> asio::awaitable<std::string> {
            while (true) {
                auto chunk = co_await next_chunk(tail);
                if (chunk.reset) parser.reset();
                for (const auto& event : parser.feed(chunk.data))
                    if (event.what == vmrt::io::serial_event::kind::ready) co_return *event.ip;
            }
        };
        auto ip = co_await (host() && guest());
        BOOST_TEST(ip == "fd00::2");

        // The log is replaced for the next boot: the parser starts over and sees it reboot.
        write_file(dir / "boot2.log", "[    0.000000] Linux version 6.1.0 #1 SMP\nVMRS_READY 10.0.0.7\n");
        std::filesystem::rename(dir / "boot2.log", log);
        auto chunk = co_await next_chunk(tail);
        while (!chunk.reset) chunk = co_await next_chunk(tail);  // "login: " may still be unread
        parser.reset();
        BOOST_TEST(!parser.is_ready());
        std::string rest = chunk.data;
        while (rest.find("10.0.0.7\n") == std::string::npos) rest += (co_await next_chunk(tail)).data;
        auto events = parser.feed(rest);
        BOOST_TEST_REQUIRE(events.size() == 1u);  // a banner before Ready is no reboot
        BOOST_TEST(*parser.ready_ip() == "10.0.0.7");
        BOOST_TEST(parser.last_lines().back() == "VMRS_READY 10.0.0.7");
    });
}

BOOST_AUTO_TEST_SUITE_END()
