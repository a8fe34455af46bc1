// Child processes: fork + execve (never a shell), exit observed through a pidfd.
//
// The pieces: exec_plan.cpp checks the options and prepares the exec, process_fork.cpp forks and
// execs, process_wait.cpp waits for the exit and reaps, process_signal.cpp signals the child and
// reads its identity; process_impl.hpp holds the state they share.
#include "io/exec_plan.hpp"
#include "io/process_fork.hpp"
#include "io/process_impl.hpp"
#include "io/process_syscalls.hpp"

#include <vmrt/io/process.hpp>

#include <boost/asio/append.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/system_executor.hpp>

#include <csignal>
#include <utility>

namespace vmrt::io {
namespace {

using detail::exec_plan;
using detail::fork_and_exec;
using detail::make_plan;
using detail::pidfd_send_signal;
using detail::reap_by_pid;
using detail::started_child;

std::shared_ptr<process::impl> start_process(process::executor_type ex, const process_options& opts,
                                             error_code& ec, std::string& what) {
    exec_plan plan;
    if ((ec = make_plan(opts, plan, what))) return nullptr;
    // Allocated before fork, so that nothing can fail between a successful exec and the handover.
    auto p = std::make_shared<process::impl>(std::move(ex), opts.new_process_group);
    started_child child = fork_and_exec(plan, ec, what);
    if (ec) return nullptr;
    p->pidfd.assign(child.pidfd.get(), ec);
    if (ec) {
        what = "registering the pidfd";
        pidfd_send_signal(child.pidfd.get(), SIGKILL);
        reap_by_pid(child.pid);
        return nullptr;
    }
    child.pidfd.release();
    p->id = read_process_identity(child.pid).value_or(process_identity{child.pid, 0});
    return p;
}

}  // namespace

// ---- process -----------------------------------------------------------------------------------

process process::spawn(executor_type ex, const process_options& opts) {
    error_code ec;
    std::string what;
    auto p = start_process(std::move(ex), opts, ec, what);
    if (ec) {
        diagnostics diag;
        diag.message = "cannot start " + opts.program.native() + ": " + what;
        throw error(ec, std::move(diag));
    }
    return process(std::move(p));
}

process process::spawn(executor_type ex, const process_options& opts, error_code& ec) {
    std::string what;
    auto p = start_process(std::move(ex), opts, ec, what);
    if (ec) return {};
    return process(std::move(p));
}

process::process(process&& other) noexcept = default;

process& process::operator=(process&& other) noexcept {
    if (this != &other) {
        kill_and_reap();
        impl_ = std::move(other.impl_);
    }
    return *this;
}

process::~process() { kill_and_reap(); }

pid_t process::pid() const noexcept { return impl_ ? impl_->id.pid : 0; }

process_identity process::identity() const noexcept { return impl_ ? impl_->id : process_identity{}; }

process::executor_type process::get_executor() const noexcept { return impl_ ? impl_->ex : executor_type{}; }

bool process::running() const noexcept { return impl_ && !impl_->reaped; }

std::optional<exit_status> process::status() const noexcept { return impl_ ? impl_->status : std::nullopt; }

error_code process::signal(int sig) noexcept {
    return impl_ ? impl_->send(sig) : make_error_code(boost::system::errc::bad_file_descriptor);
}

error_code process::signal_group(int sig) noexcept {
    return impl_ ? impl_->send_group(sig) : make_error_code(boost::system::errc::bad_file_descriptor);
}

void process::kill_and_reap() noexcept {
    if (impl_) impl_->kill_and_reap();
}

void process::async_wait_impl(boost::asio::any_completion_handler<void(error_code, exit_status)> h) {
    if (!impl_) {
        // A moved-from process has no executor: the system executor only hands the completion
        // over to the handler's own executor.
        boost::asio::post(
            boost::asio::system_executor(),
            boost::asio::append(std::move(h), boost::asio::error::bad_descriptor, exit_status{}));
        return;
    }
    impl_->add_waiter(std::move(h), std::nullopt);
}

void process::async_wait_escalating_impl(
    escalation_signals s, boost::asio::any_completion_handler<void(error_code, exit_status)> h) {
    if (!impl_) {
        async_wait_impl(std::move(h));
        return;
    }
    impl_->add_waiter(std::move(h), s);
}

}  // namespace vmrt::io
