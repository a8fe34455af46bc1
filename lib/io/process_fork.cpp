// Starting a child: fork + execve of a prepared exec_plan.
//
// Design notes:
//  * Everything the child needs (argv, envp, the resolved path, the fds for stdio) is prepared
//    before fork() (exec_plan.cpp), so that the child only makes async-signal-safe system calls
//    until execve().
//  * A failure in the child (chdir, exec, ...) is written as a small record into a CLOEXEC pipe;
//    the parent reads until EOF, which is either such a record or the proof that exec succeeded.
#include "io/process_fork.hpp"

#include "io/process_syscalls.hpp"

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <optional>
#include <utility>

namespace vmrt::io::detail {
namespace {

// CLOSE_RANGE_CLOEXEC (Linux 5.11), from <linux/close_range.h>.
constexpr unsigned close_range_cloexec = 1U << 2;

/// The steps the child takes between fork and exec; a failing one is reported to the parent.
enum class child_step : int { setpgid, pdeathsig, stdio, inherit_fd, chdir, exec };

const char* step_name(child_step s) noexcept {
    switch (s) {
    case child_step::setpgid:
        return "setpgid";
    case child_step::pdeathsig:
        return "prctl(PR_SET_PDEATHSIG)";
    case child_step::stdio:
        return "redirecting stdio";
    case child_step::inherit_fd:
        return "keeping an inherited descriptor";
    case child_step::chdir:
        return "chdir";
    case child_step::exec:
        return "exec";
    }
    return "?";
}

/// What the child writes into the report pipe when it cannot exec.
struct child_failure {
    child_step step;
    int error;
};

// ---- the child, between fork and exec: async-signal-safe calls only ---------------------------

[[noreturn]] void fail_in_child(int report_fd, child_step step, int error) noexcept {
    child_failure failure{step, error};
    // Nothing useful can be done if this write fails: the parent then sees a plain exit 127.
    [[maybe_unused]] auto n = ::write(report_fd, &failure, sizeof failure);
    ::_exit(127);
}

/// Dispositions set by the parent (ignored signals survive exec) and the signal mask (blocked
/// around fork by the parent) must not leak into the VMM.
void reset_signals() noexcept {
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    ::sigemptyset(&dfl.sa_mask);
    for (int sig = 1; sig < NSIG; ++sig) ::sigaction(sig, &dfl, nullptr);  // SIGKILL etc. fail: fine
    sigset_t none;
    ::sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
}

/// Marks every fd >= 3 close-on-exec rather than closing it, so that the report pipe stays
/// usable until exec; the caller then clears the flag on the fds the child is meant to inherit.
void mark_fds_cloexec(const exec_plan& plan) noexcept {
    if (::syscall(SYS_close_range, 3U, ~0U, close_range_cloexec) != 0) {
        for (int fd = 3; fd < plan.fd_limit; ++fd) ::fcntl(fd, F_SETFD, FD_CLOEXEC);  // pre-5.11 kernels
    }
}

[[noreturn]] void run_child(const exec_plan& plan, int report_fd) noexcept {
    if (plan.new_process_group && ::setpgid(0, 0) != 0) fail_in_child(report_fd, child_step::setpgid, errno);
    if (plan.death_signal != 0) {
        if (::prctl(PR_SET_PDEATHSIG, plan.death_signal) != 0)
            fail_in_child(report_fd, child_step::pdeathsig, errno);
        // The parent may have died before prctl(): then the death signal will never come.
        if (::getppid() != plan.parent) ::_exit(127);
    }
    reset_signals();
    const int stdout_source = plan.stdout_fd ? plan.stdout_fd.get() : plan.output_fd.get();
    if (::dup2(plan.stdin_fd.get(), 0) < 0 || ::dup2(stdout_source, 1) < 0 ||
        ::dup2(plan.output_fd.get(), 2) < 0)
        fail_in_child(report_fd, child_step::stdio, errno);
    mark_fds_cloexec(plan);
    for (int fd : plan.inherited_fds)
        if (::fcntl(fd, F_SETFD, 0) != 0) fail_in_child(report_fd, child_step::inherit_fd, errno);
    if (plan.working_dir && ::chdir(plan.working_dir->c_str()) != 0)
        fail_in_child(report_fd, child_step::chdir, errno);
    ::execve(plan.path.c_str(), plan.argv.data(), plan.envp.data());
    fail_in_child(report_fd, child_step::exec, errno);
}

// ---- the parent ------------------------------------------------------------------------------

/// Blocks every signal for its lifetime, so that a signal arriving between fork and the child's
/// reset_signals() cannot run one of the parent's handlers in the child.
class signal_blocker {
public:
    signal_blocker() noexcept {
        sigset_t all;
        ::sigfillset(&all);
        ::pthread_sigmask(SIG_SETMASK, &all, &saved_);
    }
    ~signal_blocker() { ::pthread_sigmask(SIG_SETMASK, &saved_, nullptr); }
    signal_blocker(const signal_blocker&) = delete;
    signal_blocker& operator=(const signal_blocker&) = delete;

private:
    sigset_t saved_{};
};

/// Reads the child's report until EOF (= the exec succeeded). Returns the failure, if any.
std::optional<child_failure> read_child_report(int fd) noexcept {
    child_failure failure{};
    auto* bytes = reinterpret_cast<char*>(&failure);
    std::size_t got = 0;
    while (got < sizeof failure) {
        ssize_t n = ::read(fd, bytes + got, sizeof failure - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += static_cast<std::size_t>(n);
    }
    if (got == sizeof failure) return failure;
    return std::nullopt;
}

}  // namespace

/// Waits for a child we have not handed out yet (it failed before exec or we cannot track it).
void reap_by_pid(pid_t pid) noexcept {
    while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
}

/// fork + exec; on failure `ec` is set and `what` says which step failed.
started_child fork_and_exec(const exec_plan& plan, error_code& ec, std::string& what) {
    int report[2];
    if (::pipe2(report, O_CLOEXEC) != 0) {
        ec = last_error();
        what = "pipe";
        return {};
    }
    unique_fd report_read(report[0]), report_write(report[1]);
    if ((ec = move_above_stdio(report_write))) {
        what = "pipe";
        return {};
    }
    pid_t pid;
    {
        signal_blocker blocked;
        pid = ::fork();
        if (pid == 0) run_child(plan, report_write.get());
    }
    if (pid < 0) {
        ec = last_error();
        what = "fork";
        return {};
    }
    report_write.reset();  // so that the read below sees EOF once the child has exec'd
    auto failure = read_child_report(report_read.get());
    if (failure) {
        reap_by_pid(pid);
        ec = errno_code(failure->error);
        what = step_name(failure->step);
        return {};
    }
    // Safe: the child has not been reaped, so `pid` still names it.
    unique_fd pidfd(pidfd_open(pid));
    if (!pidfd) {
        ec = last_error();
        what = "pidfd_open";
        ::kill(pid, SIGKILL);
        reap_by_pid(pid);
        return {};
    }
    return {pid, std::move(pidfd)};
}

}  // namespace vmrt::io::detail
