// Child processes: fork + execve (never a shell), exit observed through a pidfd.
//
// Design notes:
//  * Everything the child needs (argv, envp, the resolved path, the fds for stdio) is prepared
//    before fork(), so that the child only makes async-signal-safe system calls until execve().
//  * A failure in the child (chdir, exec, ...) is written as a small record into a CLOEXEC pipe;
//    the parent reads until EOF, which is either such a record or the proof that exec succeeded.
//  * Exactly one internal "monitor" wait on the pidfd exists while someone waits for the exit.
//    The pending monitor operation owns the list of user waiters (the impl holds it weakly):
//    if the io_context is destroyed with waits pending, destroying the monitor operation
//    destroys the user handlers, and with them any coroutine frame that owns the process, so a
//    process <-> handler ownership cycle cannot keep a child alive.
#include <vmrt/io/process.hpp>
#include <vmrt/io/unique_fd.hpp>

#include <boost/asio/append.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/system_executor.hpp>

#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <list>
#include <map>
#include <string_view>

extern char** environ;

namespace vmrt::io {
namespace {

// P_PIDFD (Linux 5.4) is an enumerator in glibc's idtype_t, not a macro; spell out its value so
// that older headers work too.
constexpr auto p_pidfd = static_cast<idtype_t>(3);
// CLOSE_RANGE_CLOEXEC (Linux 5.11), from <linux/close_range.h>.
constexpr unsigned close_range_cloexec = 1U << 2;

error_code errno_code(int e) noexcept { return {e, boost::system::system_category()}; }
error_code last_error() noexcept { return errno_code(errno); }

/// The child dup2()s onto 0, 1 and 2; a source fd that itself sits in that range (the parent runs
/// with a closed stdio fd) could be overwritten before it is used, so keep ours above 2.
error_code move_above_stdio(unique_fd& fd) noexcept {
    if (fd.get() > 2) return {};
    int moved = ::fcntl(fd.get(), F_DUPFD_CLOEXEC, 3);
    if (moved < 0) return last_error();
    fd.reset(moved);
    return {};
}

unique_fd open_cloexec(const char* path, int flags, error_code& ec, mode_t mode = 0) noexcept {
    unique_fd fd(::open(path, flags | O_CLOEXEC, mode));
    if (!fd) {
        ec = last_error();
        return {};
    }
    ec = move_above_stdio(fd);
    return ec ? unique_fd{} : std::move(fd);
}

int pidfd_open(pid_t pid) noexcept { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0U)); }

int pidfd_send_signal(int pidfd, int sig) noexcept {
    return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0U));
}

/// Reads a small file (from /proc) with one descriptor that is never inherited.
std::optional<std::string> read_small_file(const std::string& path) {
    error_code ec;
    unique_fd fd = open_cloexec(path.c_str(), O_RDONLY, ec);
    if (!fd) return std::nullopt;
    std::string text;
    std::array<char, 1024> buf;
    for (;;) {
        ssize_t n = ::read(fd.get(), buf.data(), buf.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return std::nullopt;
        if (n == 0) return text;
        text.append(buf.data(), static_cast<std::size_t>(n));
    }
}

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

// ---- preparing the exec ------------------------------------------------------------------------

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

/// Everything the child needs, built before fork() so that the child does not allocate.
struct exec_plan {
    std::string path;  // resolved executable
    std::vector<std::string> arg_storage;
    std::vector<char*> argv;
    std::vector<std::string> env_storage;
    std::vector<char*> envp;
    std::optional<std::string> working_dir;
    std::vector<int> inherited_fds;
    unique_fd stdin_fd;
    unique_fd output_fd;
    bool new_process_group = true;
    int death_signal = 0;
    pid_t parent = 0;
    int fd_limit = 0;  // upper bound for the close_range() fallback
};

/// PATH lookup like execvp(), but done in the parent (and with the parent's PATH) so that a
/// missing program is reported without forking.
std::string resolve_program(const std::filesystem::path& program, error_code& ec) {
    const std::string& name = program.native();
    if (name.empty()) {
        ec = errno_code(ENOENT);
        return {};
    }
    if (name.find('/') != std::string::npos) return name;  // exec reports a missing file
    std::string search_path;
    if (const char* p = std::getenv("PATH")) {
        search_path = p;
    } else {
        search_path.resize(::confstr(_CS_PATH, nullptr, 0));
        ::confstr(_CS_PATH, search_path.data(), search_path.size());
        search_path.resize(std::strlen(search_path.c_str()));
    }
    int failure = ENOENT;
    std::string_view rest = search_path;
    for (;;) {
        auto colon = rest.find(':');
        std::string dir(rest.substr(0, colon));
        std::string candidate = (dir.empty() ? std::string(".") : dir) + "/" + name;
        struct stat st {};
        if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
            if (::access(candidate.c_str(), X_OK) == 0) return candidate;
            failure = EACCES;  // like execvp: remember that one existed but was not executable
        }
        if (colon == std::string_view::npos) break;
        rest.remove_prefix(colon + 1);
    }
    ec = errno_code(failure);
    return {};
}

std::vector<char*> pointers_to(std::vector<std::string>& strings) {
    std::vector<char*> ptrs;
    ptrs.reserve(strings.size() + 1);
    for (auto& s : strings) ptrs.push_back(s.data());
    ptrs.push_back(nullptr);
    return ptrs;
}

/// The parent's environment with `overrides` applied (a later override of a name wins).
std::vector<std::string> child_environment(const process_options& opts, error_code& ec) {
    std::map<std::string, std::string, std::less<>> overrides;
    for (const auto& [name, value] : opts.env_overrides) {
        if (name.empty() || name.find('=') != std::string::npos) {
            ec = errno_code(EINVAL);
            return {};
        }
        overrides.insert_or_assign(name, value);
    }
    std::vector<std::string> env;
    for (char** e = environ; e && *e; ++e) {
        std::string_view entry(*e);
        if (!overrides.contains(entry.substr(0, entry.find('=')))) env.emplace_back(entry);
    }
    for (const auto& [name, value] : overrides) env.push_back(name + "=" + value);
    return env;
}

/// Inherited fds must be open in the parent and must not collide with the child's stdio.
error_code check_inherited_fds(const std::vector<int>& fds) noexcept {
    for (int fd : fds) {
        if (fd <= 2) return errno_code(EINVAL);
        if (::fcntl(fd, F_GETFD) < 0) return last_error();
    }
    return {};
}

int descriptor_limit() noexcept {
    rlimit lim{};
    if (::getrlimit(RLIMIT_NOFILE, &lim) != 0 || lim.rlim_cur == RLIM_INFINITY) return 1 << 20;
    return static_cast<int>(std::min<rlim_t>(lim.rlim_cur, 1 << 20));
}

/// Fills `plan`; on failure `what` names the step that failed.
error_code make_plan(const process_options& opts, exec_plan& plan, std::string& what) {
    error_code ec;
    plan.path = resolve_program(opts.program, ec);
    if (ec) {
        what = "not found in PATH";
        return ec;
    }
    plan.arg_storage.push_back(opts.program.native());
    plan.arg_storage.insert(plan.arg_storage.end(), opts.args.begin(), opts.args.end());
    plan.argv = pointers_to(plan.arg_storage);
    plan.env_storage = child_environment(opts, ec);
    if (ec) {
        what = "invalid environment variable name";
        return ec;
    }
    plan.envp = pointers_to(plan.env_storage);
    if (opts.working_dir) plan.working_dir = opts.working_dir->native();
    if ((ec = check_inherited_fds(opts.inherited_fds))) {
        what = "invalid inherited descriptor";
        return ec;
    }
    plan.inherited_fds = opts.inherited_fds;
    plan.stdin_fd = open_cloexec("/dev/null", O_RDWR, ec);
    if (!ec) {
        plan.output_fd = opts.log_file
                             ? open_cloexec(opts.log_file->c_str(), O_WRONLY | O_CREAT | O_TRUNC, ec, 0644)
                             : open_cloexec("/dev/null", O_WRONLY, ec);
    }
    if (ec) {
        what = "cannot open " + (opts.log_file ? opts.log_file->native() : std::string("/dev/null"));
        return ec;
    }
    plan.new_process_group = opts.new_process_group;
    plan.death_signal = opts.parent_death_signal;
    plan.parent = ::getpid();
    plan.fd_limit = descriptor_limit();
    return {};
}

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
    if (::dup2(plan.stdin_fd.get(), 0) < 0 || ::dup2(plan.output_fd.get(), 1) < 0 ||
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

/// Waits for a child we have not handed out yet (it failed before exec or we cannot track it).
void reap_by_pid(pid_t pid) noexcept {
    while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
}

struct started_child {
    pid_t pid = -1;
    unique_fd pidfd;
};

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

// ---- waiting -----------------------------------------------------------------------------------

using wait_handler = boost::asio::any_completion_handler<void(error_code, exit_status)>;

struct waiter {
    std::uint64_t id = 0;
    std::optional<escalation_signals> escalation;  // set: cancellation sends signals instead
    wait_handler handler;
};
using waiter_list = std::list<waiter>;

/// The most severe cancellation type present decides the signal.
int escalation_signal(const escalation_signals& sigs, boost::asio::cancellation_type t) noexcept {
    using ct = boost::asio::cancellation_type;
    if ((t & ct::terminal) != ct::none) return SIGKILL;
    if ((t & ct::partial) != ct::none) return SIGTERM;
    if ((t & ct::total) != ct::none) return sigs.graceful_signal;
    return 0;
}

}  // namespace

/// Shared by the `process` (the only strong owner) and, weakly, by the monitor operation and
/// the cancellation handlers of the waits, which must not keep the child alive.
struct process::impl : std::enable_shared_from_this<process::impl> {
    explicit impl(executor_type executor, bool group)
        : ex(std::move(executor)), pidfd(ex), own_group(group) {}

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

    void post_completion(wait_handler h, error_code ec, exit_status s) {
        boost::asio::post(ex, boost::asio::append(std::move(h), ec, s));
    }

    void add_waiter(wait_handler h, std::optional<escalation_signals> escalation) {
        if (reaped) {
            post_completion(std::move(h), reap_error, status.value_or(exit_status{}));
            return;
        }
        auto wait_id = next_waiter_id++;
        auto slot = h.get_cancellation_slot();
        if (slot.is_connected()) slot.emplace<canceller>(weak_from_this(), wait_id);
        auto list = waiters.lock();
        const bool idle = !list;
        if (idle) {
            list = std::make_shared<waiter_list>();
            waiters = list;
        }
        list->push_back(waiter{wait_id, escalation, std::move(h)});
        if (idle) arm(std::move(list));
    }

    /// A pidfd becomes readable once, at the exit. That is never missed: asio re-arms the
    /// descriptor (EPOLL_CTL_MOD, which re-checks readiness) whenever it queues a wait.
    void arm(std::shared_ptr<waiter_list> list) {
        pidfd.async_wait(boost::asio::posix::descriptor_base::wait_read,
                         monitor_op{weak_from_this(), std::move(list)});
    }

    void on_monitor(error_code ec, std::shared_ptr<waiter_list> list) {
        if (reaped || try_reap()) return;
        if (ec && ec != boost::asio::error::operation_aborted) {
            complete_all(*list, ec, exit_status{});
            return;
        }
        if (!list->empty()) arm(std::move(list));  // otherwise the last wait was cancelled: go idle
    }

    /// Reaps the child if it has exited; true if the process is finished (or cannot be waited for).
    bool try_reap() {
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

    /// Blocks until the child has exited, then reaps it. Asio made the pidfd non-blocking for
    /// its reactor, and waitid() on a non-blocking pidfd never blocks: hence poll() first.
    void reap_blocking() {
        for (;;) {
            pollfd pfd{pidfd.native_handle(), POLLIN, 0};
            if (::poll(&pfd, 1, -1) < 0 && errno != EINTR) {
                finish(std::nullopt, last_error());
                return;
            }
            if (try_reap()) return;
        }
    }

    void finish(std::optional<exit_status> s, error_code ec) {
        reaped = true;
        status = s;
        reap_error = ec;
        error_code ignored;
        pidfd.close(ignored);  // nothing to wait for any more; also aborts a pending monitor
        if (auto list = waiters.lock()) complete_all(*list, ec, s.value_or(exit_status{}));
    }

    void complete_all(waiter_list& list, error_code ec, exit_status s) {
        waiter_list done;
        done.swap(list);
        for (auto& w : done) {
            // Detach our canceller: the wait is over, and the slot's owner may reuse it.
            auto slot = w.handler.get_cancellation_slot();
            if (slot.is_connected()) slot.clear();
            post_completion(std::move(w.handler), ec, s);
        }
    }

    void on_cancel(std::uint64_t wait_id, boost::asio::cancellation_type t) {
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

    error_code send(int sig) noexcept {
        if (reaped) return {};
        if (pidfd_send_signal(pidfd.native_handle(), sig) == 0 || errno == ESRCH) return {};
        return last_error();
    }

    // Until the leader is reaped its pid cannot be reused, and so neither can the group id: only
    // then is kill(-pgid) sure to reach our group and nobody else's.
    error_code send_group(int sig) noexcept {
        if (!own_group) return errc::invalid_state;  // the group is the caller's own
        if (reaped) return {};
        if (::kill(-id.pid, sig) == 0 || errno == ESRCH) return {};
        return last_error();
    }

    void kill_and_reap() noexcept {
        if (reaped) return;
        // The group takes the VMM's own children along; the pidfd still reaches the child if it
        // has left its group (setsid) or never had one of its own.
        if (own_group) ::kill(-id.pid, SIGKILL);
        pidfd_send_signal(pidfd.native_handle(), SIGKILL);
        reap_blocking();
    }
};

namespace {

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

// ---- free functions ----------------------------------------------------------------------------

std::optional<process_identity> read_process_identity(pid_t pid) {
    if (pid <= 0) return std::nullopt;
    auto text = read_small_file("/proc/" + std::to_string(pid) + "/stat");
    if (!text) return std::nullopt;
    // The command name (field 2) is in parentheses and may itself contain ')' and spaces.
    auto paren = text->rfind(')');
    if (paren == std::string::npos) return std::nullopt;
    std::string_view rest = std::string_view(*text).substr(paren + 1);
    // After ')' come fields 3, 4, ...; the start time is field 22.
    constexpr int start_time_field = 22, first_field = 3;
    std::string_view field;
    for (int n = first_field; n <= start_time_field; ++n) {
        auto begin = rest.find_first_not_of(' ');
        if (begin == std::string_view::npos) return std::nullopt;
        rest.remove_prefix(begin);
        auto end = std::min(rest.find(' '), rest.size());
        field = rest.substr(0, end);
        rest.remove_prefix(end);
    }
    std::uint64_t ticks = 0;
    auto [ptr, err] = std::from_chars(field.data(), field.data() + field.size(), ticks);
    if (err != std::errc{} || ptr != field.data() + field.size()) return std::nullopt;
    return process_identity{pid, ticks};
}

std::string read_file_tail(const std::filesystem::path& file, std::size_t max_bytes) {
    error_code ec;
    unique_fd fd = open_cloexec(file.c_str(), O_RDONLY, ec);
    struct stat st {};
    if (!fd || max_bytes == 0 || ::fstat(fd.get(), &st) != 0) return {};
    const auto size = static_cast<std::size_t>(std::max<off_t>(st.st_size, 0));
    auto offset = static_cast<off_t>(size > max_bytes ? size - max_bytes : 0);
    std::string tail(max_bytes, '\0');
    std::size_t got = 0;
    while (got < max_bytes) {
        ssize_t n = ::pread(fd.get(), tail.data() + got, max_bytes - got, offset + static_cast<off_t>(got));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += static_cast<std::size_t>(n);
    }
    tail.resize(got);
    return tail;
}

}  // namespace vmrt::io
