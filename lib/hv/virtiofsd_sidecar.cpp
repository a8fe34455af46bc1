#include "hv/virtiofsd_sidecar.hpp"

#include "io/unix_listener.hpp"

#include <vmrt/error.hpp>
#include <vmrt/io/process.hpp>
#include <vmrt/io/unique_fd.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>

extern char** environ;

namespace vmrt::hv {

namespace asio = boost::asio;
using io::unique_fd;

struct virtiofsd_sidecar::state {
    asio::any_io_executor ex;
    virtiofsd_options opts;
    note_fn note;
    std::optional<virtiofsd_flavour> flavour;
    unique_fd listener;  // our copy: keeps the socket listening between two daemons
    ino_t socket_inode = 0;
    io::process daemon;
    std::chrono::steady_clock::time_point started;
    bool armed = false;
    bool closed = false;      // the sidecar is gone or stopped: nothing may be started any more
    bool watching = false;    // a watch() coroutine waits for the current daemon
    unsigned generation = 0;  // daemons started so far: tells a watcher its daemon was replaced
    unsigned restarts = 0;
    unsigned quick_failures = 0;
    std::optional<exit_status> last_exit;
    std::optional<std::string> failure;

    void tell(std::string text) const {
        if (note) note(std::move(text));
    }
    std::string who() const { return "virtiofsd for share '" + opts.tag + "'"; }
};

namespace {

using state = virtiofsd_sidecar::state;

[[noreturn]] void fail(std::string message, std::string log_tail = {}) {
    throw error(make_error_code(errc::vmm_start_failed),
                {.message = std::move(message), .vmm_stderr_tail = std::move(log_tail)});
}

// ---- which daemon is it ----

// `binary --help`, run without a shell, its output read for at most `limit`; "" if it fails.
std::string help_text(const std::filesystem::path& binary, std::chrono::milliseconds limit) {
    int pipe_fds[2];
    if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return {};
    unique_fd read_end(pipe_fds[0]), write_end(pipe_fds[1]);
    posix_spawn_file_actions_t actions;
    ::posix_spawn_file_actions_init(&actions);
    ::posix_spawn_file_actions_adddup2(&actions, write_end.get(), STDOUT_FILENO);
    ::posix_spawn_file_actions_adddup2(&actions, write_end.get(), STDERR_FILENO);
    ::posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    std::string program = binary.string(), flag = "--help";
    char* argv[] = {program.data(), flag.data(), nullptr};
    pid_t pid = 0;
    const int rc = ::posix_spawn(&pid, program.c_str(), &actions, nullptr, argv, environ);
    ::posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) return {};
    write_end.reset();
    std::string out;
    const auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline -
                                                                          std::chrono::steady_clock::now());
        if (left.count() <= 0 || out.size() > 64 * 1024) break;
        pollfd pfd{read_end.get(), POLLIN, 0};
        if (::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) break;
        char buf[4096];
        auto n = ::read(read_end.get(), buf, sizeof buf);
        if (n <= 0) break;
        out.append(buf, static_cast<std::size_t>(n));
    }
    ::kill(pid, SIGKILL);  // harmless if it has exited: it is our unreaped child, the pid is still its
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return out;
}

bool one_of(const std::string& value, std::initializer_list<const char*> allowed) {
    for (const char* a : allowed)
        if (value == a) return true;
    return false;
}

// The flavour the options need to know, probed only when it matters: plain shares are served with
// QEMU's `-o` options, which both daemons understand.
std::optional<virtiofsd_flavour> needed_flavour(const virtiofsd_options& opts) {
    if (!opts.read_only && one_of(opts.cache, {"auto", "always"})) return std::nullopt;
    return virtiofsd_sidecar::flavour_of(opts.binary);
}

std::optional<std::string> refusal(const virtiofsd_options& opts, std::optional<virtiofsd_flavour> flavour) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(opts.binary, ec) || ::access(opts.binary.c_str(), X_OK) != 0)
        return opts.binary.string() + " is not installed (or not executable)";
    if (!std::filesystem::is_directory(opts.shared_dir, ec))
        return "the shared directory " + opts.shared_dir.string() + " does not exist";
    const bool rust = flavour == virtiofsd_flavour::rust;
    if (opts.read_only && !rust)
        return opts.binary.string() +
               " cannot export a directory read-only (QEMU's C virtiofsd has no such option; the Rust "
               "virtiofsd has --readonly)";
    if (rust ? !one_of(opts.cache, {"auto", "always", "metadata", "never"})
             : !one_of(opts.cache, {"auto", "always", "none"}))
        return "cache mode \"" + opts.cache + "\" is not one of " +
               (rust ? "auto, always, metadata, never" : "auto, always, none");
    return std::nullopt;
}

// ---- the socket ----

// Bound before any daemon runs and kept across daemon restarts (a backlog for the VMM's reconnects
// while one daemon replaces another). A stale socket is replaced; a live one or a non-socket is
// refused (io::listen_unix).
unique_fd listen_on(const std::filesystem::path& path, ino_t& inode) {
    auto fd = io::listen_unix(path, 8);
    if (!fd) {
        const auto& ec = fd.error();
        if (ec.value() == EADDRINUSE) fail(path.string() + " is in use: something listens on it");
        if (ec.value() == EEXIST) fail(path.string() + " exists and is not a socket");
        fail("cannot listen on " + path.string() + ": " + ec.message());
    }
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0) inode = st.st_ino;
    return std::move(*fd);
}

// Removes the socket file if it is still the one we bound (not a successor's).
void unlink_ours(const std::filesystem::path& path, ino_t inode) {
    struct stat st {};
    if (inode != 0 && ::lstat(path.c_str(), &st) == 0 && st.st_ino == inode) ::unlink(path.c_str());
}

// ---- the daemon ----

io::process spawn_daemon(state& s, bool append_log, error_code& ec) {
    io::process_options p;
    p.program = s.opts.binary;
    p.args = virtiofsd_sidecar::daemon_args(s.opts, s.flavour, s.listener.get());
    p.inherited_fds = {s.listener.get()};
    if (!s.opts.log_file.empty()) p.log_file = s.opts.log_file;
    p.append_log = append_log;
    auto proc = io::process::spawn(s.ex, p, ec);
    s.started = std::chrono::steady_clock::now();
    ++s.generation;
    return proc;
}

std::string log_tail(const state& s) {
    return s.opts.log_file.empty() ? std::string() : io::read_file_tail(s.opts.log_file, 2048);
}

asio::awaitable<void> watch(std::shared_ptr<state> s);

void start_watching(const std::shared_ptr<state>& s) {
    if (s->watching) return;
    s->watching = true;
    asio::co_spawn(s->ex, watch(s), asio::detached);
}

// Starts a daemon after an exit (or at arm()); false, with the failure recorded, if it cannot.
bool restart(state& s, const std::string& why) {
    error_code ec;
    auto proc = spawn_daemon(s, true, ec);
    if (ec) {
        s.failure = s.who() + " could not be restarted: " + ec.message();
        s.tell(*s.failure);
        return false;
    }
    s.daemon = std::move(proc);
    ++s.restarts;
    s.tell(s.who() + " " + why + "; restarted as pid " + std::to_string(s.daemon.pid()) + " (restart " +
           std::to_string(s.restarts) + ")");
    return true;
}

// Called with each observed exit while armed: counts fast failures, restarts or gives up.
bool after_exit(state& s, const exit_status& status) {
    const auto lived = std::chrono::steady_clock::now() - s.started;
    const bool failed = status.signaled || status.code != 0;
    s.quick_failures = failed && lived < s.opts.quick_exit ? s.quick_failures + 1 : 0;
    if (s.quick_failures >= s.opts.crash_loop_limit) {
        s.failure = s.who() + " failed " + std::to_string(s.quick_failures) +
                    " times in a row, each within " + std::to_string(s.opts.quick_exit.count()) +
                    " ms of its start (last: " + status.to_string() + "); not restarted any more";
        const auto tail = log_tail(s);
        if (!tail.empty()) *s.failure += "; its log ends with: " + tail;
        s.tell(*s.failure);
        return false;
    }
    return restart(s, "exited (" + status.to_string() + ")");
}

asio::awaitable<void> watch(std::shared_ptr<state> s) {
    for (;;) {
        const auto waited_for = s->generation;
        auto [ec, status] = co_await s->daemon.async_wait(asio::as_tuple(asio::use_awaitable));
        if (s->closed) break;  // stopped or destroyed: the exit was ours
        if (ec) {
            s->failure = s->who() + ": cannot wait for the daemon: " + ec.message();
            s->tell(*s->failure);
            break;
        }
        s->last_exit = status;
        if (waited_for != s->generation) continue;  // arm() replaced it before we saw the exit
        if (!s->armed) {
            s->tell(s->who() + " exited (" + status.to_string() + "); not restarted (the VM is stopping)");
            break;
        }
        if (!after_exit(*s, status)) break;
    }
    s->watching = false;
}

}  // namespace

// ---- flavour ----

std::optional<virtiofsd_flavour> virtiofsd_sidecar::flavour_of(const std::filesystem::path& binary) {
    static std::mutex mutex;
    static std::map<std::filesystem::path, std::optional<virtiofsd_flavour>> cache;
    {
        std::lock_guard lock(mutex);
        if (auto it = cache.find(binary); it != cache.end()) return it->second;
    }
    const auto help = help_text(binary, std::chrono::milliseconds(2000));
    std::optional<virtiofsd_flavour> found;
    // The Rust daemon's clap help names --shared-dir; QEMU's names "-o source=PATH".
    if (help.find("--shared-dir") != std::string::npos)
        found = virtiofsd_flavour::rust;
    else if (help.find("source=PATH") != std::string::npos)
        found = virtiofsd_flavour::qemu_c;
    std::lock_guard lock(mutex);
    cache[binary] = found;
    return found;
}

std::optional<std::string> virtiofsd_sidecar::cannot_serve(const virtiofsd_options& opts) {
    std::error_code ec;
    if (!std::filesystem::exists(opts.binary, ec)) return refusal(opts, std::nullopt);
    return refusal(opts, needed_flavour(opts));
}

std::vector<std::string> virtiofsd_sidecar::daemon_args(const virtiofsd_options& opts,
                                                        std::optional<virtiofsd_flavour> flavour,
                                                        int listen_fd) {
    std::vector<std::string> args{"--fd=" + std::to_string(listen_fd)};
    if (flavour == virtiofsd_flavour::rust) {
        args.push_back("--shared-dir=" + opts.shared_dir.string());
        args.push_back("--cache=" + opts.cache);
        if (opts.read_only) args.push_back("--readonly");
    } else {
        args.insert(args.end(), {"-o", "source=" + opts.shared_dir.string(), "-o", "cache=" + opts.cache});
    }
    return args;
}

// ---- lifetime ----

virtiofsd_sidecar::virtiofsd_sidecar(asio::any_io_executor ex, virtiofsd_options opts, note_fn note)
    : s_(std::make_shared<state>()) {
    s_->ex = std::move(ex);
    s_->opts = std::move(opts);
    s_->note = std::move(note);
    const auto who = s_->who();
    if (!std::filesystem::exists(s_->opts.binary)) {
        // Left to the spawn below, which reports it as the exec error it is.
    } else {
        s_->flavour = needed_flavour(s_->opts);
        if (auto why = refusal(s_->opts, s_->flavour)) fail(who + " cannot start: " + *why);
    }
    s_->listener = listen_on(s_->opts.socket, s_->socket_inode);
    error_code ec;
    auto proc = spawn_daemon(*s_, false, ec);
    if (ec) {
        s_->listener.reset();
        unlink_ours(s_->opts.socket, s_->socket_inode);
        fail(who + ": cannot start " + s_->opts.binary.string() + ": " + ec.message(), log_tail(*s_));
    }
    s_->daemon = std::move(proc);
    s_->tell(who + " started as pid " + std::to_string(s_->daemon.pid()) + " on " + s_->opts.socket.string());
    start_watching(s_);
}

virtiofsd_sidecar::~virtiofsd_sidecar() {
    stop();
    s_->listener.reset();
    unlink_ours(s_->opts.socket, s_->socket_inode);
}

void virtiofsd_sidecar::stop() noexcept {
    s_->armed = false;
    s_->closed = true;
    s_->daemon.kill_and_reap();  // the whole process group: the C daemon forks into a pid namespace
}

void virtiofsd_sidecar::arm() {
    if (s_->closed) return;
    s_->armed = true;
    if (s_->daemon.running()) return;
    s_->failure.reset();
    s_->quick_failures = 0;
    if (restart(*s_, "was not running when the VM went live")) start_watching(s_);
}

void virtiofsd_sidecar::disarm() noexcept { s_->armed = false; }

bool virtiofsd_sidecar::armed() const noexcept { return s_->armed; }
bool virtiofsd_sidecar::running() const noexcept { return s_->daemon.running(); }
pid_t virtiofsd_sidecar::pid() const noexcept { return s_->daemon.running() ? s_->daemon.pid() : 0; }
unsigned virtiofsd_sidecar::restarts() const noexcept { return s_->restarts; }
std::optional<exit_status> virtiofsd_sidecar::last_exit() const noexcept { return s_->last_exit; }
std::optional<std::string> virtiofsd_sidecar::failure() const { return s_->failure; }
const virtiofsd_options& virtiofsd_sidecar::options() const noexcept { return s_->opts; }

}  // namespace vmrt::hv
