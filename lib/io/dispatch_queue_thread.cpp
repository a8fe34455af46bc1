// io::serial_queue without libdispatch (every platform but Apple's): one thread per queue running
// the submitted functions in order, with GCD's guarantees (see include/vmrt/io/dispatch_queue.hpp).
// This is the queue the simulated Virtualization.framework of the tests runs on, so its
// native_handle() must map back to the queue (from_native) for the simulation's thread checks.
#include "io/dispatch_queue_run.hpp"

#include <vmrt/io/dispatch_queue.hpp>

#include <pthread.h>

#include <condition_variable>
#include <cstdio>
#include <deque>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <unordered_set>

namespace vmrt::io {

struct serial_queue::impl {
    explicit impl(serial_queue& q) : owner(q) {}

    void run() noexcept;

    serial_queue& owner;
    std::mutex mutex;
    std::condition_variable wake;
    std::deque<vmrt::detail::unique_function<void()>> pending;
    bool stopping = false;
    std::thread thread;
};

namespace {

// The queue (its impl) whose function the calling thread is running: dispatch_get_specific's role.
thread_local const void* running_queue = nullptr;

// Handles of live queues, so that from_native() can refuse a pointer that is not one.
std::mutex live_mutex;
std::unordered_set<const void*>& live_handles() {
    static std::unordered_set<const void*> handles;
    return handles;
}

}  // namespace

void serial_queue::impl::run() noexcept {
    running_queue = this;
    std::unique_lock lock(mutex);
    for (;;) {
        wake.wait(lock, [this] { return stopping || !pending.empty(); });
        if (pending.empty()) return;  // stopping, and every submitted function has run
        auto fn = std::move(pending.front());
        pending.pop_front();
        lock.unlock();
        detail::run_queue_function(fn, owner.label());
        fn = nullptr;  // what fn owns is destroyed on the queue too, outside the lock
        lock.lock();
    }
}

serial_queue::serial_queue(std::string label)
    : label_(std::move(label)), impl_(std::make_unique<impl>(*this)) {
    {
        std::lock_guard lock(live_mutex);
        live_handles().insert(impl_.get());
    }
    try {
        impl_->thread = std::thread([q = impl_.get()] { q->run(); });
    } catch (...) {
        std::lock_guard lock(live_mutex);
        live_handles().erase(impl_.get());
        throw;
    }
#ifdef __linux__
    // A debugger and `top -H` show the queue's label (Linux limits thread names to 15 bytes).
    pthread_setname_np(impl_->thread.native_handle(), label_.substr(0, 15).c_str());
#endif
}

serial_queue::~serial_queue() {
    if (is_current()) detail::die_destroyed_on_itself(label_);
    {
        std::lock_guard lock(impl_->mutex);
        impl_->stopping = true;
    }
    impl_->wake.notify_one();
    impl_->thread.join();
    std::lock_guard lock(live_mutex);
    live_handles().erase(impl_.get());
}

void serial_queue::async(vmrt::detail::unique_function<void()> fn) {
    if (!fn) throw std::invalid_argument("serial_queue::async: empty function");
    {
        std::lock_guard lock(impl_->mutex);
        impl_->pending.push_back(std::move(fn));
    }
    impl_->wake.notify_one();
}

bool serial_queue::is_current() const noexcept { return running_queue == impl_.get(); }

void* serial_queue::native_handle() const noexcept { return impl_.get(); }

serial_queue* serial_queue::from_native(void* handle) noexcept {
    std::lock_guard lock(live_mutex);
    if (!handle || !live_handles().contains(handle)) return nullptr;
    return &static_cast<impl*>(handle)->owner;
}

}  // namespace vmrt::io
