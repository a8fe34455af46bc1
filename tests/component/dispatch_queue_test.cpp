// The dispatch bridge with real threads: io::serial_queue (ordering, never inline, identity, the
// destructor's drain, GCD's terminate-on-throw), io::run_on (values, move-only and void results,
// exceptions, resumption on the awaiter's executor, cancellation before/while/after fn runs and in
// races, an io_context stopped or destroyed while fn is pending) and io::foreign_completion
// (completed from a foreign thread, before the wait, twice, never, after the awaiter was cancelled,
// after the slot or the io_context was destroyed). Every lifetime test counts live objects
// (coroutine frames, fn captures, the bridge's shared states) to prove nothing leaks. The suite is
// meant to be run under ThreadSanitizer too (-DVMRT_SANITIZE_THREAD=ON).
#include "support/test_support.hpp"

#include <vmrt/io/dispatch_queue.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <functional>
#include <future>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using vmrt::io::foreign_completion;
using vmrt::io::run_on;
using vmrt::io::serial_queue;
using vmrt::test::run_coro;

long live_handoffs() { return vmrt::detail::live_handoffs().load(); }

/// Something a queue function blocks on, so that a test decides what is running and what waits.
class gate {
public:
    void open() {
        {
            std::lock_guard lock(mutex_);
            open_ = true;
        }
        cv_.notify_all();
    }
    void wait() {
        std::unique_lock lock(mutex_);
        cv_.wait(lock, [this] { return open_; });
    }

private:
    std::mutex mutex_;
    std::condition_variable cv_;
    bool open_ = false;
};

/// Owns a gate shared with queue functions and opens it on scope exit, so that a failing test
/// never leaves a queue blocked (its destructor would wait forever).
struct gate_guard {
    std::shared_ptr<gate> g = std::make_shared<gate>();
    gate_guard() = default;
    gate_guard(const gate_guard&) = delete;
    gate_guard& operator=(const gate_guard&) = delete;
    ~gate_guard() { g->open(); }
};

/// Counts its live instances (copies and moved-from objects included).
struct tracked {
    explicit tracked(std::atomic<int>& c) : count(&c) { ++*count; }
    tracked(const tracked& o) : count(o.count) { ++*count; }
    tracked& operator=(const tracked&) = delete;
    ~tracked() { --*count; }
    std::atomic<int>* count;
};

/// Returns once every function submitted to `q` before the call has run and been destroyed (with
/// what it captured). Functions those submit may still be queued: call it again for them.
void drain(serial_queue& q) {
    auto done = std::make_shared<std::promise<void>>();
    auto finished = done->get_future();
    q.async([done] { done->set_value(); });
    BOOST_REQUIRE(finished.wait_for(20s) == std::future_status::ready);
}

asio::awaitable<void> yield(int turns = 1) {
    auto ex = co_await asio::this_coro::executor;
    for (int i = 0; i < turns; ++i) co_await asio::post(ex, asio::use_awaitable);
}

bool is_aborted(const std::exception_ptr& e) {
    if (!e) return false;
    try {
        std::rethrow_exception(e);
    } catch (const boost::system::system_error& err) {
        return err.code() == asio::error::operation_aborted;
    } catch (...) {
    }
    return false;
}

void spin_for(std::chrono::nanoseconds d) {
    auto until = std::chrono::steady_clock::now() + d;
    while (std::chrono::steady_clock::now() < until) {
    }
}

struct no_default {
    explicit no_default(int x) : value(x) {}
    int value;
};

/// Awaits run_on and reports how it ended: 1 = fn's value, 0 = operation_aborted, < 0 = wrong.
/// fn records on the queue that it ran; `resumed` counts how often the coroutine came back.
asio::awaitable<int> report_run_on(serial_queue& q, int i, std::vector<char>& ran, std::vector<int>& resumed,
                                   std::atomic<int>& fn_objects, std::chrono::nanoseconds work) {
    int status = -1;
    try {
        auto fn = [&ran, i, work, t = tracked(fn_objects)] {
            spin_for(work);
            ran[i] = 1;
            return i;
        };
        int v = co_await run_on(q, std::move(fn));
        status = v == i ? 1 : -2;
    } catch (const boost::system::system_error& e) {
        status = e.code() == asio::error::operation_aborted ? 0 : -3;
    }
    ++resumed[i];
    co_return status;
}

/// The same with a cancellation filter that lets partial and total cancellation through too.
asio::awaitable<int> report_run_on_any_cancellation(serial_queue& q, int i, std::vector<char>& ran,
                                                    std::vector<int>& resumed, std::atomic<int>& fn_objects,
                                                    std::chrono::nanoseconds work) {
    co_await asio::this_coro::reset_cancellation_state(asio::enable_total_cancellation());
    co_return co_await report_run_on(q, i, ran, resumed, fn_objects, work);
}

/// What a forked child did: killed by which signal, or its exit code; and what it wrote to stderr.
struct child_end {
    int signal = 0;
    int code = -1;
    std::string stderr_text;
};

/// Runs `body` in a forked child (the test process is single-threaded at that point: every queue
/// of earlier tests has been joined) and collects its stderr; a child that outlives 20 s is killed.
child_end run_in_child(const std::function<void()>& body) {
    int fds[2];
    BOOST_REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
    std::cout.flush();  // or the child's copy of the buffer could be written twice
    std::fflush(nullptr);
    pid_t pid = ::fork();
    BOOST_REQUIRE(pid >= 0);
    if (pid == 0) {
        // Boost.Test's execution monitor turns SIGABRT into a test failure and carries on running
        // tests; the child must die of it instead.
        std::signal(SIGABRT, SIG_DFL);
        ::dup2(fds[1], 2);
        try {
            body();
        } catch (...) {
            ::_exit(3);
        }
        ::_exit(0);
    }
    ::close(fds[1]);
    std::string text;
    auto deadline = std::chrono::steady_clock::now() + 20s;
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline -
                                                                          std::chrono::steady_clock::now());
        if (left <= 0ms) {
            ::kill(pid, SIGKILL);
            break;
        }
        pollfd p{fds[0], POLLIN, 0};
        int r = ::poll(&p, 1, static_cast<int>(left.count()));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) continue;
        char buf[4096];
        auto n = ::read(fds[0], buf, sizeof buf);
        if (n <= 0) break;
        text.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fds[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    child_end end;
    if (WIFSIGNALED(status)) end.signal = WTERMSIG(status);
    if (WIFEXITED(status)) end.code = WEXITSTATUS(status);
    end.stderr_text = std::move(text);
    return end;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(dispatch_queue_test)

// ---- serial_queue ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(runs_10000_functions_from_4_threads_one_at_a_time_in_order_on_its_own_thread) {
    constexpr int submitters = 4;
    constexpr int per_submitter = 2500;
    // Touched only by queue functions: the queue's serial order is the only synchronisation.
    std::vector<std::pair<int, int>> order;
    order.reserve(submitters * per_submitter);
    std::thread::id queue_thread;
    int other_thread = 0;
    int overlapping = 0;
    std::atomic<int> running{0};
    std::vector<std::thread::id> submitter_ids(submitters);
    {
        serial_queue q("vmrt.test.fifo");
        std::vector<std::thread> threads;
        for (int s = 0; s < submitters; ++s) {
            threads.emplace_back([&, s] {
                submitter_ids[s] = std::this_thread::get_id();
                for (int i = 0; i < per_submitter; ++i) {
                    q.async([&, s, i] {
                        if (running.fetch_add(1) != 0) ++overlapping;
                        auto me = std::this_thread::get_id();
                        if (order.empty())
                            queue_thread = me;
                        else if (me != queue_thread)
                            ++other_thread;
                        order.emplace_back(s, i);
                        running.fetch_sub(1);
                    });
                }
            });
        }
        for (auto& t : threads) t.join();
    }  // the destructor runs everything submitted, then joins the queue's thread

    BOOST_TEST(order.size() == static_cast<std::size_t>(submitters * per_submitter));
    BOOST_TEST(overlapping == 0);
    BOOST_TEST(other_thread == 0);
    std::vector<int> next(submitters, 0);
    int out_of_order = 0;
    for (auto [s, i] : order) {
        if (i != next[s]) ++out_of_order;
        next[s] = i + 1;
    }
    BOOST_TEST(out_of_order == 0);
    for (int s = 0; s < submitters; ++s) {
        BOOST_TEST(next[s] == per_submitter);
        BOOST_TEST((submitter_ids[s] != queue_thread));  // never inline on a submitter
    }
    BOOST_TEST((std::this_thread::get_id() != queue_thread));
}

BOOST_AUTO_TEST_CASE(a_function_submitted_from_the_queue_runs_after_the_current_one_returns) {
    serial_queue q("vmrt.test.inline");
    std::atomic<bool> second_ran{false};
    bool second_ran_before_first_returned = true;
    q.async([&] {
        q.async([&] { second_ran = true; });
        std::this_thread::sleep_for(5ms);
        second_ran_before_first_returned = second_ran.load();
    });
    drain(q);
    drain(q);  // the second function was queued behind the first drain's
    BOOST_TEST(!second_ran_before_first_returned);
    BOOST_TEST(second_ran.load());
}

BOOST_AUTO_TEST_CASE(is_current_and_the_native_handle_identify_the_queue) {
    void* gone_handle = nullptr;
    {
        serial_queue a("vmrt.test.a");
        serial_queue b("vmrt.test.b");
        BOOST_TEST(a.label() == "vmrt.test.a");
        BOOST_TEST(!a.is_current());
        BOOST_TEST((a.native_handle() != nullptr));
        BOOST_TEST((a.native_handle() != b.native_handle()));
        BOOST_TEST((serial_queue::from_native(a.native_handle()) == &a));
        BOOST_TEST((serial_queue::from_native(b.native_handle()) == &b));
        BOOST_TEST((serial_queue::from_native(nullptr) == nullptr));
        int not_a_queue = 0;
        BOOST_TEST((serial_queue::from_native(&not_a_queue) == nullptr));

        struct seen_on_queues {
            bool a_in_a = false, b_in_a = true, a_in_b = true, a_in_nested = false, found_from_handle = false;
        } seen;
        void* handle = a.native_handle();
        a.async([&] {
            seen.a_in_a = a.is_current();
            seen.b_in_a = b.is_current();
            // What the simulated framework does: find the queue from the handle it was given.
            auto* found = serial_queue::from_native(handle);
            seen.found_from_handle = found == &a && found->is_current();
            a.async([&] { seen.a_in_nested = a.is_current(); });
        });
        b.async([&] { seen.a_in_b = a.is_current(); });
        drain(a);
        drain(a);  // the nested function was queued behind the first drain's
        drain(b);
        BOOST_TEST(seen.a_in_a);
        BOOST_TEST(!seen.b_in_a);
        BOOST_TEST(!seen.a_in_b);
        BOOST_TEST(seen.a_in_nested);
        BOOST_TEST(seen.found_from_handle);

        run_coro([&]() -> asio::awaitable<void> {
            bool inside = co_await run_on(a, [&] { return a.is_current(); });
            BOOST_TEST(inside);
            BOOST_TEST(!a.is_current());
        });
        gone_handle = a.native_handle();
    }
    BOOST_TEST((serial_queue::from_native(gone_handle) == nullptr));
}

BOOST_AUTO_TEST_CASE(the_destructor_runs_everything_submitted_including_what_runs_submit) {
    std::atomic<int> ran{0};
    gate_guard g;
    // Declared before the queue: destroyed after it, so the queue's destructor starts while the
    // gate is most likely still closed and 1000 functions wait behind it.
    std::jthread opener([gate = g.g] {
        std::this_thread::sleep_for(20ms);
        gate->open();
    });
    {
        serial_queue q("vmrt.test.drain");
        q.async([gate = g.g] { gate->wait(); });
        for (int i = 0; i < 1000; ++i) q.async([&ran] { ++ran; });
        q.async([&] {
            for (int i = 0; i < 10; ++i) q.async([&ran] { ++ran; });  // submitted while the destructor drains
        });
    }
    BOOST_TEST(ran.load() == 1010);
}

BOOST_AUTO_TEST_CASE(an_exception_escaping_a_queue_function_terminates_like_gcd) {
    auto end = run_in_child([] {
        serial_queue q("vmrt.test.thrower");
        q.async([] { throw std::runtime_error("boom from the queue"); });
        std::this_thread::sleep_for(15s);  // std::terminate comes first
    });
    BOOST_TEST(end.signal == SIGABRT);
    BOOST_TEST(end.stderr_text.find("vmrt.test.thrower") != std::string::npos, end.stderr_text);
    BOOST_TEST(end.stderr_text.find("boom from the queue") != std::string::npos, end.stderr_text);
}

BOOST_AUTO_TEST_CASE(destroying_a_queue_from_its_own_function_terminates_with_a_clear_message) {
    auto end = run_in_child([] {
        auto* q = new serial_queue("vmrt.test.self");
        q->async([q] { delete q; });
        std::this_thread::sleep_for(15s);
    });
    BOOST_TEST(end.signal == SIGABRT);
    BOOST_TEST(end.stderr_text.find("'vmrt.test.self' destroyed from one of its own functions") !=
                   std::string::npos,
               end.stderr_text);
}

// ---- run_on ---------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(run_on_returns_values_move_only_values_void_and_exceptions) {
    serial_queue q("vmrt.test.values");
    std::atomic<int> captures{0};
    run_coro([&]() -> asio::awaitable<void> {
        int v = co_await run_on(q, [] { return 41 + 1; });
        BOOST_TEST(v == 42);

        auto owned = co_await run_on(q, [] { return std::make_unique<std::string>("moved out"); });
        BOOST_TEST(*owned == "moved out");

        auto nd = co_await run_on(q, [] { return no_default(5); });
        BOOST_TEST(nd.value == 5);

        int side_effect = 0;
        co_await run_on(q, [&side_effect] { side_effect = 7; });
        BOOST_TEST(side_effect == 7);

        // A move-only fn; fn and its captures are destroyed before the coroutine resumes.
        auto fn = [p = std::make_unique<int>(9), t = tracked(captures)] {
            return *p;
        };
        int from_move_only = co_await run_on(q, std::move(fn));
        BOOST_TEST(from_move_only == 9);
        BOOST_TEST(captures.load() == 1);  // only the moved-from `fn` in this frame

        std::string what;
        try {
            co_await run_on(q, []() -> int { throw std::runtime_error("from the queue"); });
        } catch (const std::runtime_error& e) {
            what = e.what();
        }
        BOOST_TEST(what == "from the queue");

        vmrt::error_code code;
        std::string message;
        try {
            co_await run_on(q, [] {
                vmrt::diagnostics diag;
                diag.message = "no Rosetta here";
                throw vmrt::error(make_error_code(vmrt::errc::unsupported), diag);
            });
        } catch (const vmrt::error& e) {
            code = e.code();
            message = e.diag().message;
        }
        BOOST_TEST((code == vmrt::errc::unsupported));
        BOOST_TEST(message == "no Rosetta here");
    });
    BOOST_TEST(captures.load() == 0);
}

BOOST_AUTO_TEST_CASE(run_on_resumes_on_the_awaiters_strand_never_on_the_queue_thread) {
    serial_queue q("vmrt.test.strand");
    asio::io_context ctx;
    auto strand = asio::make_strand(ctx);
    constexpr int coroutines = 4;
    constexpr int calls = 200;
    std::atomic<int> off_strand{0}, on_queue_thread{0}, not_current_in_fn{0}, finished{0};
    auto body = [&]() -> asio::awaitable<void> {
        for (int i = 0; i < calls; ++i) {
            auto queue_thread = co_await run_on(q, [&] {
                if (!q.is_current()) ++not_current_in_fn;
                return std::this_thread::get_id();
            });
            if (!strand.running_in_this_thread()) ++off_strand;
            if (std::this_thread::get_id() == queue_thread) ++on_queue_thread;
        }
        ++finished;
    };
    for (int c = 0; c < coroutines; ++c) asio::co_spawn(strand, body(), asio::detached);
    std::vector<std::thread> threads;
    for (int t = 0; t < 2; ++t) threads.emplace_back([&ctx] { ctx.run_for(60s); });
    for (auto& t : threads) t.join();
    BOOST_TEST(finished.load() == coroutines);
    BOOST_TEST(off_strand.load() == 0);
    BOOST_TEST(on_queue_thread.load() == 0);
    BOOST_TEST(not_current_in_fn.load() == 0);
}

BOOST_AUTO_TEST_CASE(cancellation_before_fn_starts_skips_it_for_every_cancellation_type) {
    serial_queue q("vmrt.test.cancel_before");
    std::atomic<int> fn_objects{0};
    const long handoffs_before = live_handoffs();
    const asio::cancellation_type types[] = {
        asio::cancellation_type::terminal, asio::cancellation_type::partial, asio::cancellation_type::total};
    std::vector<char> ran(3, 0);
    std::vector<int> resumed(3, 0);
    run_coro([&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        for (int i = 0; i < 3; ++i) {
            gate_guard g;
            q.async([gate = g.g] { gate->wait(); });  // fn will be queued behind this
            asio::cancellation_signal sig;
            std::optional<int> status;
            asio::co_spawn(ex, report_run_on_any_cancellation(q, i, ran, resumed, fn_objects, 0ns),
                           asio::bind_cancellation_slot(
                               sig.slot(), [&](std::exception_ptr e, int s) { status = e ? -4 : s; }));
            co_await yield(3);
            BOOST_TEST(!status.has_value());  // waiting for the queue
            sig.emit(types[i]);
            while (!status) co_await yield();
            BOOST_TEST(*status == 0);  // operation_aborted, while fn is still queued
            g.g->open();
        }
        co_await run_on(q, [] {});  // everything queued before has run or been skipped
    });
    for (int i = 0; i < 3; ++i) {
        BOOST_TEST(ran[i] == 0);
        BOOST_TEST(resumed[i] == 1);
    }
    BOOST_TEST(fn_objects.load() == 0);
    drain(q);  // the queue has destroyed the functions (and the states they held)
    BOOST_TEST(live_handoffs() == handoffs_before);
}

BOOST_AUTO_TEST_CASE(cancellation_while_fn_runs_waits_for_it_and_delivers_its_result) {
    serial_queue q("vmrt.test.cancel_during");
    run_coro([&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        gate_guard g;
        std::atomic<bool> started{false};
        int written_by_fn = 0;  // fn writes into this frame: the frame must outlive fn
        asio::cancellation_signal sig;
        std::optional<int> value;
        std::exception_ptr error;
        auto fn = [&started, &written_by_fn, gate = g.g] {
            started = true;
            gate->wait();
            written_by_fn = 1;
            return 11;
        };
        asio::co_spawn(ex, run_on(q, std::move(fn)),
                       asio::bind_cancellation_slot(sig.slot(), [&](std::exception_ptr e, int v) {
                           error = e;
                           value = v;
                       }));
        while (!started) co_await yield();
        sig.emit(asio::cancellation_type::terminal);
        co_await yield(20);
        BOOST_TEST(!value.has_value());  // still waiting for the running fn
        g.g->open();
        while (!value) co_await yield();
        BOOST_TEST(!error);
        BOOST_TEST(*value == 11);
        BOOST_TEST(written_by_fn == 1);
        sig.emit(asio::cancellation_type::terminal);  // after completion: nothing happens
        co_await yield(3);
    });
}

BOOST_AUTO_TEST_CASE(cancellation_races_with_a_parallel_group_resume_exactly_once) {
    serial_queue q("vmrt.test.race_group");
    constexpr int n = 3000;
    std::vector<char> ran(n, 0);
    std::vector<int> resumed(n, 0), status(n, -9);
    std::atomic<int> fn_objects{0};
    const long handoffs_before = live_handoffs();
    run_coro(
        [&]() -> asio::awaitable<void> {
            auto ex = co_await asio::this_coro::executor;
            std::minstd_rand rng(8);
            for (int i = 0; i < n; ++i) {
                asio::steady_timer timer(ex, std::chrono::microseconds(rng() % 150));
                auto work = std::chrono::microseconds(rng() % 60);
                auto call =
                    asio::co_spawn(ex, report_run_on(q, i, ran, resumed, fn_objects, work), asio::deferred);
                auto [order, e, s, timer_ec] =
                    co_await asio::experimental::make_parallel_group(std::move(call),
                                                                     timer.async_wait(asio::deferred))
                        .async_wait(asio::experimental::wait_for_one(), asio::use_awaitable);
                status[i] = e ? -4 : s;
            }
            co_await run_on(q, [] {});
        },
        240s);
    int completed = 0, aborted = 0, wrong = 0;
    for (int i = 0; i < n; ++i) {
        if (resumed[i] != 1) ++wrong;
        if (status[i] == 1 && ran[i] == 1)
            ++completed;
        else if (status[i] == 0 && ran[i] == 0)
            ++aborted;  // cancelled before it started: fn never ran
        else
            ++wrong;
    }
    BOOST_TEST_MESSAGE("parallel group race: " << completed << " completed, " << aborted
                                               << " cancelled before start");
    BOOST_TEST(wrong == 0);
    BOOST_TEST(completed + aborted == n);
    BOOST_TEST(fn_objects.load() == 0);
    drain(q);  // the queue has destroyed the functions (and the states they held)
    BOOST_TEST(live_handoffs() == handoffs_before);
}

BOOST_AUTO_TEST_CASE(cancellation_races_with_signals_of_every_type_on_a_two_thread_strand) {
    serial_queue q("vmrt.test.race_signal");
    constexpr int n = 3000;
    std::vector<char> ran(n, 0);
    std::vector<int> resumed(n, 0), status(n, -9);
    std::atomic<int> fn_objects{0};
    const long handoffs_before = live_handoffs();
    asio::io_context ctx;
    auto strand = asio::make_strand(ctx);
    std::exception_ptr failure;
    bool done = false;
    auto body = [&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        std::minstd_rand rng(21);
        const asio::cancellation_type types[] = {asio::cancellation_type::terminal,
                                                 asio::cancellation_type::partial,
                                                 asio::cancellation_type::total};
        for (int i = 0; i < n; ++i) {
            asio::cancellation_signal sig;
            bool finished = false;
            auto work = std::chrono::microseconds(rng() % 40);
            asio::co_spawn(ex, report_run_on_any_cancellation(q, i, ran, resumed, fn_objects, work),
                           asio::bind_cancellation_slot(sig.slot(), [&, i](std::exception_ptr e, int s) {
                               status[i] = e ? -4 : s;
                               finished = true;
                           }));
            auto turns = static_cast<int>(rng() % 4);
            co_await yield(turns);
            if (!finished) sig.emit(types[rng() % 3]);
            while (!finished) co_await yield();
        }
        co_await run_on(q, [] {});
    };
    asio::co_spawn(strand, body(), [&](std::exception_ptr e) {
        failure = e;
        done = true;
    });
    std::vector<std::thread> threads;
    for (int t = 0; t < 2; ++t) threads.emplace_back([&ctx] { ctx.run_for(240s); });
    for (auto& t : threads) t.join();
    BOOST_REQUIRE(done);
    if (failure) std::rethrow_exception(failure);
    int completed = 0, aborted = 0, wrong = 0;
    for (int i = 0; i < n; ++i) {
        if (resumed[i] != 1) ++wrong;
        if (status[i] == 1 && ran[i] == 1)
            ++completed;
        else if (status[i] == 0 && ran[i] == 0)
            ++aborted;
        else
            ++wrong;
    }
    BOOST_TEST_MESSAGE("signal race: " << completed << " completed, " << aborted
                                       << " cancelled before start");
    BOOST_TEST(wrong == 0);
    BOOST_TEST(fn_objects.load() == 0);
    drain(q);  // the queue has destroyed the functions (and the states they held)
    BOOST_TEST(live_handoffs() == handoffs_before);
}

BOOST_AUTO_TEST_CASE(run_on_keeps_its_result_for_a_stopped_io_context_until_it_runs_again) {
    serial_queue q("vmrt.test.stopped");
    gate_guard g;
    asio::io_context ctx;
    int result = 0;
    bool done = false;
    auto body = [&]() -> asio::awaitable<void> {
        // A named fn: GCC 12 destroys a temporary lambda that owns a shared_ptr twice when it is
        // created inside the co_await expression (TSan caught it here).
        auto fn = [gate = g.g] {
            gate->wait();
            return 5;
        };
        result = co_await run_on(q, std::move(fn));
        done = true;
    };
    asio::co_spawn(ctx, body(), asio::detached);
    ctx.poll();  // the coroutine waits for fn
    ctx.stop();
    g.g->open();
    drain(q);  // fn has finished and posted its result into the stopped context
    BOOST_TEST(!done);
    ctx.restart();
    ctx.run_for(20s);
    BOOST_TEST(done);
    BOOST_TEST(result == 5);
}

BOOST_AUTO_TEST_CASE(io_context_destroyed_while_fn_is_queued_skips_fn_and_destroys_the_frame) {
    serial_queue q("vmrt.test.ctx_gone_queued");
    gate_guard g;
    q.async([gate = g.g] { gate->wait(); });
    std::atomic<bool> fn_ran{false};
    std::atomic<int> frames{0};
    bool handler_called = false;
    const long handoffs_before = live_handoffs();
    {
        auto ctx = std::make_unique<asio::io_context>();
        auto body = [&]() -> asio::awaitable<void> {
            tracked frame(frames);
            co_await run_on(q, [&fn_ran] { fn_ran = true; });
        };
        asio::co_spawn(*ctx, body(), [&](std::exception_ptr) { handler_called = true; });
        ctx->poll();
        BOOST_TEST(frames.load() == 1);
        ctx.reset();
    }
    BOOST_TEST(frames.load() == 0);
    g.g->open();
    drain(q);
    BOOST_TEST(!fn_ran.load());
    BOOST_TEST(!handler_called);
    BOOST_TEST(live_handoffs() == handoffs_before);
}

BOOST_AUTO_TEST_CASE(io_context_destroyed_while_fn_runs_waits_for_fn_before_destroying_the_frame) {
    serial_queue q("vmrt.test.ctx_gone_running");
    std::promise<void> started;
    auto fn_started = started.get_future();
    std::atomic<bool> fn_finished{false};
    std::atomic<int> frames{0};
    bool frame_alive_when_fn_finished = false;
    const long handoffs_before = live_handoffs();
    {
        auto ctx = std::make_unique<asio::io_context>();
        auto body = [&]() -> asio::awaitable<void> {
            tracked frame(frames);
            int local = 0;  // fn writes it by reference: the frame must outlive fn
            co_await run_on(q, [&] {
                started.set_value();
                std::this_thread::sleep_for(100ms);
                local = 1;
                frame_alive_when_fn_finished = frames.load() == 1;
                fn_finished = true;
            });
        };
        asio::co_spawn(*ctx, body(), asio::detached);
        ctx->poll();
        BOOST_REQUIRE(fn_started.wait_for(20s) == std::future_status::ready);
        ctx.reset();  // blocks until fn has returned
        BOOST_TEST(fn_finished.load());
    }
    BOOST_TEST(frame_alive_when_fn_finished);
    BOOST_TEST(frames.load() == 0);
    drain(q);
    BOOST_TEST(live_handoffs() == handoffs_before);
}

// ---- foreign_completion ---------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(completion_from_a_foreign_thread_resumes_on_the_awaiters_thread) {
    const auto test_thread = std::this_thread::get_id();
    run_coro([&]() -> asio::awaitable<void> {
        foreign_completion<int> done;
        std::thread::id foreign;
        std::jthread t([complete = done.completer(), &foreign] {
            std::this_thread::sleep_for(10ms);
            foreign = std::this_thread::get_id();
            complete(42);
        });
        int v = co_await done.wait();
        BOOST_TEST(v == 42);
        BOOST_TEST((std::this_thread::get_id() == test_thread));
        t.join();
        BOOST_TEST((foreign != test_thread));
    });
}

BOOST_AUTO_TEST_CASE(the_vz_pattern_a_framework_calls_back_on_the_queue) {
    // What the driver does: send a message on the VM's queue, handing over a completer; the
    // framework calls it later on that same queue.
    serial_queue q("vmrt.test.vz_pattern");
    run_coro([&]() -> asio::awaitable<void> {
        foreign_completion<std::string> started;
        bool called_on_queue = false;
        co_await run_on(q, [&] {
            q.async([&, complete = started.completer()] {
                called_on_queue = q.is_current();
                complete("running");
            });
        });
        auto state = co_await started.wait();
        BOOST_TEST(state == "running");
        BOOST_TEST(called_on_queue);
    });
}

BOOST_AUTO_TEST_CASE(completed_before_the_wait_twice_with_move_only_values_and_with_errors) {
    run_coro([&]() -> asio::awaitable<void> {
        foreign_completion<std::unique_ptr<int>, std::string> two;
        auto complete = two.completer();
        complete(std::make_unique<int>(1), "first");
        complete(std::make_unique<int>(2), "second");  // no-op: the first completion won
        auto [p, s] = co_await two.wait();
        BOOST_TEST(*p == 1);
        BOOST_TEST(s == "first");

        vmrt::error_code again;
        try {
            co_await two.wait();
        } catch (const vmrt::error& e) {
            again = e.code();
        }
        BOOST_TEST((again == vmrt::errc::invalid_state));

        foreign_completion<> nothing;
        nothing.completer()();
        co_await nothing.wait();

        foreign_completion<int> failed;
        failed.completer().fail(make_error_code(vmrt::errc::vmm_crashed), "the guest went away");
        vmrt::error_code code;
        std::string message;
        try {
            co_await failed.wait();
        } catch (const vmrt::error& e) {
            code = e.code();
            message = e.diag().message;
        }
        BOOST_TEST((code == vmrt::errc::vmm_crashed));
        BOOST_TEST(message == "the guest went away");

        foreign_completion<int> thrown;
        auto fail = thrown.completer();
        fail.fail(std::make_exception_ptr(std::logic_error("from the block")));
        fail(3);  // no-op
        std::string what;
        try {
            co_await thrown.wait();
        } catch (const std::logic_error& e) {
            what = e.what();
        }
        BOOST_TEST(what == "from the block");
    });
}

BOOST_AUTO_TEST_CASE(a_completer_released_without_being_called_fails_the_wait) {
    run_coro([&]() -> asio::awaitable<void> {
        // Every copy released before the wait, the last one on another thread.
        foreign_completion<int> dropped_early;
        {
            auto c = dropped_early.completer();
            auto copy = c;
            std::jthread([last = std::move(copy)] {}).join();
        }
        std::string message;
        vmrt::error_code code;
        try {
            co_await dropped_early.wait();
        } catch (const vmrt::error& e) {
            code = e.code();
            message = e.what();
        }
        BOOST_TEST((code == vmrt::errc::protocol_error));
        BOOST_TEST(message.find("completion handler was never called") != std::string::npos, message);

        // Released by a foreign thread while the coroutine waits.
        foreign_completion<int> dropped_late;
        std::jthread t([c = dropped_late.completer()]() mutable {
            std::this_thread::sleep_for(10ms);
            auto release = std::move(c);
        });
        code = {};
        try {
            co_await dropped_late.wait();
        } catch (const vmrt::error& e) {
            code = e.code();
        }
        BOOST_TEST((code == vmrt::errc::protocol_error));
    });
}

BOOST_AUTO_TEST_CASE(a_completion_after_the_awaiter_was_cancelled_is_kept_for_the_next_wait) {
    const long handoffs_before = live_handoffs();
    run_coro([&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        foreign_completion<std::string> slot;
        auto complete = slot.completer();
        asio::cancellation_signal sig;
        std::optional<std::exception_ptr> first;
        asio::co_spawn(
            ex, slot.wait(),
            asio::bind_cancellation_slot(sig.slot(), [&](std::exception_ptr e, std::string) { first = e; }));
        co_await yield(3);
        BOOST_TEST(!first.has_value());
        sig.emit(asio::cancellation_type::terminal);
        while (!first) co_await yield();
        BOOST_TEST(is_aborted(*first));
        std::jthread([complete] { complete("late"); }).join();
        auto value = co_await slot.wait();
        BOOST_TEST(value == "late");
    });
    BOOST_TEST(live_handoffs() == handoffs_before);
}

BOOST_AUTO_TEST_CASE(destroying_the_slot_aborts_its_waiter_and_later_completions_are_harmless) {
    const long handoffs_before = live_handoffs();
    run_coro([&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        auto slot = std::make_unique<foreign_completion<int>>();
        auto complete = slot->completer();
        std::optional<std::exception_ptr> result;
        asio::co_spawn(ex, slot->wait(), [&](std::exception_ptr e, int) { result = e; });
        co_await yield(3);
        slot.reset();
        while (!result) co_await yield();
        BOOST_TEST(is_aborted(*result));
        // The slot is gone: completing (from another thread) and releasing touch only shared state.
        std::jthread([c = std::move(complete)] { c(5); }).join();
    });
    BOOST_TEST(live_handoffs() == handoffs_before);
}

BOOST_AUTO_TEST_CASE(foreign_completions_race_cancellation_and_the_slots_destruction) {
    // A "framework" thread completes each slot after a random delay while the coroutine's wait
    // races a timer; the slot is destroyed at the end of each iteration, often before the
    // framework calls its completer.
    serial_queue framework("vmrt.test.framework");
    constexpr int n = 3000;
    int got_value = 0, got_aborted = 0, wrong = 0;
    const long handoffs_before = live_handoffs();
    run_coro(
        [&]() -> asio::awaitable<void> {
            auto ex = co_await asio::this_coro::executor;
            std::minstd_rand rng(5);
            for (int i = 0; i < n; ++i) {
                foreign_completion<int> slot;
                auto work = std::chrono::microseconds(rng() % 60);
                framework.async([complete = slot.completer(), work, i] {
                    spin_for(work);
                    complete(i);
                });
                asio::steady_timer timer(ex, std::chrono::microseconds(rng() % 60));
                auto wait = asio::co_spawn(ex, slot.wait(), asio::deferred);
                auto [order, e, v, timer_ec] =
                    co_await asio::experimental::make_parallel_group(std::move(wait),
                                                                     timer.async_wait(asio::deferred))
                        .async_wait(asio::experimental::wait_for_one(), asio::use_awaitable);
                if (!e && v == i)
                    ++got_value;
                else if (is_aborted(e))
                    ++got_aborted;
                else
                    ++wrong;
            }
            co_await run_on(framework, [] {});  // every late completion has been delivered to its orphan
        },
        240s);
    BOOST_TEST_MESSAGE("foreign completion race: " << got_value << " values, " << got_aborted
                                                   << " cancelled");
    BOOST_TEST(wrong == 0);
    BOOST_TEST(got_value + got_aborted == n);
    drain(framework);
    BOOST_TEST(live_handoffs() == handoffs_before);
}

BOOST_AUTO_TEST_CASE(a_completion_after_the_io_context_was_destroyed_is_harmless) {
    std::atomic<int> frames{0};
    std::optional<foreign_completion<int>::completer_type> keep;
    bool handler_called = false;
    const long handoffs_before = live_handoffs();
    {
        auto ctx = std::make_unique<asio::io_context>();
        auto body = [&]() -> asio::awaitable<void> {
            tracked frame(frames);
            foreign_completion<int> slot;
            keep.emplace(slot.completer());
            co_await slot.wait();
        };
        asio::co_spawn(*ctx, body(), [&](std::exception_ptr) { handler_called = true; });
        ctx->poll();
        BOOST_REQUIRE(keep.has_value());
        BOOST_TEST(frames.load() == 1);
        ctx.reset();  // the waiting coroutine is destroyed with its context
    }
    BOOST_TEST(frames.load() == 0);
    BOOST_TEST(!handler_called);
    std::jthread([c = *keep] { c(1); }).join();
    keep.reset();
    BOOST_TEST(live_handoffs() == handoffs_before);
}

BOOST_AUTO_TEST_SUITE_END()
