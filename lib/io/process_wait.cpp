// Waiting for a child's exit through its pidfd, and reaping it (see process_impl.hpp for how
// the waits are owned).
#include "io/process_impl.hpp"
#include "io/process_syscalls.hpp"

#include <boost/asio/append.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>

#include <poll.h>
#include <sys/wait.h>

#include <algorithm>
#include <cerrno>
#include <csignal>

namespace vmrt::io {
namespace {

// P_PIDFD (Linux 5.4) is an enumerator in glibc's idtype_t, not a macro; spell out its value so
// that older headers work too.
constexpr auto p_pidfd = static_cast<idtype_t>(3);

exit_status status_from(const siginfo_t& info) noexcept {
    exit_status s;
    if (info.si_code == CLD_EXITED) {
        s.code = info.si_status;
    } else {  // CLD_KILLED or CLD_DUMPED
        s.signaled = true;
        s.signal = info.si_status;
    }
    return s;
}

/// The most severe cancellation type present decides the signal.
int escalation_signal(const escalation_signals& sigs, boost::asio::cancellation_type t) noexcept {
    using ct = boost::asio::cancellation_type;
    if ((t & ct::terminal) != ct::none) return SIGKILL;
    if ((t & ct::partial) != ct::none) return SIGTERM;
    if ((t & ct::total) != ct::none) return sigs.graceful_signal;
    return 0;
}

}  // namespace

using detail::last_error;
using detail::waiter;

void process::impl::post_completion(wait_handler h, error_code ec, exit_status s) {
    boost::asio::post(ex, boost::asio::append(std::move(h), ec, s));
}

void process::impl::add_waiter(wait_handler h, std::optional<escalation_signals> escalation) {
    if (reaped) {
        post_completion(std::move(h), reap_error, status.value_or(exit_status{}));
        return;
    }
    auto wait_id = next_waiter_id++;
    auto slot = h.get_cancellation_slot();
    if (slot.is_connected()) slot.assign(canceller{weak_from_this(), wait_id});
    auto list = waiters.lock();
    const bool idle = !list;
    if (idle) {
        list = std::make_shared<waiter_list>();
        waiters = list;
    }
    list->push_back(waiter{wait_id, escalation, std::move(h)});
    if (idle) arm(std::move(list));
}

void process::impl::arm(std::shared_ptr<waiter_list> list) {
    pidfd.async_wait(boost::asio::posix::descriptor_base::wait_read,
                     monitor_op{weak_from_this(), std::move(list)});
}

void process::impl::on_monitor(error_code ec, std::shared_ptr<waiter_list> list) {
    if (reaped || try_reap()) return;
    if (ec && ec != boost::asio::error::operation_aborted) {
        complete_all(*list, ec, exit_status{});
        return;
    }
    if (!list->empty()) arm(std::move(list));  // otherwise the last wait was cancelled: go idle
}

bool process::impl::try_reap() {
    siginfo_t info{};
    if (::waitid(p_pidfd, pidfd.native_handle(), &info, WEXITED | WNOHANG) != 0) {
        if (errno == EINTR) return false;
        finish(std::nullopt, last_error());
        return true;
    }
    if (info.si_pid == 0) return false;
    finish(status_from(info), {});
    return true;
}

void process::impl::reap_blocking() {
    for (;;) {
        pollfd pfd{pidfd.native_handle(), POLLIN, 0};
        if (::poll(&pfd, 1, -1) < 0 && errno != EINTR) {
            finish(std::nullopt, last_error());
            return;
        }
        if (try_reap()) return;
    }
}

void process::impl::finish(std::optional<exit_status> s, error_code ec) {
    reaped = true;
    status = s;
    reap_error = ec;
    error_code ignored;
    pidfd.close(ignored);  // nothing to wait for any more; also aborts a pending monitor
    if (auto list = waiters.lock()) complete_all(*list, ec, s.value_or(exit_status{}));
}

void process::impl::complete_all(waiter_list& list, error_code ec, exit_status s) {
    waiter_list done;
    done.swap(list);
    for (auto& w : done) {
        // Detach our canceller: the wait is over, and the slot's owner may reuse it.
        auto slot = w.handler.get_cancellation_slot();
        if (slot.is_connected()) slot.clear();
        post_completion(std::move(w.handler), ec, s);
    }
}

void process::impl::on_cancel(std::uint64_t wait_id, boost::asio::cancellation_type t) {
    auto list = waiters.lock();
    if (!list || t == boost::asio::cancellation_type::none) return;
    auto it = std::find_if(list->begin(), list->end(), [&](const waiter& w) { return w.id == wait_id; });
    if (it == list->end()) return;
    if (it->escalation) {
        if (int sig = escalation_signal(*it->escalation, t)) send(sig);
        return;  // the wait goes on until the exit
    }
    // We run inside this slot's handler: it must not be cleared here, and needs not be
    // (the canceller finds no waiter with this id any more).
    wait_handler h = std::move(it->handler);
    list->erase(it);
    post_completion(std::move(h), boost::asio::error::operation_aborted, exit_status{});
    if (list->empty()) {
        // Nobody waits any more: release the monitor so that it does not keep the
        // io_context running.
        error_code ignored;
        pidfd.cancel(ignored);
    }
}

}  // namespace vmrt::io
