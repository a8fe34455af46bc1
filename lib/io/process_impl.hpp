// The state behind a `process`, shared by lib/io/process.cpp, process_wait.cpp and
// process_signal.cpp.
//
// Exactly one internal "monitor" wait on the pidfd exists while someone waits for the exit.
// The pending monitor operation owns the list of user waiters (the impl holds it weakly):
// if the io_context is destroyed with waits pending, destroying the monitor operation
// destroys the user handlers, and with them any coroutine frame that owns the process, so a
// process <-> handler ownership cycle cannot keep a child alive.
#pragma once

#include <vmrt/error.hpp>
#include <vmrt/io/process.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include <cstdint>
#include <list>
#include <memory>
#include <optional>

namespace vmrt::io {
namespace detail {

using wait_handler = boost::asio::any_completion_handler<void(error_code, exit_status)>;

struct waiter {
    std::uint64_t id = 0;
    std::optional<escalation_signals> escalation;  // set: cancellation sends signals instead
    wait_handler handler;
};
using waiter_list = std::list<waiter>;

}  // namespace detail

/// Shared by the `process` (the only strong owner) and, weakly, by the monitor operation and
/// the cancellation handlers of the waits, which must not keep the child alive.
struct process::impl : std::enable_shared_from_this<process::impl> {
    explicit impl(executor_type executor, bool group)
        : ex(std::move(executor)), pidfd(ex), own_group(group) {}

    using wait_handler = detail::wait_handler;
    using waiter_list = detail::waiter_list;

    executor_type ex;
    boost::asio::posix::stream_descriptor pidfd;
    process_identity id;
    bool own_group;
    bool reaped = false;
    std::optional<exit_status> status;
    error_code reap_error;               // the status could not be collected (someone else reaped)
    std::weak_ptr<waiter_list> waiters;  // owned by the pending monitor operation
    std::uint64_t next_waiter_id = 0;

    /// The one internal wait on the pidfd; it carries the user waiters (see the file comment).
    struct monitor_op {
        std::weak_ptr<impl> owner;
        std::shared_ptr<waiter_list> list;
        void operator()(error_code ec) {
            if (auto p = owner.lock()) p->on_monitor(ec, std::move(list));
        }
    };

    /// Installed in the cancellation slot of each user wait.
    struct canceller {
        std::weak_ptr<impl> owner;
        std::uint64_t id;
        void operator()(boost::asio::cancellation_type t) {
            if (auto p = owner.lock()) p->on_cancel(id, t);
        }
    };

    void post_completion(wait_handler h, error_code ec, exit_status s);
    void add_waiter(wait_handler h, std::optional<escalation_signals> escalation);
    /// A pidfd becomes readable once, at the exit. That is never missed: asio re-arms the
    /// descriptor (EPOLL_CTL_MOD, which re-checks readiness) whenever it queues a wait.
    void arm(std::shared_ptr<waiter_list> list);
    void on_monitor(error_code ec, std::shared_ptr<waiter_list> list);
    /// Reaps the child if it has exited; true if the process is finished (or cannot be waited for).
    bool try_reap();
    /// Blocks until the child has exited, then reaps it. Asio made the pidfd non-blocking for
    /// its reactor, and waitid() on a non-blocking pidfd never blocks: hence poll() first.
    void reap_blocking();
    void finish(std::optional<exit_status> s, error_code ec);
    void complete_all(waiter_list& list, error_code ec, exit_status s);
    void on_cancel(std::uint64_t wait_id, boost::asio::cancellation_type t);

    error_code send(int sig) noexcept;
    // Until the leader is reaped its pid cannot be reused, and so neither can the group id: only
    // then is kill(-pgid) sure to reach our group and nobody else's.
    error_code send_group(int sig) noexcept;
    void kill_and_reap() noexcept;
};

}  // namespace vmrt::io
