// file_tail on real files in a private temp directory: every way a serial log grows, is created,
// truncated or replaced, plus cancellation and close. Every wait is bounded (with_timeout and
// run_coro's hard limit), so a missed inotify wake-up fails a test instead of hanging it.
#include "io/inotify_hub.hpp"
#include "support/test_support.hpp"

#include <vmrt/io/file_tail.hpp>
#include <vmrt/io/readiness.hpp>
#include <vmrt/io/with_timeout.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

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

// Waits (bounded) for every one of many callback-style reads to complete.
asio::awaitable<void> wait_for_all(const std::vector<std::shared_ptr<recorded>>& results) {
    auto all_done = [&] {
        return std::all_of(results.begin(), results.end(), [](const auto& r) { return r->ec.has_value(); });
    };
    for (int i = 0; i < 100 && !all_done(); ++i) co_await pause(50ms);
}

// The inotify instances this process holds: what fs.inotify.max_user_instances counts.
std::size_t open_inotify_instances() {
    std::size_t count = 0;
    for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
        std::error_code ec;
        if (std::filesystem::read_symlink(entry.path(), ec) == "anon_inode:inotify" && !ec) ++count;
    }
    return count;
}

// Runs `ctx` until `done()` or `limit`; returns early if the context runs out of work.
template <typename Predicate>
void run_until(asio::io_context& ctx, Predicate done, std::chrono::milliseconds limit = read_limit) {
    ctx.restart();
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done() && std::chrono::steady_clock::now() < deadline)
        if (ctx.run_one_until(deadline) == 0 && ctx.stopped()) break;
}

// Runs `ctx` until it runs out of work or `limit`.
void run_until_idle(asio::io_context& ctx, std::chrono::milliseconds limit) {
    auto never = [] {
        return false;
    };
    run_until(ctx, never, limit);
}

// A hub subscriber that only counts its wake-ups (all on the test's thread).
struct counting_subscriber final : vmrt::io::detail::inotify_subscriber {
    int wakeups = 0;
    void on_inotify_wakeup() override { ++wakeups; }
};

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

// Far more tails than fs.inotify.max_user_instances (128 here) would allow with an instance
// each: they share one. Thirty tails per directory also share that directory's watch.
BOOST_AUTO_TEST_CASE(many_tails_share_one_inotify_instance) {
    temp_dir dir;
    constexpr int count = 300;
    std::vector<std::filesystem::path> files;
    for (int i = 0; i < count; ++i) {
        auto vm_dir = dir / ("vm" + std::to_string(i % 10));
        std::filesystem::create_directories(vm_dir);
        files.push_back(vm_dir / ("serial" + std::to_string(i) + ".log"));
    }
    run_coro([&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        std::vector<file_tail> tails;
        tails.reserve(count);
        for (const auto& file : files) tails.emplace_back(ex, file);
        auto instances = open_inotify_instances();
        BOOST_TEST(instances <= 2u, instances << " inotify instances for " << count << " tails");

        // First the files are created (the directories' shared watches wake the right tail),
        // then they grow (each file's own watch).
        for (int step = 0; step < 2; ++step) {
            const std::string line = step == 0 ? "created " : "appended ";
            std::vector<std::shared_ptr<recorded>> results;
            for (auto& tail : tails) {
                auto result = std::make_shared<recorded>();
                results.push_back(result);
                tail.async_read(recorder(result));
            }
            co_await drain_posted();
            for (int i = 0; i < count; ++i) append_file(files[i], line + std::to_string(i) + "\n");
            co_await wait_for_all(results);
            for (int i = 0; i < count; ++i) {
                BOOST_TEST_REQUIRE(results[i]->ec.has_value(), "tail " << i << " was not woken");
                BOOST_TEST(!*results[i]->ec);
                BOOST_TEST(results[i]->chunk.data == line + std::to_string(i) + "\n");
            }
        }
        instances = open_inotify_instances();
        BOOST_TEST(instances <= 2u, instances << " inotify instances for " << count << " tails");
    });
}

BOOST_AUTO_TEST_CASE(tails_of_files_in_one_directory_do_not_steal_events) {
    temp_dir dir;
    const auto a = dir / "a.log", b = dir / "b.log", c = dir / "c.log";
    write_file(a, "");
    write_file(b, "");
    run_coro([&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        // One directory watch for all four, one file watch for the two tails of a.log.
        std::optional<file_tail> on_a(std::in_place, ex, a), on_b(std::in_place, ex, b);
        file_tail also_on_a(ex, a), on_c(ex, c);
        auto ra = std::make_shared<recorded>(), rb = std::make_shared<recorded>();
        auto ra2 = std::make_shared<recorded>(), rc = std::make_shared<recorded>();
        on_a->async_read(recorder(ra));
        on_b->async_read(recorder(rb));
        also_on_a.async_read(recorder(ra2));
        on_c.async_read(recorder(rc));
        co_await drain_posted();

        append_file(a, "for a\n");
        co_await wait_for(ra);
        co_await wait_for(ra2);
        BOOST_TEST_REQUIRE(ra->ec.has_value());
        BOOST_TEST_REQUIRE(ra2->ec.has_value());
        BOOST_TEST(ra->chunk.data == "for a\n");
        BOOST_TEST(ra2->chunk.data == "for a\n");
        co_await pause(quiet_period);
        BOOST_TEST(!rb->ec);  // still waiting, and still able to hear about b.log
        BOOST_TEST(!rc->ec);

        append_file(b, "for b\n");
        co_await wait_for(rb);
        BOOST_TEST_REQUIRE(rb->ec.has_value());
        BOOST_TEST(rb->chunk.data == "for b\n");

        // Closing one of a.log's tails leaves the shared file watch to the other; destroying
        // b.log's leaves the directory watch to c.log's.
        on_a->close();
        on_b.reset();
        auto chunk = co_await (next_chunk(also_on_a) && append_after(20ms, a, "again\n"));
        BOOST_TEST(chunk.data == "again\n");
        append_file(b, "nobody reads this\n");
        co_await pause(quiet_period);
        BOOST_TEST(!rc->ec);
        write_file(c, "c exists\n");
        co_await wait_for(rc);
        BOOST_TEST_REQUIRE(rc->ec.has_value());
        BOOST_TEST(!*rc->ec);
        BOOST_TEST(rc->chunk.data == "c exists\n");
    });
}

// Tails on many strands of a two-thread io_context are destroyed at every point of their reads
// while a writer keeps appending: wake-ups race with destruction on the other thread. Meant for
// the ASan and TSan builds; in any build, run() must return once every tail is gone.
BOOST_AUTO_TEST_CASE(destroying_a_tail_while_events_arrive) {
    temp_dir dir;
    constexpr int file_count = 4, actors = 12;
    constexpr auto duration = 500ms;
    std::vector<std::filesystem::path> files;
    for (int i = 0; i < file_count; ++i) {
        files.push_back(dir / ("serial" + std::to_string(i) + ".log"));
        write_file(files.back(), "");
    }
    // Each file grows about every 0.8 ms: a tail that caught up waits on the hub, briefly.
    std::atomic<bool> stop{false};
    std::thread writer([&] {
        for (unsigned i = 0; !stop.load(); ++i) {
            append_file(files[i % file_count], "line " + std::to_string(i) + "\n");
            if (i % 500 == 499) {  // not truncate_to(): Boost.Test checks are for the main thread
                [[maybe_unused]] int rc = ::truncate(files[i % file_count].c_str(), 0);
            }
            std::this_thread::sleep_for(200us);
        }
    });

    asio::io_context ctx;
    const auto deadline = std::chrono::steady_clock::now() + duration;
    std::atomic<int> finished{0};
    std::mutex abandoned_mutex;
    std::vector<std::shared_ptr<recorded>> abandoned;  // reads outstanding when their tail died
    for (int actor = 0; actor < actors; ++actor) {
        auto body = [&, actor]() -> asio::awaitable<void> {
            auto ex = co_await asio::this_coro::executor;
            for (int round = 0; std::chrono::steady_clock::now() < deadline; ++round) {
                auto result = std::make_shared<recorded>();
                {
                    std::lock_guard lock(abandoned_mutex);
                    abandoned.push_back(result);
                }
                file_tail tail(ex, files[(actor + round) % file_count]);
                // The first read takes the backlog, the next ones wait for the writer.
                for (int i = 0; i < round % 4; ++i)
                    co_await tail.async_read(asio::as_tuple(asio::use_awaitable));
                tail.async_read(recorder(result));
                switch (round % 5) {
                case 0:
                    break;  // destroyed while the hub reads for it
                case 1:
                    co_await asio::post(ex, asio::use_awaitable);
                    break;
                case 2:
                    co_await pause(std::chrono::milliseconds(round % 3));
                    break;
                case 3:
                    co_await pause(1ms);
                    tail.close();
                    break;
                default:
                    co_await (pause(1ms) || pause(2ms));
                    break;
                }
            }
            ++finished;
        };
        asio::co_spawn(asio::make_strand(ctx), body, asio::detached);
    }
    auto start = std::chrono::steady_clock::now();
    std::thread second([&] { ctx.run_for(20s); });
    ctx.run_for(20s);
    second.join();
    auto took = std::chrono::steady_clock::now() - start;
    stop = true;
    writer.join();

    BOOST_TEST(finished.load() == actors);
    BOOST_TEST(took < 15s, "run() kept running after the last tail was gone");
    std::size_t aborted = 0, read = 0;
    for (const auto& result : abandoned) {
        BOOST_TEST_REQUIRE(result->ec.has_value(), "a read never completed");
        (*result->ec ? aborted : read) += 1;
    }
    BOOST_TEST_MESSAGE(abandoned.size() << " tails destroyed: " << aborted << " with a read waiting, " << read
                                        << " with a read that had completed");
    BOOST_TEST(aborted > 0u);
}

// The hub itself: one inode watched for different events by two subscribers, which is what the
// tails of one directory do, with masks that differ.
BOOST_AUTO_TEST_CASE(subscribers_of_one_inode_keep_their_events_and_their_watch) {
    using vmrt::io::detail::inotify_subscription;
    temp_dir dir;
    std::filesystem::create_directory(dir / "sub");
    asio::io_context ctx;
    auto creations = std::make_shared<counting_subscriber>();
    auto deletions = std::make_shared<counting_subscriber>();
    inotify_subscription on_create(ctx.get_executor(), creations), on_delete(ctx.get_executor(), deletions);
    error_code ec;
    on_create.add_watch(dir.path().c_str(), IN_CREATE, {}, ec);
    BOOST_TEST_REQUIRE(!ec);
    // Same directory, same wd: without IN_MASK_ADD this would drop the first mask.
    auto deletion_watch = on_delete.add_watch(dir.path().c_str(), IN_DELETE, {}, ec);
    BOOST_TEST_REQUIRE(!ec);

    BOOST_TEST(!on_create.wait());
    BOOST_TEST(!on_delete.wait());
    write_file(dir / "f", "");
    run_until(ctx, [&] { return creations->wakeups > 0; });
    run_until_idle(ctx, quiet_period);
    BOOST_TEST(creations->wakeups == 1);
    BOOST_TEST(deletions->wakeups == 0);

    BOOST_TEST(!on_create.wait());
    std::filesystem::remove(dir / "f");
    run_until(ctx, [&] { return deletions->wakeups > 0; });
    BOOST_TEST(deletions->wakeups == 1);
    BOOST_TEST(creations->wakeups == 1);  // still waiting: the deletion is not its business

    // The wd has another subscriber: it must stay in the kernel.
    on_delete.remove_watch(deletion_watch);
    write_file(dir / "g", "");
    run_until(ctx, [&] { return creations->wakeups > 1; });
    BOOST_TEST(creations->wakeups == 2);

    // A watch the kernel drops (its directory is deleted) is reported as lost.
    auto sub_watch = on_delete.add_watch((dir / "sub").c_str(), IN_CREATE, {}, ec);
    BOOST_TEST_REQUIRE(!ec);
    BOOST_TEST(!on_delete.wait());
    std::filesystem::remove(dir / "sub");
    run_until(ctx, [&] { return deletions->wakeups > 1; });
    BOOST_TEST(deletions->wakeups == 2);
    auto lost = on_delete.take_lost();
    BOOST_TEST_REQUIRE(lost.size() == 1u);
    BOOST_TEST(lost[0] == sub_watch);

    // Nobody waits: the context runs out of work at once, and a wake-up already posted to a
    // destroyed subscriber is dropped.
    BOOST_TEST(!on_create.wait());
    write_file(dir / "h", "");
    run_until_idle(ctx, quiet_period);  // posts the wake-up, which runs
    BOOST_TEST(creations->wakeups == 3);
    BOOST_TEST(!on_create.wait());
    write_file(dir / "i", "");
    std::weak_ptr<counting_subscriber> gone = creations;
    creations.reset();
    auto start = std::chrono::steady_clock::now();
    run_until_idle(ctx, 10s);
    BOOST_TEST(gone.expired());
    on_create.close();
    on_delete.close();
    run_until_idle(ctx, 10s);
    auto took = std::chrono::steady_clock::now() - start;
    BOOST_TEST(took < 5s, "the hub kept the context busy");
}

// An idle tail (no read outstanding) must not keep io_context::run() from returning.
BOOST_AUTO_TEST_CASE(idle_tails_let_run_return) {
    temp_dir dir;
    asio::io_context ctx;
    file_tail idle(ctx.get_executor(), dir / "idle.log");
    file_tail cancelled(ctx.get_executor(), dir / "cancelled.log");
    asio::cancellation_signal signal;
    auto result = std::make_shared<recorded>();
    cancelled.async_read(asio::bind_cancellation_slot(signal.slot(), recorder(result)));
    ctx.run_for(quiet_period);  // the read waits
    BOOST_TEST(!result->ec);
    signal.emit(asio::cancellation_type::terminal);
    auto start = std::chrono::steady_clock::now();
    ctx.restart();
    ctx.run_for(10s);
    auto took = std::chrono::steady_clock::now() - start;
    BOOST_TEST(took < 5s, "an idle tail kept the context busy");
    BOOST_TEST_REQUIRE(result->ec.has_value());
    BOOST_TEST(*result->ec == asio::error::operation_aborted);
}

BOOST_AUTO_TEST_SUITE_END()
