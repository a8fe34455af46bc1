// One inotify instance per execution context, shared by everything in the process that watches
// files through it (file_tail). Linux caps inotify instances per user (fs.inotify.
// max_user_instances, often 128), so an instance per followed file stops a manager of a hundred
// VMs; watches are capped far higher (max_user_watches) and are what we spend instead.
//
// Subscribers are level-triggered: a wake-up only says "look again", never what changed, so the
// hub may merge, repeat or (on a queue overflow) invent wake-ups, but never lose one that
// follows a subscriber's look at its files. The protocol that guarantees it:
//   forget_pending(); look at the files; nothing new? wait(); ... on_inotify_wakeup(): look again.
// An event that arrives between forget_pending() and wait() is remembered and makes wait() wake
// the subscriber at once.
#pragma once

#include <vmrt/error.hpp>

#include <boost/asio/any_io_executor.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace vmrt::io::detail {

class inotify_hub;
struct inotify_sink;

/// Identifies one add_watch() of one subscription; 0 is "no watch". Unlike a watch descriptor,
/// it is never shared between subscribers nor reused.
using watch_id = std::uint64_t;

/// Whoever wants wake-ups. Held weakly: once it is destroyed, it is never called again.
class inotify_subscriber {
public:
    /// Runs on the subscription's executor (posted, never inline) after an event that matches one
    /// of its watches, a queue overflow, or the loss of one of its watches (see take_lost()).
    virtual void on_inotify_wakeup() = 0;

protected:
    inotify_subscriber() = default;
    inotify_subscriber(const inotify_subscriber&) = default;
    inotify_subscriber& operator=(const inotify_subscriber&) = default;
    ~inotify_subscriber() = default;
};

/// One subscriber's watches on the inotify instance of its executor's execution context. Like an
/// I/O object, use it from one thread or strand (its executor's); the hub behind it is shared
/// and thread-safe.
class inotify_subscription {
public:
    /// An empty subscription: every operation fails with bad_descriptor or does nothing.
    inotify_subscription() noexcept;
    /// Wake-ups are posted to `ex`. Throws boost::system::system_error if the context's inotify
    /// instance cannot be created (the first subscription of a context creates it).
    inotify_subscription(boost::asio::any_io_executor ex, std::weak_ptr<inotify_subscriber> subscriber);
    inotify_subscription(inotify_subscription&& other) noexcept;
    inotify_subscription& operator=(inotify_subscription&& other) noexcept;
    ~inotify_subscription();

    /// Watches the inode `path` resolves to for the events in `mask` (flags such as IN_ONLYDIR
    /// are passed on). A non-empty `name` keeps only the events of a watched directory about
    /// its entry of that name. Other subscribers of the same inode keep their events.
    watch_id add_watch(const char* path, std::uint32_t mask, std::string name, error_code& ec);
    /// Unknown, lost or already removed ids are ignored.
    void remove_watch(watch_id id) noexcept;
    /// The watches the kernel dropped since the last call (IN_IGNORED: the inode is gone or its
    /// filesystem was unmounted). They are no longer this subscription's; add them again if
    /// there is still something to watch.
    std::vector<watch_id> take_lost();

    /// The subscriber is about to look at what it watches: earlier events need not wake it.
    void forget_pending() noexcept;
    /// Asks for one wake-up: at the next matching event, or right away if one arrived since
    /// forget_pending() or the last wake-up. While at least one subscription of a context waits,
    /// the hub keeps a read on the inotify descriptor outstanding (and so its io_context busy);
    /// otherwise it has none. An error means that the inotify instance failed for good.
    error_code wait();
    /// Withdraws a wait(); a wake-up already posted may still arrive.
    void stop_waiting() noexcept;
    /// Removes every watch. Posted wake-ups that have not run yet are dropped when they run, so
    /// after close() (called on the subscription's executor) the subscriber is not called again.
    void close() noexcept;

private:
    std::shared_ptr<inotify_hub> hub_;
    std::shared_ptr<inotify_sink> sink_;
};

}  // namespace vmrt::io::detail
