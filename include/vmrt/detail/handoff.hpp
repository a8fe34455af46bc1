// The one-shot rendezvous under io::run_on and io::foreign_completion: a result produced on a
// foreign thread (a serial queue, a framework's completion block) is handed to an Asio handler
// waiting on its own executor.
//
// Everything the foreign side touches is ref-counted shared state guarded by a mutex; the handler
// lives in that state only while it waits. The rules that make it safe:
//  * the handler is taken out of the state exactly once (settle, cancel or abandon), under the
//    mutex, so it can neither run twice nor be lost;
//  * it is always *posted* to its associated executor, never invoked on the foreign thread, and the
//    state keeps outstanding work on that executor while it waits (io_context::run() does not return
//    while a foreign call is pending);
//  * the post happens under the mutex, and the io_context's shutdown (see abandon()) takes the same
//    mutex first, so a foreign thread never posts into a context that is being destroyed;
//  * the cancellation slot handler holds only a weak_ptr to the state.
#pragma once

#include <boost/asio/append.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/execution/context.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/query.hpp>

#include <atomic>
#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <type_traits>
#include <utility>
#include <variant>

namespace vmrt::detail {

/// A value or an exception: what a bridged call hands back to the awaiting coroutine.
template <typename T>
class outcome {
public:
    template <typename... Args>
    static outcome success(Args&&... args) {
        return outcome(std::in_place_index<1>, std::forward<Args>(args)...);
    }
    static outcome failure(std::exception_ptr e) { return outcome(std::in_place_index<0>, std::move(e)); }

    /// The value, or rethrows the exception.
    T get() && {
        if (value_.index() == 0) std::rethrow_exception(std::get<0>(value_));
        return std::move(std::get<1>(value_));
    }

private:
    template <std::size_t I, typename... Args>
    explicit outcome(std::in_place_index_t<I> tag, Args&&... args)
        : value_(tag, std::forward<Args>(args)...) {}

    std::variant<std::exception_ptr, T> value_;
};

template <>
class outcome<void> {
public:
    static outcome success() { return outcome(nullptr); }
    static outcome failure(std::exception_ptr e) { return outcome(std::move(e)); }
    void get() && {
        if (error_) std::rethrow_exception(error_);
    }

private:
    explicit outcome(std::exception_ptr e) : error_(std::move(e)) {}
    std::exception_ptr error_;
};

/// system_error(boost::asio::error::operation_aborted), as Asio's own operations report cancellation.
std::exception_ptr operation_aborted_exception();
/// vmrt::error(errc::protocol_error, "completion handler was never called ...").
std::exception_ptr never_called_exception();
/// vmrt::error(errc::invalid_state, what): a foreign_completion waited on twice.
std::exception_ptr wait_misuse_exception(const char* what);

/// Something that holds a handler belonging to an execution context and must let go of it when
/// that context is destroyed (its services shut down) before the handler could be delivered.
class abandonable {
public:
    virtual void abandon() noexcept = 0;

protected:
    ~abandonable() = default;
};

/// Calls `op->abandon()` from `ctx`'s shutdown if `op` is still alive then. Holds only a weak_ptr.
void abandon_at_shutdown(boost::asio::execution_context& ctx, std::weak_ptr<abandonable> op);

/// How many handoff states are alive in the process: lets tests prove that none leaks.
std::atomic<long>& live_handoffs() noexcept;

template <typename Outcome>
class handoff final : public abandonable, public std::enable_shared_from_this<handoff<Outcome>> {
public:
    handoff() noexcept { live_handoffs().fetch_add(1, std::memory_order_relaxed); }
    handoff(const handoff&) = delete;
    handoff& operator=(const handoff&) = delete;
    ~handoff() { live_handoffs().fetch_sub(1, std::memory_order_relaxed); }

    /// Starts a wait: `handler` gets the outcome (settled before or later), operation_aborted on
    /// cancellation, or an error if another wait is pending or the outcome was already taken.
    /// Called on the handler's executor (the initiation of an async operation).
    template <typename Handler>
    void start_wait(Handler handler) {
        namespace asio = boost::asio;
        auto ex = asio::get_associated_executor(handler);
        auto slot = asio::get_associated_cancellation_slot(handler);
        auto w = std::make_unique<waiter<Handler, decltype(ex)>>(std::move(handler), ex);
        abandon_at_shutdown(asio::query(ex, asio::execution::context), this->weak_from_this());
        std::lock_guard lock(mutex_);
        if (waiter_) {
            w->post(Outcome::failure(wait_misuse_exception("another wait on this completion is pending")));
        } else if (stage_ == stage::taken) {
            w->post(
                Outcome::failure(wait_misuse_exception("the result of this completion was already taken")));
        } else if (stage_ == stage::stored) {
            stage_ = stage::taken;
            w->post(std::move(*result_));
            result_.reset();
        } else {
            // The slot is assigned before the waiter is published (we hold the mutex): once a
            // foreign thread can post the handler, the coroutine may resume on another thread and
            // reuse its slot, so nothing here may touch the slot afterwards.
            if (slot.is_connected()) {
                slot.assign([weak = this->weak_from_this()](asio::cancellation_type) {
                    if (auto self = weak.lock()) self->cancel();
                });
            }
            waiter_ = std::move(w);
        }
    }

    /// Delivers the outcome to the waiter (posted to its executor) or stores it for the next wait.
    /// The first call wins; later calls return false and drop their outcome. Any thread.
    bool settle(Outcome o) {
        std::lock_guard lock(mutex_);
        if (stage_ != stage::open) return false;
        if (waiter_ && !abandoned_) {
            stage_ = stage::taken;
            auto w = std::move(waiter_);
            w->post(std::move(o));
        } else {
            stage_ = stage::stored;
            result_.emplace(std::move(o));
        }
        settled_.notify_all();
        return true;
    }

    bool settled() const {
        std::lock_guard lock(mutex_);
        return stage_ != stage::open;
    }

    /// For run_on: called on the queue just before the function runs. False if the wait was
    /// cancelled or abandoned first (the function must not run); afterwards cancel() has no effect
    /// and abandon() waits for settle().
    bool begin_uncancellable() {
        std::lock_guard lock(mutex_);
        if (cancelled_ || abandoned_) return false;
        committed_ = true;
        return true;
    }

    /// Completes a pending wait with operation_aborted, unless begin_uncancellable() came first.
    /// The stored outcome (if it arrives later) stays available to a new wait.
    void cancel() {
        std::lock_guard lock(mutex_);
        if (committed_ || !waiter_) return;
        cancelled_ = true;
        auto w = std::move(waiter_);
        w->post(Outcome::failure(operation_aborted_exception()));
    }

    /// The waiter's execution context is shutting down: drop the handler (destroying it is what the
    /// context does with its own pending operations). A function that already started on a queue
    /// may use objects owned by the waiting coroutine, so the frames are kept until it settled.
    void abandon() noexcept override {
        std::unique_ptr<waiter_base> dropped;  // destroyed after the mutex is released
        std::unique_lock lock(mutex_);
        abandoned_ = true;
        settled_.wait(lock, [this] { return !committed_ || stage_ != stage::open; });
        dropped = std::move(waiter_);
        lock.unlock();
    }

private:
    struct waiter_base {
        virtual ~waiter_base() = default;
        virtual void post(Outcome o) = 0;
    };

    template <typename Handler, typename Executor>
    struct waiter final : waiter_base {
        using work_executor = std::decay_t<decltype(boost::asio::prefer(
            std::declval<const Executor&>(), boost::asio::execution::outstanding_work.tracked))>;

        waiter(Handler&& h, const Executor& ex)
            : handler(std::move(h)),
              work(boost::asio::prefer(ex, boost::asio::execution::outstanding_work.tracked)) {}

        void post(Outcome o) override {
            boost::asio::post(work, boost::asio::append(std::move(handler), std::move(o)));
        }

        Handler handler;
        work_executor work;  // keeps the handler's context from running out of work while we wait
    };

    enum class stage { open, stored, taken };

    mutable std::mutex mutex_;
    std::condition_variable settled_;
    stage stage_ = stage::open;
    std::optional<Outcome> result_;
    std::unique_ptr<waiter_base> waiter_;
    bool cancelled_ = false;
    bool committed_ = false;
    bool abandoned_ = false;
};

}  // namespace vmrt::detail
