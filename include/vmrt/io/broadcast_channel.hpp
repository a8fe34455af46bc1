// A typed, ordered, multi-subscriber event channel. Every subscriber sees every value published
// after it subscribed, in publication order. Each subscriber has a bounded queue: a subscriber
// that stops reading loses its oldest values (counted in `dropped()`) instead of growing memory
// or stalling the publishers.
//
// Thread safety: publish, subscribe and the subscriptions' operations may be called from any
// thread. A small mutex guards each queue; it is never held across a wait or a handler call.
#pragma once

#include <vmrt/error.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/append.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>

#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

namespace vmrt::io {

namespace detail {
// Moves the value out of `from`, leaving it empty. Boost 1.81's any_completion_handler recurses
// forever on move *assignment* (which std::optional::swap of two engaged values would use), so
// handlers are only ever move-constructed.
template <typename H>
std::optional<H> take(std::optional<H>& from) {
    std::optional<H> out;
    if (from) {
        out.emplace(std::move(*from));
        from.reset();
    }
    return out;
}
}  // namespace detail

template <typename T>
class broadcast_channel;

template <typename T>
class subscription {
public:
    using executor_type = boost::asio::any_io_executor;
    using handler_type = boost::asio::any_completion_handler<void(error_code, T)>;

    subscription() = default;
    subscription(subscription&&) noexcept = default;
    subscription& operator=(subscription&&) noexcept = default;
    ~subscription() { close(); }

    /// The next value. Completes with boost::asio::error::eof once the channel is closed and the
    /// queue drained, with operation_aborted on cancellation (any type; no value is lost).
    /// One wait may be outstanding at a time. Signature: void(error_code, T).
    template <typename CompletionToken>
    auto async_next(CompletionToken&& token) {
        return boost::asio::async_initiate<CompletionToken, void(error_code, T)>(
            [this](auto handler) { next_impl(handler_type(std::move(handler))); }, token);
    }

    /// A value if one is queued, without waiting.
    std::optional<T> try_next() {
        std::lock_guard lock(state_->mutex);
        if (state_->queue.empty()) return std::nullopt;
        T v = std::move(state_->queue.front());
        state_->queue.pop_front();
        return v;
    }

    /// Values lost because this subscriber fell more than `capacity` values behind.
    std::size_t dropped() const {
        std::lock_guard lock(state_->mutex);
        return state_->dropped;
    }

    /// Stops receiving; an outstanding wait completes with eof.
    void close() {
        if (!state_) return;
        std::optional<handler_type> waiter;
        {
            std::lock_guard lock(state_->mutex);
            state_->closed = true;
            state_->queue.clear();
            waiter = detail::take(state_->waiter);
        }
        if (waiter) complete(std::move(*waiter), boost::asio::error::eof, T{});
    }

private:
    friend class broadcast_channel<T>;

    struct state {
        explicit state(executor_type e, std::size_t cap) : ex(std::move(e)), capacity(cap) {}
        std::mutex mutex;
        executor_type ex;
        std::size_t capacity;
        std::deque<T> queue;
        std::size_t dropped = 0;
        bool closed = false;
        std::optional<handler_type> waiter;

        // Called by the publisher: hands the value to a waiting reader or queues it.
        void deliver(const T& v) {
            std::optional<handler_type> ready;
            {
                std::lock_guard lock(mutex);
                if (closed) return;
                if (waiter && queue.empty()) {
                    ready = detail::take(waiter);
                } else {
                    if (queue.size() >= capacity) {
                        queue.pop_front();
                        ++dropped;
                    }
                    queue.push_back(v);
                    return;
                }
            }
            complete_on(ex, std::move(*ready), error_code{}, v);
        }
        void close_channel() {
            std::optional<handler_type> ready;
            {
                std::lock_guard lock(mutex);
                closed = true;
                if (queue.empty()) ready = detail::take(waiter);
            }
            if (ready) complete_on(ex, std::move(*ready), boost::asio::error::eof, T{});
        }
    };

    explicit subscription(std::shared_ptr<state> s) : state_(std::move(s)) {}

    static void complete_on(const executor_type& ex, handler_type h, error_code ec, T v) {
        // Never invoke the handler inline from the initiating or publishing call.
        boost::asio::post(ex, boost::asio::append(std::move(h), ec, std::move(v)));
    }
    void complete(handler_type h, error_code ec, T v) {
        complete_on(state_->ex, std::move(h), ec, std::move(v));
    }

    void next_impl(handler_type h) {
        std::unique_lock lock(state_->mutex);
        if (!state_->queue.empty()) {
            T v = std::move(state_->queue.front());
            state_->queue.pop_front();
            lock.unlock();
            complete(std::move(h), {}, std::move(v));
            return;
        }
        if (state_->closed) {
            lock.unlock();
            complete(std::move(h), boost::asio::error::eof, T{});
            return;
        }
        auto slot = boost::asio::get_associated_cancellation_slot(h);
        state_->waiter.emplace(std::move(h));
        lock.unlock();
        if (slot.is_connected()) {
            std::weak_ptr<state> weak = state_;
            slot.assign([weak](boost::asio::cancellation_type) {
                auto s = weak.lock();
                if (!s) return;
                std::optional<handler_type> cancelled;
                {
                    std::lock_guard guard(s->mutex);
                    cancelled = detail::take(s->waiter);
                }
                if (cancelled)
                    complete_on(s->ex, std::move(*cancelled), boost::asio::error::operation_aborted, T{});
            });
        }
    }

    std::shared_ptr<state> state_;
};

template <typename T>
class broadcast_channel {
public:
    explicit broadcast_channel(std::size_t per_subscriber_capacity = 4096)
        : capacity_(per_subscriber_capacity) {}
    broadcast_channel(const broadcast_channel&) = delete;
    broadcast_channel& operator=(const broadcast_channel&) = delete;
    ~broadcast_channel() { close(); }

    /// A new subscriber whose handlers run on `ex` (or on their own associated executor).
    subscription<T> subscribe(boost::asio::any_io_executor ex) {
        auto s = std::make_shared<typename subscription<T>::state>(std::move(ex), capacity_);
        std::lock_guard lock(mutex_);
        if (closed_) s->closed = true;
        subscribers_.push_back(s);
        return subscription<T>(std::move(s));
    }

    void publish(const T& value) {
        std::vector<std::shared_ptr<typename subscription<T>::state>> live;
        {
            std::lock_guard lock(mutex_);
            std::erase_if(subscribers_, [](auto& w) { return w.expired(); });
            for (auto& w : subscribers_)
                if (auto s = w.lock()) live.push_back(std::move(s));
        }
        for (auto& s : live) s->deliver(value);
    }

    /// Readers drain what is queued and then see eof.
    void close() {
        std::vector<std::weak_ptr<typename subscription<T>::state>> subs;
        {
            std::lock_guard lock(mutex_);
            closed_ = true;
            subs.swap(subscribers_);
        }
        for (auto& w : subs)
            if (auto s = w.lock()) s->close_channel();
    }

private:
    std::size_t capacity_;
    std::mutex mutex_;
    bool closed_ = false;
    std::vector<std::weak_ptr<typename subscription<T>::state>> subscribers_;
};

}  // namespace vmrt::io
