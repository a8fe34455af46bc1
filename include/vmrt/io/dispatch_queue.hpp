// The dispatch bridge: Apple's Virtualization.framework wants every VZVirtualMachine message sent
// on the serial dispatch queue the VM was created with, and answers through completion blocks
// called on that queue. This header turns both into coroutines on Boost.Asio:
//
//   io::serial_queue queue("dev.vmrt.vm.web");                 // dispatch_queue_create(SERIAL)
//   bool ok = co_await io::run_on(queue, [&] { return can_start(vm); });   // value or exception
//
//   io::foreign_completion<objc::id> started;                  // a one-shot slot
//   co_await io::run_on(queue, [&] { start(vm, started.completer()); });
//   objc::id error = co_await started.wait();                  // resumes on this coroutine's executor
//
// On Apple the queue is a libdispatch serial queue (lib/io/dispatch_queue_apple.cpp); elsewhere it
// is one thread with the same guarantees (lib/io/dispatch_queue_thread.cpp), which is what the
// simulated Virtualization.framework of the tests runs on.
#pragma once

#include <vmrt/detail/handoff.hpp>
#include <vmrt/detail/unique_function.hpp>
#include <vmrt/error.hpp>

#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

namespace vmrt::io {

/// A serial queue with GCD's semantics: functions run one at a time, in submission order (FIFO per
/// submitting thread, and a single total order overall), never inline on the submitter's thread.
///
/// Exceptions: a function given to async() must not throw. As with GCD, whose blocks terminate the
/// process on an uncaught exception, one that escapes is reported on stderr (with the queue's label)
/// and std::terminate() is called. run_on() never lets an exception escape: it carries fn's
/// exception back to the awaiting coroutine.
///
/// Destruction runs every function submitted before the destructor returns (including functions
/// that running functions submit meanwhile), then releases the queue (joins its thread). Destroying
/// a queue from one of its own functions would wait for itself: it is detected, reported on
/// stderr and the process is terminated. Submitting from another thread concurrently with the
/// destructor is a data race on the object, as for any C++ object.
class serial_queue {
public:
    /// `label` names the queue in debuggers and crash reports (Apple recommends reverse-DNS); on
    /// Linux the first 15 bytes name the thread.
    explicit serial_queue(std::string label);
    serial_queue(const serial_queue&) = delete;
    serial_queue& operator=(const serial_queue&) = delete;
    serial_queue(serial_queue&&) = delete;
    serial_queue& operator=(serial_queue&&) = delete;
    ~serial_queue();

    /// Submits `fn` (dispatch_async_f). Thread-safe. fn never runs inline on the calling thread
    /// (it may start on the queue before async() returns). On Apple each function runs inside its
    /// own autorelease pool (DISPATCH_AUTORELEASE_FREQUENCY_WORK_ITEM); the thread-backed queue
    /// knows nothing of Objective-C, so code that relies on a pool on both platforms pushes its own.
    void async(vmrt::detail::unique_function<void()> fn);

    /// True while the calling thread runs a function of this queue (dispatch_get_specific).
    bool is_current() const noexcept;

    /// The `dispatch_queue_t` on Apple (what `-[VZVirtualMachine initWithConfiguration:queue:]`
    /// takes); elsewhere an opaque handle standing for it, which from_native() maps back.
    void* native_handle() const noexcept;

    /// The live vmrt queue whose native_handle() is `handle`, or nullptr if it is not one (on
    /// Linux: any other pointer; on Apple: a dispatch queue not created by serial_queue, which must
    /// still be a valid dispatch_queue_t). Lets a simulated framework assert which queue it runs on.
    static serial_queue* from_native(void* handle) noexcept;

    const std::string& label() const noexcept { return label_; }

private:
    struct impl;
    std::string label_;
    std::unique_ptr<impl> impl_;
};

namespace detail {

template <typename R, typename F>
vmrt::detail::outcome<R> invoke_to_outcome(F& f) {
    using vmrt::detail::outcome;
    try {
        if constexpr (std::is_void_v<R>) {
            f();
            return outcome<R>::success();
        } else {
            return outcome<R>::success(f());
        }
    } catch (...) {
        return outcome<R>::failure(std::current_exception());
    }
}

template <typename R, typename F, typename Handler>
void start_run_on(serial_queue& queue, F fn, Handler handler) {
    auto state = std::make_shared<vmrt::detail::handoff<vmrt::detail::outcome<R>>>();
    state->start_wait(std::move(handler));
    try {
        queue.async([state, f = std::optional<F>(std::move(fn))]() mutable {
            if (!state->begin_uncancellable()) return;  // cancelled (or its io_context destroyed) first
            auto result = invoke_to_outcome<R>(*f);
            f.reset();  // fn and what it owns are gone before the coroutine resumes
            state->settle(std::move(result));
        });
    } catch (...) {
        state->settle(vmrt::detail::outcome<R>::failure(std::current_exception()));
    }
}

template <typename R, typename F>
boost::asio::awaitable<vmrt::detail::outcome<R>> async_run_on(serial_queue& queue, F fn) {
    return boost::asio::async_initiate<const boost::asio::use_awaitable_t<>&, void(vmrt::detail::outcome<R>)>(
        [&queue](auto handler, F f) { start_run_on<R>(queue, std::move(f), std::move(handler)); },
        boost::asio::use_awaitable, std::move(fn));
}

template <typename... T>
struct pack_result {
    using type = std::tuple<T...>;
};
template <>
struct pack_result<> {
    using type = void;
};
template <typename T>
struct pack_result<T> {
    using type = T;
};

}  // namespace detail

/// Runs `fn()` on `queue` and resumes the awaiting coroutine on its own executor (never on the queue
/// thread) with fn's value (move-only and void results allowed) or rethrows fn's exception. fn is
/// invoked and destroyed on the queue before the coroutine resumes.
///
/// Cancellation (the coroutine's cancellation slot; terminal, partial and total alike): if it
/// arrives before fn has started, fn never runs and the coroutine gets system_error
/// operation_aborted at once. Once fn has started, cancellation has no effect: a foreign call
/// cannot be interrupted, and fn may use objects the coroutine owns (capturing by reference is the
/// natural style), so the coroutine waits for fn and gets its result. Whether a cancellation reaches
/// this operation is up to the coroutine's filter (co_spawn's default passes terminal only).
///
/// While fn is pending the coroutine's executor has outstanding work, so io_context::run() does
/// not return. If the io_context is destroyed meanwhile, a queued fn is skipped, a running fn is
/// waited for (the context's destructor blocks until it returns, so the coroutine's frames outlive
/// it), and the result is dropped on the queue thread: nothing touches the destroyed context.
/// `queue` must outlive the co_await.
///
/// GCC 12: give fn as a named local when it owns something (a shared_ptr, a handle):
/// `auto fn = [p = ptr] {...}; co_await run_on(q, std::move(fn));`. A lambda temporary created
/// inside the co_await expression is destroyed twice by GCC 12's coroutine lowering (ThreadSanitizer
/// found it as a heap-use-after-free in this project's tests).
template <typename F>
auto run_on(serial_queue& queue, F fn) -> boost::asio::awaitable<std::invoke_result_t<F&>> {
    using R = std::invoke_result_t<F&>;
    static_assert(!std::is_reference_v<R>, "run_on: fn must return a value, not a reference");
    auto op = detail::async_run_on<R>(queue, std::move(fn));
    auto result = co_await std::move(op);
    co_return std::move(result).get();
}

/// A one-shot slot that a completion-handler API fills from any thread, awaited by a coroutine:
///
///   io::foreign_completion<int, std::string> done;
///   start_something(done.completer());       // the API calls it, later, on some thread
///   auto [code, text] = co_await done.wait();
///
/// wait() yields void for no T, T for one, std::tuple<T...> for several; it resumes on the awaiting
/// coroutine's executor (the completer posts, it never runs the coroutine on the foreign thread).
///
/// The completer is copyable and thread-safe. The first completion wins (a value, fail(), or
/// "never called"); later calls are no-ops and drop their values. If every copy of the completer is
/// destroyed without having been called (a framework released its completion block without
/// invoking it), the wait fails with vmrt::error errc::protocol_error "completion handler was never
/// called". A completion that arrives before wait() is kept for it.
///
/// Cancellation- and destruction-safe: a cancelled wait() completes with operation_aborted right
/// away (a later completion is kept for a new wait()); destroying the foreign_completion aborts a
/// pending wait; a completer called after the awaiter was cancelled, after the foreign_completion
/// was destroyed or after the awaiter's io_context was destroyed touches only ref-counted shared
/// state. completer() and wait() belong to the owning coroutine's thread; co_await wait() directly
/// (the awaitable refers to *this until it starts). One wait at a time; a second wait after the
/// result was delivered fails with errc::invalid_state.
template <typename... T>
class foreign_completion {
public:
    using result_type = typename detail::pack_result<T...>::type;

private:
    using outcome_type = vmrt::detail::outcome<result_type>;
    using state_type = vmrt::detail::handoff<outcome_type>;

    // Shared by all copies of one completer: its destruction means nobody can complete any more.
    struct completer_life {
        explicit completer_life(std::shared_ptr<state_type> s) : state(std::move(s)) {}
        completer_life(const completer_life&) = delete;
        completer_life& operator=(const completer_life&) = delete;
        ~completer_life() {
            if (!state->settled())
                state->settle(outcome_type::failure(vmrt::detail::never_called_exception()));
        }
        std::shared_ptr<state_type> state;
    };

public:
    class completer_type {
    public:
        /// Completes with the values (moved). No-op if already completed.
        void operator()(T... values) const noexcept {
            if constexpr (sizeof...(T) == 0)
                life_->state->settle(outcome_type::success());
            else
                life_->state->settle(outcome_type::success(std::move(values)...));
        }
        /// Completes with an exception, rethrown by wait().
        void fail(std::exception_ptr e) const noexcept {
            life_->state->settle(outcome_type::failure(std::move(e)));
        }
        /// Completes with vmrt::error(ec, {message}), thrown by wait().
        void fail(error_code ec, std::string message = {}) const noexcept {
            diagnostics diag;
            diag.message = std::move(message);
            fail(std::make_exception_ptr(vmrt::error(ec, std::move(diag))));
        }

    private:
        friend class foreign_completion;
        explicit completer_type(std::shared_ptr<completer_life> life) : life_(std::move(life)) {}
        std::shared_ptr<completer_life> life_;
    };

    foreign_completion() : state_(std::make_shared<state_type>()) {}
    foreign_completion(const foreign_completion&) = delete;
    foreign_completion& operator=(const foreign_completion&) = delete;
    foreign_completion(foreign_completion&&) = delete;
    foreign_completion& operator=(foreign_completion&&) = delete;
    ~foreign_completion() { state_->cancel(); }

    /// A callable that completes this slot. All completers obtained while an earlier one is still
    /// alive share one lifetime for the "never called" detection.
    completer_type completer() {
        auto life = life_.lock();
        if (!life) {
            life = std::make_shared<completer_life>(state_);
            life_ = life;
        }
        return completer_type(std::move(life));
    }

    /// Waits for the completion; see the class comment.
    boost::asio::awaitable<result_type> wait() {
        auto state = state_;
        auto op = boost::asio::async_initiate<const boost::asio::use_awaitable_t<>&, void(outcome_type)>(
            [state](auto handler) { state->start_wait(std::move(handler)); }, boost::asio::use_awaitable);
        auto result = co_await std::move(op);
        co_return std::move(result).get();
    }

private:
    std::shared_ptr<state_type> state_;
    std::weak_ptr<completer_life> life_;
};

}  // namespace vmrt::io
