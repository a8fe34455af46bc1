// Why an execution_context service: it is the one object Asio guarantees to exist once per
// context (use_service is thread-safe), and its shutdown() runs while the context is being
// destroyed, before any service is: the last moment at which the descriptor and the strand can
// be let go of safely. The service owns a shared hub; subscriptions share it too, so one that
// outlives its context (a handler destroyed during shutdown releases its file_tail) finds a hub
// that is shut down rather than freed memory.
//
// Threads: subscriptions live on their subscribers' executors (strands of a possibly
// multi-threaded io_context), so every table is guarded by one mutex, and add_watch/rm_watch run
// under it too (an add racing with the last subscriber's rm_watch of the same inode would get a
// wd that dies a moment later). The descriptor itself is only touched on the hub's own strand:
// Asio I/O objects are not thread-safe. Wake-ups are posted after the mutex is released.
//
// Work: the read on the descriptor is outstanding only while some subscription waits, so a
// context whose subscribers are idle or gone can return from run(). The last wait withdrawn
// without an event cancels the read (on the strand); a read that completes with nobody
// waiting is simply not renewed.
#include "io/inotify_hub.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/execution/context.hpp>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/query.hpp>
#include <boost/asio/strand.hpp>
#include <boost/system/system_error.hpp>

#include <sys/inotify.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <utility>

namespace vmrt::io::detail {

namespace asio = boost::asio;

namespace {

error_code last_error() { return {errno, boost::system::system_category()}; }

}  // namespace

struct inotify_sink {
    inotify_sink(asio::any_io_executor ex, std::weak_ptr<inotify_subscriber> who)
        : executor(std::move(ex)), subscriber(std::move(who)) {}

    const asio::any_io_executor executor;
    const std::weak_ptr<inotify_subscriber> subscriber;
    // Written by close() and read by posted wake-ups, both on `executor`; atomic because that
    // executor need not be a strand.
    std::atomic<bool> closed{false};

    // Guarded by the hub's mutex.
    bool armed = false;          // wait() called and no wake-up posted since
    bool dirty = false;          // an event arrived while not armed
    std::vector<watch_id> ids;   // live watches
    std::vector<watch_id> lost;  // dropped by the kernel, not taken yet
};

class inotify_hub : public std::enable_shared_from_this<inotify_hub> {
public:
    explicit inotify_hub(asio::any_io_executor loop_executor);

    void attach(const std::shared_ptr<inotify_sink>& sink);
    void detach(inotify_sink& sink) noexcept;
    watch_id add_watch(const std::shared_ptr<inotify_sink>& sink, const char* path, std::uint32_t mask,
                       std::string name, error_code& ec);
    void remove_watch(inotify_sink& sink, watch_id id) noexcept;
    std::vector<watch_id> take_lost(inotify_sink& sink);
    void forget_pending(inotify_sink& sink) noexcept;
    error_code wait(const std::shared_ptr<inotify_sink>& sink);
    void stop_waiting(inotify_sink& sink) noexcept;
    void shutdown() noexcept;

private:
    struct subscriber_entry {
        watch_id id;
        std::uint32_t mask;  // events only, no flags
        std::string name;    // empty: every entry of a directory
        std::shared_ptr<inotify_sink> sink;
    };
    // The subscribers of one wd; the watch is removed from the kernel with the last of them.
    struct watch {
        std::vector<subscriber_entry> entries;
    };
    using woken_list = std::vector<std::shared_ptr<inotify_sink>>;

    void read_more();
    void on_read(error_code ec, std::size_t bytes);
    void cancel_if_idle();
    void dispatch_locked(std::size_t bytes, woken_list& woken);
    void wake_locked(const std::shared_ptr<inotify_sink>& sink, woken_list& woken);
    bool disarm_locked(inotify_sink& sink);
    void remove_watch_locked(inotify_sink& sink, watch_id id);
    void post_cancel_if_idle();
    static void post_wakeups(woken_list woken);

    // Both touched only on strand_, and by shutdown(), when no handler runs any more.
    asio::any_io_executor strand_;
    std::optional<asio::posix::stream_descriptor> descriptor_;
    // Room for many events at once; each one is at most sizeof(inotify_event) + NAME_MAX + 1.
    alignas(inotify_event) std::array<char, 64 * 1024> buffer_{};

    std::mutex mutex_;
    int fd_ = -1;  // for the watch calls; -1 once shut down
    std::unordered_map<int, watch> watches_;
    std::unordered_map<watch_id, int> wd_of_;
    std::unordered_map<inotify_sink*, std::shared_ptr<inotify_sink>> sinks_;
    watch_id last_id_ = 0;
    std::size_t armed_ = 0;  // sinks waiting
    bool reading_ = false;   // a read is outstanding or read_more() is posted
    bool shut_down_ = false;
    error_code failure_;  // the descriptor failed: nothing will ever wake anyone again
};

inotify_hub::inotify_hub(asio::any_io_executor loop_executor)
    : strand_(asio::make_strand(std::move(loop_executor))) {
    int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0) throw boost::system::system_error(last_error(), "inotify_init1");
    descriptor_.emplace(strand_);
    error_code ec;
    descriptor_->assign(fd, ec);
    if (ec) {
        ::close(fd);
        throw boost::system::system_error(ec, "inotify hub: descriptor");
    }
    fd_ = fd;
}

void inotify_hub::attach(const std::shared_ptr<inotify_sink>& sink) {
    std::lock_guard lock(mutex_);
    if (!shut_down_) sinks_.emplace(sink.get(), sink);
}

void inotify_hub::detach(inotify_sink& sink) noexcept {
    bool cancel = false;
    {
        std::lock_guard lock(mutex_);
        while (!sink.ids.empty()) remove_watch_locked(sink, sink.ids.back());
        sink.lost.clear();
        cancel = disarm_locked(sink);
        sinks_.erase(&sink);
    }
    if (cancel) post_cancel_if_idle();
}

watch_id inotify_hub::add_watch(const std::shared_ptr<inotify_sink>& sink, const char* path,
                                std::uint32_t mask, std::string name, error_code& ec) {
    ec.clear();
    std::lock_guard lock(mutex_);
    if (shut_down_) {
        ec = asio::error::operation_aborted;
        return 0;
    }
    // The inode may already be watched for another subscriber: without IN_MASK_ADD the kernel
    // would replace that subscriber's mask with ours. The kernel's mask only grows until the
    // watch is removed; entries filter what each subscriber gets.
    int wd = ::inotify_add_watch(fd_, path, mask | IN_MASK_ADD);
    if (wd < 0) {
        ec = last_error();
        return 0;
    }
    auto id = ++last_id_;
    watches_[wd].entries.push_back({id, mask & IN_ALL_EVENTS, std::move(name), sink});
    wd_of_.emplace(id, wd);
    sink->ids.push_back(id);
    return id;
}

void inotify_hub::remove_watch(inotify_sink& sink, watch_id id) noexcept {
    std::lock_guard lock(mutex_);
    remove_watch_locked(sink, id);
}

void inotify_hub::remove_watch_locked(inotify_sink& sink, watch_id id) {
    auto mine = std::find(sink.ids.begin(), sink.ids.end(), id);
    if (mine == sink.ids.end()) return;  // not this sink's, lost, or removed already
    sink.ids.erase(mine);
    auto found = wd_of_.find(id);
    if (found == wd_of_.end()) return;  // the tables were cleared by shutdown()
    int wd = found->second;
    wd_of_.erase(found);
    auto w = watches_.find(wd);
    if (w == watches_.end()) return;
    std::erase_if(w->second.entries, [id](const subscriber_entry& e) { return e.id == id; });
    if (w->second.entries.empty()) {
        // The kernel answers with an IN_IGNORED that finds no entry. It allocates wds
        // cyclically, so no new watch is given this number before that event is read.
        ::inotify_rm_watch(fd_, wd);
        watches_.erase(w);
    }
}

std::vector<watch_id> inotify_hub::take_lost(inotify_sink& sink) {
    std::lock_guard lock(mutex_);
    return std::exchange(sink.lost, {});
}

void inotify_hub::forget_pending(inotify_sink& sink) noexcept {
    std::lock_guard lock(mutex_);
    sink.dirty = false;
}

error_code inotify_hub::wait(const std::shared_ptr<inotify_sink>& sink) {
    bool wake_now = false;
    bool start = false;
    {
        std::lock_guard lock(mutex_);
        if (failure_) return failure_;
        if (shut_down_) return asio::error::operation_aborted;
        if (sink->armed) return {};
        if (sink->dirty || !sink->lost.empty()) {
            // Something happened since the subscriber last looked: the event that told us is
            // consumed, so waiting for another one could wait forever.
            sink->dirty = false;
            wake_now = true;
        } else {
            sink->armed = true;
            ++armed_;
            start = !std::exchange(reading_, true);
        }
    }
    if (wake_now) post_wakeups(woken_list{sink});
    if (start) asio::post(strand_, [self = shared_from_this()] { self->read_more(); });
    return {};
}

void inotify_hub::stop_waiting(inotify_sink& sink) noexcept {
    bool cancel = false;
    {
        std::lock_guard lock(mutex_);
        cancel = disarm_locked(sink);
    }
    if (cancel) post_cancel_if_idle();
}

// Whether the read should be cancelled because nobody waits any more.
bool inotify_hub::disarm_locked(inotify_sink& sink) {
    if (!sink.armed) return false;
    sink.armed = false;
    --armed_;
    return armed_ == 0 && reading_ && !shut_down_;
}

void inotify_hub::post_cancel_if_idle() {
    asio::post(strand_, [self = shared_from_this()] { self->cancel_if_idle(); });
}

void inotify_hub::cancel_if_idle() {
    {
        std::lock_guard lock(mutex_);
        // Somebody may have started waiting since: then the read stays (and if it is cancelled
        // anyway by an earlier request, on_read() renews it).
        if (shut_down_ || armed_ != 0) return;
    }
    error_code ignored;
    descriptor_->cancel(ignored);
}

void inotify_hub::read_more() {
    {
        std::lock_guard lock(mutex_);
        if (shut_down_) return;
        if (armed_ == 0 || failure_) {
            reading_ = false;
            return;
        }
    }
    // A stop_waiting() between the check and here posts a cancel_if_idle(), which runs after us
    // on the strand and finds this read to cancel.
    descriptor_->async_read_some(
        asio::buffer(buffer_),
        [self = shared_from_this()](error_code ec, std::size_t n) { self->on_read(ec, n); });
}

void inotify_hub::on_read(error_code ec, std::size_t bytes) {
    woken_list woken;
    {
        std::lock_guard lock(mutex_);
        if (shut_down_) return;
        if (!ec) {
            dispatch_locked(bytes, woken);
        } else if (ec != asio::error::operation_aborted) {
            // Reading inotify does not fail in normal operation, and an error that stays would
            // make the loop spin: give up and let every waiter hear it from wait().
            failure_ = ec;
            for (auto& entry : sinks_) wake_locked(entry.second, woken);
        }
    }
    post_wakeups(std::move(woken));
    read_more();
}

void inotify_hub::dispatch_locked(std::size_t bytes, woken_list& woken) {
    std::size_t pos = 0;
    while (pos + sizeof(inotify_event) <= bytes) {
        inotify_event event;
        std::memcpy(&event, buffer_.data() + pos, sizeof event);
        auto name_bytes = std::min<std::size_t>(event.len, bytes - pos - sizeof event);
        std::string_view name(buffer_.data() + pos + sizeof event, name_bytes);
        name = name.substr(0, name.find('\0'));  // the kernel pads names with NULs
        pos += sizeof event + event.len;

        if (event.mask & IN_Q_OVERFLOW) {  // events of anyone may be lost: everyone looks again
            for (auto& entry : sinks_) wake_locked(entry.second, woken);
            continue;
        }
        auto w = watches_.find(event.wd);
        if (w == watches_.end()) continue;  // removed since the kernel queued the event
        if (event.mask & IN_IGNORED) {
            // The kernel dropped the watch (inode gone, filesystem unmounted): nobody has it any
            // more, and its subscribers hear about it so that they can watch again.
            for (auto& entry : w->second.entries) {
                auto& sink = *entry.sink;
                std::erase(sink.ids, entry.id);
                sink.lost.push_back(entry.id);
                wd_of_.erase(entry.id);
                wake_locked(entry.sink, woken);
            }
            watches_.erase(w);
            continue;
        }
        for (auto& entry : w->second.entries)
            if ((event.mask & entry.mask) && (entry.name.empty() || entry.name == name))
                wake_locked(entry.sink, woken);
    }
}

void inotify_hub::wake_locked(const std::shared_ptr<inotify_sink>& sink, woken_list& woken) {
    if (sink->armed) {
        sink->armed = false;
        --armed_;
        woken.push_back(sink);
    } else {
        sink->dirty = true;  // the subscriber is looking right now, or will on its next wait()
    }
}

void inotify_hub::post_wakeups(woken_list woken) {
    for (auto& sink : woken) {
        auto ex = sink->executor;
        asio::post(ex, [sink = std::move(sink)] {
            if (sink->closed.load(std::memory_order_acquire)) return;
            if (auto subscriber = sink->subscriber.lock()) subscriber->on_inotify_wakeup();
        });
    }
}

void inotify_hub::shutdown() noexcept {
    std::lock_guard lock(mutex_);
    shut_down_ = true;
    fd_ = -1;
    watches_.clear();
    wd_of_.clear();
    sinks_.clear();
    armed_ = 0;
    reading_ = false;
    // No handler runs any more, and the descriptor and the strand must go now, while the
    // services they belong to (the reactor, the strand service) still exist: those may have been
    // created after this one, so they are destroyed before it, and subscriptions may keep the hub
    // alive for longer still.
    descriptor_.reset();
    strand_ = asio::any_io_executor();
}

namespace {

class inotify_service final : public asio::execution_context::service {
public:
    static asio::execution_context::id id;

    explicit inotify_service(asio::execution_context& context) : asio::execution_context::service(context) {}

    // Created on first use rather than with the service, so that a failed inotify_init1()
    // (EMFILE) is retried by the next subscription instead of being stuck in the context.
    std::shared_ptr<inotify_hub> hub(const asio::any_io_executor& ex) {
        std::lock_guard lock(mutex_);
        if (shut_down_)
            throw boost::system::system_error(asio::error::operation_aborted,
                                              "inotify hub: context shut down");
        if (!hub_) hub_ = std::make_shared<inotify_hub>(loop_executor(ex));
        return hub_;
    }

private:
    void shutdown() override {
        std::shared_ptr<inotify_hub> hub;
        {
            std::lock_guard lock(mutex_);
            shut_down_ = true;
            hub = hub_;
        }
        if (hub) hub->shutdown();
    }

    // The loop runs on (a strand of) the context's own executor rather than the first
    // subscriber's strand, so that it never queues behind one VM's work. Only the usual executor
    // types can be unwrapped; any other keeps the subscriber's executor, which is just as correct.
    static asio::any_io_executor loop_executor(const asio::any_io_executor& ex) {
        using io_executor = asio::io_context::executor_type;
        if (auto* strand = ex.target<asio::strand<asio::any_io_executor>>())
            return loop_executor(strand->get_inner_executor());
        if (auto* strand = ex.target<asio::strand<io_executor>>()) return strand->get_inner_executor();
        return ex;
    }

    std::mutex mutex_;
    std::shared_ptr<inotify_hub> hub_;
    bool shut_down_ = false;
};

asio::execution_context::id inotify_service::id;

}  // namespace

inotify_subscription::inotify_subscription() noexcept = default;

inotify_subscription::inotify_subscription(asio::any_io_executor ex,
                                           std::weak_ptr<inotify_subscriber> subscriber) {
    auto& context = asio::query(ex, asio::execution::context);
    auto hub = asio::use_service<inotify_service>(context).hub(ex);
    auto sink = std::make_shared<inotify_sink>(std::move(ex), std::move(subscriber));
    hub->attach(sink);
    hub_ = std::move(hub);
    sink_ = std::move(sink);
}

inotify_subscription::inotify_subscription(inotify_subscription&& other) noexcept = default;

inotify_subscription& inotify_subscription::operator=(inotify_subscription&& other) noexcept {
    if (this != &other) {
        close();
        hub_ = std::move(other.hub_);
        sink_ = std::move(other.sink_);
    }
    return *this;
}

inotify_subscription::~inotify_subscription() { close(); }

watch_id inotify_subscription::add_watch(const char* path, std::uint32_t mask, std::string name,
                                         error_code& ec) {
    if (!sink_) {
        ec = asio::error::bad_descriptor;
        return 0;
    }
    return hub_->add_watch(sink_, path, mask, std::move(name), ec);
}

void inotify_subscription::remove_watch(watch_id id) noexcept {
    if (sink_) hub_->remove_watch(*sink_, id);
}

std::vector<watch_id> inotify_subscription::take_lost() {
    if (!sink_) return {};
    return hub_->take_lost(*sink_);
}

void inotify_subscription::forget_pending() noexcept {
    if (sink_) hub_->forget_pending(*sink_);
}

error_code inotify_subscription::wait() {
    if (!sink_) return asio::error::bad_descriptor;
    return hub_->wait(sink_);
}

void inotify_subscription::stop_waiting() noexcept {
    if (sink_) hub_->stop_waiting(*sink_);
}

void inotify_subscription::close() noexcept {
    if (!sink_) return;
    sink_->closed.store(true, std::memory_order_release);
    hub_->detach(*sink_);
    sink_.reset();
    hub_.reset();
}

}  // namespace vmrt::io::detail
