// io::serial_queue on Apple platforms: a libdispatch serial queue, driven through libdispatch's C
// API (dispatch_async_f and friends; no blocks, no Objective-C), so this file is plain C++.
//
// NOT COMPILED OR RUN HERE: the project has no Mac. This file is built only `if(APPLE)`
// (lib/CMakeLists.txt); Linux builds and every test use lib/io/dispatch_queue_thread.cpp, which
// implements the same contract with a thread. It was written against Apple's documented API and
// libdispatch's open source (swift-corelibs-libdispatch / apple-oss-distributions libdispatch):
//  * dispatch_queue_create(label, attr): libdispatch copies a label held in writable memory
//    (_dispatch_strdup_if_mutable in queue.c); we keep label_ alive for the queue's life anyway.
//  * DISPATCH_AUTORELEASE_FREQUENCY_WORK_ITEM (macOS 10.12+): "push and pop an autorelease pool
//    around the execution of every block that was submitted to it asynchronously", so objects a VZ
//    call autoreleases are freed after each function instead of piling up on a worker thread.
//  * dispatch_queue_set_specific / dispatch_get_specific / dispatch_queue_get_specific: keys are
//    compared as pointers only (we use the address of a static); dispatch_get_specific answers for
//    the queue the current block runs on (and its target queues), which is is_current().
//  * dispatch_async_f(queue, context, work): the system retains the queue until work returns.
//  * dispatch_sync_f on a serial queue runs after every block submitted before it, and deadlocks if
//    called from that queue, hence the is_current() check in the destructor.
//  * C++ (not Objective-C++) sees dispatch_queue_t as a plain pointer type, so dispatch_release()
//    is available and void* conversions are static_casts.
#include "io/dispatch_queue_run.hpp"

#include <vmrt/io/dispatch_queue.hpp>

#include <dispatch/dispatch.h>

#include <atomic>
#include <cstddef>
#include <memory>
#include <stdexcept>

namespace vmrt::io {

namespace {
// Its address is the dispatch_queue_set_specific key; the value stored under it is the
// serial_queue*.
char queue_key;
}  // namespace

struct serial_queue::impl {
    // What dispatch_async_f carries as its context.
    struct job {
        impl* owner;
        vmrt::detail::unique_function<void()> fn;
    };

    // The dispatch_function_t, run on the queue. The job is deleted (fn's captures destroyed)
    // before the count drops: the count reaching 0 lets the destructor free `owner`.
    static void run_job(void* context) noexcept {
        std::unique_ptr<job> j(static_cast<job*>(context));
        impl* owner = j->owner;
        detail::run_queue_function(j->fn, *owner->label);
        j.reset();
        owner->unfinished.fetch_sub(1, std::memory_order_release);
    }

    static void drain_barrier(void*) noexcept {}

    dispatch_queue_t queue = nullptr;
    // Functions submitted and not yet finished: the destructor drains until it reaches 0.
    std::atomic<std::size_t> unfinished{0};
    const std::string* label = nullptr;
};

serial_queue::serial_queue(std::string label) : label_(std::move(label)), impl_(std::make_unique<impl>()) {
    impl_->label = &label_;
    dispatch_queue_attr_t attr = dispatch_queue_attr_make_with_autorelease_frequency(
        DISPATCH_QUEUE_SERIAL, DISPATCH_AUTORELEASE_FREQUENCY_WORK_ITEM);
    impl_->queue = dispatch_queue_create(label_.c_str(), attr);
    if (!impl_->queue) throw std::runtime_error("dispatch_queue_create failed for '" + label_ + "'");
    dispatch_queue_set_specific(impl_->queue, &queue_key, this, nullptr);
}

serial_queue::~serial_queue() {
    if (is_current()) detail::die_destroyed_on_itself(label_);
    // A sync barrier waits for everything submitted before it; functions may submit more while we
    // wait, so repeat until nothing is left.
    do {
        dispatch_sync_f(impl_->queue, nullptr, &impl::drain_barrier);
    } while (impl_->unfinished.load(std::memory_order_acquire) != 0);
    // from_native() on this handle must not find a destroyed object; then drop our reference.
    dispatch_queue_set_specific(impl_->queue, &queue_key, nullptr, nullptr);
    dispatch_release(impl_->queue);
}

void serial_queue::async(vmrt::detail::unique_function<void()> fn) {
    if (!fn) throw std::invalid_argument("serial_queue::async: empty function");
    auto j = std::make_unique<impl::job>(impl::job{impl_.get(), std::move(fn)});
    impl_->unfinished.fetch_add(1, std::memory_order_relaxed);
    dispatch_async_f(impl_->queue, j.release(), &impl::run_job);
}

bool serial_queue::is_current() const noexcept { return dispatch_get_specific(&queue_key) == this; }

void* serial_queue::native_handle() const noexcept { return impl_->queue; }

serial_queue* serial_queue::from_native(void* handle) noexcept {
    if (!handle) return nullptr;
    return static_cast<serial_queue*>(
        dispatch_queue_get_specific(static_cast<dispatch_queue_t>(handle), &queue_key));
}

}  // namespace vmrt::io
