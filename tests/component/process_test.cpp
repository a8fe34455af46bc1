// vmrt::io::process with real children: the helper program vmrt-test-child (see
// tests/helpers/test_child.cpp) plays every part. Each process is owned by a `process` (killed
// and reaped by its destructor) or by an orphan_guard, so that a failing test leaves nothing.
#include "support/test_support.hpp"

#include <vmrt/io/process.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/channel.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/readable_pipe.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using vmrt::error_code;
using vmrt::exit_status;
using vmrt::io::process;
using vmrt::io::process_options;
using vmrt::test::run_coro;
using result_channel = asio::experimental::channel<void(boost::system::error_code, exit_status)>;

constexpr auto p_pidfd = static_cast<idtype_t>(3);  // P_PIDFD

process_options child(std::vector<std::string> args) {
    process_options opts;
    opts.program = vmrt::test::helper_program("VMRT_TEST_CHILD");
    opts.args = std::move(args);
    return opts;
}

/// Waits for the exit; the wait itself must succeed.
asio::awaitable<exit_status> exit_of(process& p) {
    auto [ec, status] = co_await p.async_wait(asio::as_tuple(asio::use_awaitable));
    BOOST_REQUIRE_MESSAGE(!ec, "async_wait failed: " << ec.message());
    co_return status;
}

void check_exit_code(const exit_status& s, int code) {
    BOOST_TEST(!s.signaled);
    BOOST_TEST(s.code == code);
}

void check_killed_by(const exit_status& s, int sig) {
    BOOST_TEST(s.signaled);
    BOOST_TEST(s.signal == sig);
}

/// A completion handler that forwards the result of a wait into a channel.
auto into(result_channel& ch) {
    return [&ch](error_code ec, exit_status s) {
        ch.try_send(ec, s);
    };
}

asio::awaitable<std::tuple<error_code, exit_status>> next_result(result_channel& ch) {
    co_return co_await ch.async_receive(asio::as_tuple(asio::use_awaitable));
}

asio::awaitable<void> sleep_for(std::chrono::milliseconds d) {
    asio::steady_timer timer(co_await asio::this_coro::executor, d);
    co_await timer.async_wait(asio::use_awaitable);
}

bool alive(pid_t pid) { return ::kill(pid, 0) == 0; }
/// No such process (not even a zombie): it died and was reaped.
bool gone(pid_t pid) { return ::kill(pid, 0) == -1 && errno == ESRCH; }

process_options program_only(std::filesystem::path program) {
    process_options opts;
    opts.program = std::move(program);
    return opts;
}

class fd_guard {
public:
    explicit fd_guard(int fd = -1) : fd_(fd) { BOOST_REQUIRE_MESSAGE(fd >= -1, "bad fd"); }
    fd_guard(const fd_guard&) = delete;
    fd_guard& operator=(const fd_guard&) = delete;
    ~fd_guard() { reset(); }
    int get() const { return fd_; }
    int release() { return std::exchange(fd_, -1); }
    void reset(int fd = -1) {
        if (fd_ >= 0) ::close(fd_);
        fd_ = fd;
    }

private:
    int fd_;
};

/// A pipe through which the child announces that it is ready (VMRT_CHILD_NOTIFY_FD), so that
/// tests do not have to guess how long it takes to install its signal handlers.
class announcement {
public:
    announcement() {
        int fds[2];
        BOOST_REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
        read_end_.reset(fds[0]);
        write_end_.reset(fds[1]);
    }
    void attach(process_options& opts) const {
        opts.inherited_fds.push_back(write_end_.get());
        opts.env_overrides.emplace_back("VMRT_CHILD_NOTIFY_FD", std::to_string(write_end_.get()));
    }
    /// The announced line (without its newline); call after spawning.
    asio::awaitable<std::string> line() {
        write_end_.reset();  // otherwise EOF never comes if the child dies silently
        asio::readable_pipe pipe(co_await asio::this_coro::executor, read_end_.release());
        std::string text;
        auto [ec, n] = co_await asio::async_read_until(pipe, asio::dynamic_buffer(text), '\n',
                                                       asio::as_tuple(asio::use_awaitable));
        BOOST_REQUIRE_MESSAGE(!ec, "the child announced nothing: " << ec.message());
        co_return text.substr(0, n - 1);
    }

private:
    fd_guard read_end_, write_end_;
};

asio::awaitable<process> spawn_announcing(process_options opts, std::string& line) {
    const auto ex = co_await asio::this_coro::executor;
    announcement ready;
    ready.attach(opts);
    auto p = process::spawn(ex, opts);
    line = co_await ready.line();
    co_return p;
}

int pidfd_open(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0U)); }

/// Makes this test process the reaper of orphaned descendants for its lifetime, so that the
/// tests can reap (and check the death of) the grandchildren they create.
class subreaper_guard {
public:
    subreaper_guard() { BOOST_REQUIRE(::prctl(PR_SET_CHILD_SUBREAPER, 1) == 0); }
    subreaper_guard(const subreaper_guard&) = delete;
    subreaper_guard& operator=(const subreaper_guard&) = delete;
    ~subreaper_guard() { ::prctl(PR_SET_CHILD_SUBREAPER, 0); }
};

/// A descendant that was orphaned onto us (see subreaper_guard): waits for its death, and kills
/// and reaps it if the test ends before it died.
class orphan_guard {
public:
    explicit orphan_guard(pid_t pid) : pid_(pid), pidfd_(pidfd_open(pid)) {
        BOOST_REQUIRE_MESSAGE(pidfd_.get() >= 0,
                              "pidfd_open(" << pid << ") failed: " << std::strerror(errno));
    }
    orphan_guard(const orphan_guard&) = delete;
    orphan_guard& operator=(const orphan_guard&) = delete;
    ~orphan_guard() {
        if (reaped_) return;
        ::syscall(SYS_pidfd_send_signal, pidfd_.get(), SIGKILL, nullptr, 0U);
        siginfo_t info{};
        ::waitid(p_pidfd, pidfd_.get(), &info, WEXITED);
    }
    /// Waits (without polling) up to `limit` for the death, reaps, and returns how it died.
    std::optional<siginfo_t> wait_for_death(std::chrono::milliseconds limit) {
        pollfd pfd{pidfd_.get(), POLLIN, 0};
        if (::poll(&pfd, 1, static_cast<int>(limit.count())) != 1) return std::nullopt;
        siginfo_t info{};
        if (::waitid(p_pidfd, pidfd_.get(), &info, WEXITED | WNOHANG) != 0 || info.si_pid != pid_)
            return std::nullopt;
        reaped_ = true;
        return info;
    }

private:
    pid_t pid_;
    fd_guard pidfd_;
    bool reaped_ = false;
};

void check_killed_by(const std::optional<siginfo_t>& death, int sig) {
    BOOST_REQUIRE_MESSAGE(death, "the orphan did not die");
    BOOST_TEST(death->si_code == CLD_KILLED);
    BOOST_TEST(death->si_status == sig);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(process_test)

BOOST_AUTO_TEST_CASE(exit_code_is_reported) {
    run_coro([]() -> asio::awaitable<void> {
        const auto ex = co_await asio::this_coro::executor;
        auto p = process::spawn(ex, child({"exit", "3"}));
        BOOST_TEST(p.valid());
        BOOST_TEST(p.pid() > 0);
        check_exit_code(co_await exit_of(p), 3);
        BOOST_TEST(!p.running());
        BOOST_REQUIRE(p.status());
        check_exit_code(*p.status(), 3);
    });
}

BOOST_AUTO_TEST_CASE(death_by_signal_is_reported) {
    run_coro([]() -> asio::awaitable<void> {
        const auto ex = co_await asio::this_coro::executor;
        auto self_killed = process::spawn(ex, child({"signal-self", std::to_string(SIGTERM)}));
        check_killed_by(co_await exit_of(self_killed), SIGTERM);

        auto killed = process::spawn(ex, child({"sleep", "60000"}));
        BOOST_TEST(!killed.signal(SIGKILL));
        check_killed_by(co_await exit_of(killed), SIGKILL);
    });
}

BOOST_AUTO_TEST_CASE(wait_after_an_unobserved_exit_completes) {
    // The exit happens while nobody waits: the pidfd's one readiness edge is consumed by the
    // reactor with no wait queued. A later wait must still see the exit.
    run_coro([]() -> asio::awaitable<void> {
        const auto ex = co_await asio::this_coro::executor;
        auto p = process::spawn(ex, child({"exit", "5"}));
        co_await sleep_for(300ms);
        check_exit_code(co_await exit_of(p), 5);
    });
}

BOOST_AUTO_TEST_CASE(missing_program_fails_synchronously) {
    vmrt::test::temp_dir dir;
    boost::asio::io_context ctx;
    const auto missing = dir / "no-such-program";

    error_code ec;
    auto p = process::spawn(ctx.get_executor(), program_only(missing), ec);
    BOOST_TEST(ec == boost::system::errc::no_such_file_or_directory);
    BOOST_TEST(!p.valid());

    try {
        process::spawn(ctx.get_executor(), program_only(missing));
        BOOST_FAIL("spawn of a missing program did not throw");
    } catch (const vmrt::error& e) {
        BOOST_TEST(e.code() == boost::system::errc::no_such_file_or_directory);
        BOOST_CHECK_MESSAGE(std::string(e.what()).find(missing.native()) != std::string::npos, e.what());
    }

    // A bare name goes through PATH.
    process::spawn(ctx.get_executor(), program_only("vmrt-surely-not-in-path"), ec);
    BOOST_TEST(ec == boost::system::errc::no_such_file_or_directory);

    // A failing step before exec is reported the same way.
    auto opts = child({"exit", "0"});
    opts.working_dir = dir / "no-such-dir";
    try {
        process::spawn(ctx.get_executor(), opts);
        BOOST_FAIL("spawn into a missing directory did not throw");
    } catch (const vmrt::error& e) {
        BOOST_TEST(e.code() == boost::system::errc::no_such_file_or_directory);
        BOOST_CHECK_MESSAGE(std::string(e.what()).find("chdir") != std::string::npos, e.what());
    }
}

BOOST_AUTO_TEST_CASE(program_is_looked_up_in_path) {
    run_coro([]() -> asio::awaitable<void> {
        const auto ex = co_await asio::this_coro::executor;
        auto p = process::spawn(ex, program_only("true"));
        check_exit_code(co_await exit_of(p), 0);
    });
}

BOOST_AUTO_TEST_CASE(arguments_are_passed_verbatim) {
    // Any shell would split, expand or execute some of these.
    const std::vector<std::string> args = {
        "two words", "\"double\"", "'single'", "a;echo injected", "$(echo expanded)",
        "`id`",      "*",          "",         "$HOME",           "back\\slash"};
    vmrt::test::temp_dir dir;
    run_coro([&]() -> asio::awaitable<void> {
        const auto ex = co_await asio::this_coro::executor;
        auto opts = child({"print-args"});
        opts.args.insert(opts.args.end(), args.begin(), args.end());
        opts.log_file = dir / "log";
        auto p = process::spawn(ex, opts);
        check_exit_code(co_await exit_of(p), 0);
    });
    std::string expected;
    for (const auto& a : args) expected += a + "\n";
    BOOST_TEST(vmrt::test::read_file(dir / "log") == expected);
}

BOOST_AUTO_TEST_CASE(environment_overrides_are_applied) {
    vmrt::test::temp_dir dir;
    run_coro([&]() -> asio::awaitable<void> {
        const auto ex = co_await asio::this_coro::executor;
        auto fresh = child({"print-env", "VMRT_PROCESS_TEST_FRESH"});
        fresh.env_overrides = {{"VMRT_PROCESS_TEST_FRESH", "first"},
                               {"VMRT_PROCESS_TEST_FRESH", "with space"}};
        fresh.log_file = dir / "fresh";
        auto p1 = process::spawn(ex, fresh);
        check_exit_code(co_await exit_of(p1), 0);

        // PATH is inherited from the test; the override replaces it instead of adding a second one.
        auto replaced = child({"print-env", "PATH"});
        replaced.env_overrides = {{"PATH", "/replaced"}};
        replaced.log_file = dir / "replaced";
        auto p2 = process::spawn(ex, replaced);
        check_exit_code(co_await exit_of(p2), 0);

        auto unset = child({"print-env", "VMRT_PROCESS_TEST_UNSET"});
        auto p3 = process::spawn(ex, unset);
        check_exit_code(co_await exit_of(p3), 1);
    });
    BOOST_TEST(vmrt::test::read_file(dir / "fresh") == "with space\n");
    BOOST_TEST(vmrt::test::read_file(dir / "replaced") == "/replaced\n");
}

BOOST_AUTO_TEST_CASE(stdout_and_stderr_land_in_the_log_file) {
    vmrt::test::temp_dir dir;
    const auto log = dir / "vmm.log";
    vmrt::test::write_file(log, "stale content of an earlier run\n");
    run_coro([&]() -> asio::awaitable<void> {
        const auto ex = co_await asio::this_coro::executor;
        auto opts = child({"write-both", "to stdout", "to stderr"});
        opts.log_file = log;
        auto p = process::spawn(ex, opts);
        check_exit_code(co_await exit_of(p), 0);

        // Without a log file the output goes to /dev/null.
        auto quiet = process::spawn(ex, child({"write-both", "lost", "lost"}));
        check_exit_code(co_await exit_of(quiet), 0);
    });
    BOOST_TEST(vmrt::test::read_file(log) == "to stdout\nto stderr\n");
    BOOST_TEST(vmrt::io::read_file_tail(log, 10) == "to stderr\n");
}

BOOST_AUTO_TEST_CASE(read_file_tail_returns_the_last_bytes) {
    vmrt::test::temp_dir dir;
    vmrt::test::write_file(dir / "f", "0123456789");
    BOOST_TEST(vmrt::io::read_file_tail(dir / "f", 4) == "6789");
    BOOST_TEST(vmrt::io::read_file_tail(dir / "f", 100) == "0123456789");
    BOOST_TEST(vmrt::io::read_file_tail(dir / "f", 0) == "");
    BOOST_TEST(vmrt::io::read_file_tail(dir / "missing", 4) == "");
}

BOOST_AUTO_TEST_CASE(only_inherited_fds_reach_the_child) {
    // `kept` is close-on-exec in the parent yet inherited; `leaked` is not close-on-exec, yet
    // must not reach the child because it is not in inherited_fds.
    fd_guard kept(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    fd_guard leaked(::open("/dev/null", O_RDONLY));
    BOOST_REQUIRE(kept.get() >= 0);
    BOOST_REQUIRE(leaked.get() >= 0);
    run_coro([&]() -> asio::awaitable<void> {
        auto check = [&](int fd, bool inherit) -> asio::awaitable<exit_status> {
            const auto ex = co_await asio::this_coro::executor;
            auto opts = child({"check-fd", std::to_string(fd)});
            if (inherit) opts.inherited_fds = {fd};
            auto p = process::spawn(ex, opts);
            co_return co_await exit_of(p);
        };
        check_exit_code(co_await check(kept.get(), true), 0);
        check_exit_code(co_await check(kept.get(), false), 1);
        check_exit_code(co_await check(leaked.get(), false), 1);
    });

    boost::asio::io_context ctx;
    error_code ec;
    auto opts = child({"exit", "0"});
    opts.inherited_fds = {leaked.get() + 1000};  // not open
    process::spawn(ctx.get_executor(), opts, ec);
    BOOST_TEST(ec == boost::system::errc::bad_file_descriptor);
}

BOOST_AUTO_TEST_CASE(working_dir_is_applied) {
    vmrt::test::temp_dir dir;
    std::filesystem::create_directory(dir / "cwd");
    run_coro([&]() -> asio::awaitable<void> {
        const auto ex = co_await asio::this_coro::executor;
        auto opts = child({"print-cwd"});
        opts.working_dir = dir / "cwd";
        opts.log_file = dir / "log";
        auto p = process::spawn(ex, opts);
        check_exit_code(co_await exit_of(p), 0);
    });
    BOOST_TEST(vmrt::test::read_file(dir / "log") == std::filesystem::canonical(dir / "cwd").native() + "\n");
}

BOOST_AUTO_TEST_CASE(child_leads_its_own_process_group) {
    run_coro([]() -> asio::awaitable<void> {
        const auto ex = co_await asio::this_coro::executor;
        auto leader = process::spawn(ex, child({"sleep", "60000"}));
        BOOST_TEST(::getpgid(leader.pid()) == leader.pid());
        BOOST_TEST(!leader.signal_group(SIGTERM));
        check_killed_by(co_await exit_of(leader), SIGTERM);

        auto opts = child({"sleep", "60000"});
        opts.new_process_group = false;
        auto member = process::spawn(ex, opts);
        BOOST_TEST(::getpgid(member.pid()) == ::getpgrp());
        // Signalling "its" group would signal ours: refused.
        BOOST_TEST((member.signal_group(SIGTERM) == vmrt::errc::invalid_state));
        BOOST_TEST(member.running());
    });
}

BOOST_AUTO_TEST_CASE(child_is_spawned_by_us) {
    run_coro([]() -> asio::awaitable<void> {
        std::string ppid;
        const auto opts = child({"print-ppid-then-sleep"});
        auto p = co_await spawn_announcing(opts, ppid);
        BOOST_TEST(ppid == std::to_string(::getpid()));
        BOOST_TEST(p.running());
    });
}

BOOST_AUTO_TEST_CASE(many_waits_complete_together) {
    run_coro([]() -> asio::awaitable<void> {
        const auto ex = co_await asio::this_coro::executor;
        auto p = process::spawn(ex, child({"sleep", "200"}));
        auto [order, ec1, s1, ec2, s2, ec3, s3] =
            co_await asio::experimental::make_parallel_group(
                p.async_wait(asio::deferred), p.async_wait(asio::deferred), p.async_wait(asio::deferred))
                .async_wait(asio::experimental::wait_for_all(), asio::use_awaitable);
        for (auto [ec, s] : {std::pair{ec1, s1}, std::pair{ec2, s2}, std::pair{ec3, s3}}) {
            BOOST_TEST(!ec);
            check_exit_code(s, 0);
        }

        // A wait on an exited process completes too, through the executor and never inline.
        result_channel results(ex, 4);
        p.async_wait(into(results));
        BOOST_TEST(!results.ready());
        auto [ec, s] = co_await next_result(results);
        BOOST_TEST(!ec);
        check_exit_code(s, 0);
    });
}

BOOST_AUTO_TEST_CASE(cancelling_one_wait_leaves_the_process_running) {
    run_coro([]() -> asio::awaitable<void> {
        const auto ex = co_await asio::this_coro::executor;
        auto p = process::spawn(ex, child({"sleep", "60000"}));
        result_channel cancelled(ex, 4), other(ex, 4);
        asio::cancellation_signal cancel;
        p.async_wait(asio::bind_cancellation_slot(cancel.slot(), into(cancelled)));
        p.async_wait(into(other));

        cancel.emit(asio::cancellation_type::total);
        auto [ec, s] = co_await next_result(cancelled);
        BOOST_TEST(ec == asio::error::operation_aborted);
        BOOST_TEST(p.running());
        BOOST_TEST(alive(p.pid()));
        BOOST_TEST(!other.ready());

        // A wait that loses a race in a parallel group is cancelled the same way.
        asio::steady_timer timer(ex, 50ms);
        auto [order, wait_ec, wait_status, timer_ec] =
            co_await asio::experimental::make_parallel_group(p.async_wait(asio::deferred),
                                                             timer.async_wait(asio::deferred))
                .async_wait(asio::experimental::wait_for_one(), asio::use_awaitable);
        BOOST_TEST(order[0] == 1u);
        BOOST_TEST(wait_ec == asio::error::operation_aborted);
        BOOST_TEST(p.running());

        BOOST_TEST(!p.signal(SIGTERM));
        auto [other_ec, other_status] = co_await next_result(other);
        BOOST_TEST(!other_ec);
        check_killed_by(other_status, SIGTERM);
    });
}

BOOST_AUTO_TEST_CASE(waiting_again_after_cancelling_the_only_wait) {
    run_coro([]() -> asio::awaitable<void> {
        const auto ex = co_await asio::this_coro::executor;
        auto p = process::spawn(ex, child({"sleep", "60000"}));
        result_channel results(ex, 4);
        asio::cancellation_signal cancel;

        // The new wait arrives while the withdrawn internal wait has not completed yet...
        p.async_wait(asio::bind_cancellation_slot(cancel.slot(), into(results)));
        cancel.emit(asio::cancellation_type::terminal);
        p.async_wait(asio::bind_cancellation_slot(cancel.slot(), into(results)));
        auto [ec1, s1] = co_await next_result(results);
        BOOST_TEST(ec1 == asio::error::operation_aborted);
        cancel.emit(asio::cancellation_type::terminal);
        auto [ec2, s2] = co_await next_result(results);
        BOOST_TEST(ec2 == asio::error::operation_aborted);

        // ...or after it went idle: either way the exit is seen.
        co_await sleep_for(50ms);
        p.async_wait(into(results));
        BOOST_TEST(!p.signal(SIGTERM));
        auto [ec3, s3] = co_await next_result(results);
        BOOST_TEST(!ec3);
        check_killed_by(s3, SIGTERM);
    });
}

BOOST_AUTO_TEST_CASE(cancelled_wait_leaves_no_work_behind) {
    // Once nobody waits, the internal wait on the pidfd is withdrawn: run() returns although the
    // child still runs.
    asio::io_context ctx;
    auto p = process::spawn(ctx.get_executor(), child({"sleep", "60000"}));
    asio::cancellation_signal cancel;
    std::optional<error_code> result;
    p.async_wait(
        asio::bind_cancellation_slot(cancel.slot(), [&](error_code ec, exit_status) { result = ec; }));
    asio::post(ctx, [&] { cancel.emit(asio::cancellation_type::terminal); });
    const auto start = std::chrono::steady_clock::now();
    ctx.run_for(10s);
    BOOST_TEST((std::chrono::steady_clock::now() - start < 5s));
    BOOST_TEST((result == asio::error::operation_aborted));
    BOOST_TEST(p.running());
}

BOOST_AUTO_TEST_CASE(escalating_wait_maps_total_to_the_graceful_signal) {
    run_coro([]() -> asio::awaitable<void> {
        const auto ex = co_await asio::this_coro::executor;
        result_channel results(ex, 4);
        asio::cancellation_signal cancel;

        auto p = process::spawn(ex, child({"sleep", "60000"}));
        p.async_wait_escalating({}, asio::bind_cancellation_slot(cancel.slot(), into(results)));
        cancel.emit(asio::cancellation_type::total);
        auto [ec, s] = co_await next_result(results);
        BOOST_TEST(!ec);
        check_killed_by(s, SIGINT);

        auto q = process::spawn(ex, child({"sleep", "60000"}));
        q.async_wait_escalating({.graceful_signal = SIGUSR1},
                                asio::bind_cancellation_slot(cancel.slot(), into(results)));
        cancel.emit(asio::cancellation_type::total);
        auto [ec2, s2] = co_await next_result(results);
        BOOST_TEST(!ec2);
        check_killed_by(s2, SIGUSR1);
    });
}

BOOST_AUTO_TEST_CASE(escalating_wait_maps_partial_to_sigterm) {
    run_coro([]() -> asio::awaitable<void> {
        const auto ex = co_await asio::this_coro::executor;
        std::string ready;
        const auto opts = child({"trap-term", "7"});
        auto p = co_await spawn_announcing(opts, ready);
        BOOST_TEST(ready == "ready");
        result_channel results(ex, 4);
        asio::cancellation_signal cancel;
        p.async_wait_escalating({}, asio::bind_cancellation_slot(cancel.slot(), into(results)));
        cancel.emit(asio::cancellation_type::partial);
        auto [ec, s] = co_await next_result(results);
        BOOST_TEST(!ec);
        check_exit_code(s, 7);  // the child's SIGTERM handler ran
    });
}

BOOST_AUTO_TEST_CASE(escalating_wait_goes_on_until_terminal_kills) {
    run_coro([]() -> asio::awaitable<void> {
        const auto ex = co_await asio::this_coro::executor;
        std::string ready;
        const auto opts = child({"ignore-term"});
        auto p = co_await spawn_announcing(opts, ready);
        result_channel results(ex, 4);
        asio::cancellation_signal cancel;
        p.async_wait_escalating({}, asio::bind_cancellation_slot(cancel.slot(), into(results)));

        cancel.emit(asio::cancellation_type::total);    // SIGINT: ignored
        cancel.emit(asio::cancellation_type::partial);  // SIGTERM: ignored
        co_await sleep_for(300ms);
        BOOST_TEST(!results.ready());
        BOOST_TEST(p.running());
        BOOST_TEST(alive(p.pid()));

        // The most severe type present wins.
        cancel.emit(asio::cancellation_type::partial | asio::cancellation_type::terminal);
        auto [ec, s] = co_await next_result(results);
        BOOST_TEST(!ec);
        check_killed_by(s, SIGKILL);
    });
}

BOOST_AUTO_TEST_CASE(escalating_wait_in_a_parallel_group) {
    run_coro([]() -> asio::awaitable<void> {
        const auto ex = co_await asio::this_coro::executor;
        std::string ready;
        const auto opts = child({"ignore-term"});
        auto p = co_await spawn_announcing(opts, ready);
        asio::steady_timer timer(ex, 100ms);
        // The timer wins; the group cancels the wait with `terminal` (its default): SIGKILL.
        auto [order, timer_ec, wait_ec, s] =
            co_await asio::experimental::make_parallel_group(timer.async_wait(asio::deferred),
                                                             p.async_wait_escalating({}, asio::deferred))
                .async_wait(asio::experimental::wait_for_one(), asio::use_awaitable);
        BOOST_TEST(order[0] == 0u);
        BOOST_TEST(!wait_ec);
        check_killed_by(s, SIGKILL);
        BOOST_TEST(!p.running());
    });
}

BOOST_AUTO_TEST_CASE(signalling_an_exited_process_is_a_no_op) {
    run_coro([]() -> asio::awaitable<void> {
        const auto ex = co_await asio::this_coro::executor;
        auto p = process::spawn(ex, child({"exit", "0"}));
        check_exit_code(co_await exit_of(p), 0);
        BOOST_TEST(!p.signal(SIGKILL));
        BOOST_TEST(!p.signal_group(SIGKILL));
        p.kill_and_reap();
        BOOST_REQUIRE(p.status());
        check_exit_code(*p.status(), 0);
    });
}

BOOST_AUTO_TEST_CASE(kill_and_reap_completes_pending_waits) {
    run_coro([]() -> asio::awaitable<void> {
        const auto ex = co_await asio::this_coro::executor;
        auto p = process::spawn(ex, child({"sleep", "60000"}));
        result_channel results(ex, 4);
        p.async_wait(into(results));
        const pid_t pid = p.pid();
        p.kill_and_reap();
        BOOST_TEST(!p.running());
        BOOST_TEST(gone(pid));
        BOOST_REQUIRE(p.status());
        check_killed_by(*p.status(), SIGKILL);
        auto [ec, s] = co_await next_result(results);
        BOOST_TEST(!ec);
        check_killed_by(s, SIGKILL);
        p.kill_and_reap();  // idempotent
    });
}

BOOST_AUTO_TEST_CASE(destroying_a_process_kills_its_group) {
    subreaper_guard reaper;  // the grandchild is orphaned onto us when its parent dies
    std::optional<orphan_guard> grandchild;
    run_coro([&]() -> asio::awaitable<void> {
        std::string announced;
        const auto opts = child({"fork-grandchild"});
        std::optional<process> p = co_await spawn_announcing(opts, announced);
        const pid_t child_pid = p->pid();
        const pid_t grandchild_pid = std::stoi(announced);
        grandchild.emplace(grandchild_pid);
        BOOST_TEST(::getpgid(grandchild_pid) == child_pid);

        p.reset();
        BOOST_TEST(gone(child_pid));
        check_killed_by(grandchild->wait_for_death(10s), SIGKILL);
        BOOST_TEST(gone(grandchild_pid));
    });
}

BOOST_AUTO_TEST_CASE(destroying_the_io_context_kills_a_waited_for_child) {
    // The coroutine that owns the process is suspended in its wait when the io_context goes
    // away (as after run_coro's time limit). Destroying the pending wait must destroy the
    // coroutine, and with it the process, instead of leaking both in an ownership cycle.
    pid_t pid = 0;
    {
        asio::io_context ctx;
        auto owner = [&]() -> asio::awaitable<void> {
            const auto ex = co_await asio::this_coro::executor;
            const auto opts = child({"sleep", "60000"});
            auto p = process::spawn(ex, opts);
            pid = p.pid();
            co_await p.async_wait(asio::use_awaitable);
        };
        asio::co_spawn(ctx, owner(), asio::detached);
        ctx.run_for(200ms);
        BOOST_REQUIRE(pid > 0);
        BOOST_TEST(alive(pid));
    }
    BOOST_TEST(gone(pid));
    if (alive(pid)) {  // the test failed: do not leave the child behind
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
    }
}

BOOST_AUTO_TEST_CASE(moves_transfer_ownership) {
    run_coro([]() -> asio::awaitable<void> {
        const auto ex = co_await asio::this_coro::executor;
        auto p = process::spawn(ex, child({"sleep", "60000"}));
        const pid_t first = p.pid();
        process q = std::move(p);
        BOOST_TEST(!p.valid());
        BOOST_TEST(!p.running());
        BOOST_TEST(p.pid() == 0);
        BOOST_TEST(p.signal(SIGKILL) == boost::system::errc::bad_file_descriptor);
        p.kill_and_reap();  // a moved-from process owns nothing
        BOOST_TEST(q.pid() == first);
        BOOST_TEST(alive(first));

        // Assigning over a running process kills the old child.
        q = process::spawn(ex, child({"sleep", "60000"}));
        BOOST_TEST(gone(first));
        BOOST_TEST(q.pid() != first);
        BOOST_TEST(q.running());
        BOOST_TEST(!q.signal(SIGTERM));
        check_killed_by(co_await exit_of(q), SIGTERM);
    });
}

BOOST_AUTO_TEST_CASE(identity_names_the_process) {
    run_coro([]() -> asio::awaitable<void> {
        const auto ex = co_await asio::this_coro::executor;
        auto p = process::spawn(ex, child({"sleep", "60000"}));
        auto id = p.identity();
        BOOST_TEST(id.pid == p.pid());
        BOOST_TEST(id.start_time_ticks != 0u);
        auto read_again = vmrt::io::read_process_identity(p.pid());
        BOOST_TEST((read_again == id));
        auto self = vmrt::io::read_process_identity(::getpid());
        BOOST_REQUIRE(self);
        BOOST_TEST(!(*self == id));
        BOOST_TEST(self->start_time_ticks <= id.start_time_ticks);
        BOOST_TEST(!vmrt::io::read_process_identity(0x3fffffff));  // above any pid_max
        co_return;
    });
}

BOOST_AUTO_TEST_CASE(parent_death_signal_kills_an_orphaned_child) {
    // An intermediate process (a fork of this test) spawns a child with the default death signal
    // (SIGKILL), reports its pid, and dies without cleaning up. The child must die with it.
    subreaper_guard reaper;
    int report[2];
    BOOST_REQUIRE(::pipe2(report, O_CLOEXEC) == 0);
    fd_guard report_read(report[0]), report_write(report[1]);
    const auto opts = child({"sleep", "600000"});
    const pid_t intermediate = ::fork();
    BOOST_REQUIRE(intermediate >= 0);
    if (intermediate == 0) {
        try {
            asio::io_context ctx;
            auto p = process::spawn(ctx.get_executor(), opts);
            const pid_t pid = p.pid();
            if (::write(report_write.get(), &pid, sizeof pid) == sizeof pid) ::_exit(0);  // before ~process
        } catch (...) {
        }
        ::_exit(1);
    }
    report_write.reset();
    pid_t orphan = 0;
    const auto got = ::read(report_read.get(), &orphan, sizeof orphan);
    int intermediate_status = 0;
    BOOST_REQUIRE(::waitpid(intermediate, &intermediate_status, 0) == intermediate);
    BOOST_REQUIRE(got == static_cast<ssize_t>(sizeof orphan));
    BOOST_TEST(WIFEXITED(intermediate_status));
    // The intermediate's exit reparented the child onto us (the subreaper) before waitpid()
    // returned, so its pid cannot have been reused.
    orphan_guard guard(orphan);
    check_killed_by(guard.wait_for_death(10s), SIGKILL);
}

BOOST_AUTO_TEST_SUITE_END()
