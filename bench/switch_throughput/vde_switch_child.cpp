#include "vde_switch_child.hpp"

// libvdeplug.h is a C header without extern "C" of its own.
extern "C" {
#include <libvdeplug.h>
}

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <system_error>
#include <thread>

namespace swbench {
namespace {

using namespace std::chrono_literals;

[[noreturn]] void throw_errno(const std::string& what) {
    throw std::system_error(errno, std::generic_category(), what);
}

bool reaped(pid_t pid, std::chrono::milliseconds within) {
    auto deadline = std::chrono::steady_clock::now() + within;
    for (;;) {
        pid_t r = ::waitpid(pid, nullptr, WNOHANG);
        if (r == pid || (r < 0 && errno == ECHILD)) return true;
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(5ms);
    }
}

// Moves an fd out of 0..2 (possible when the bench runs with closed stdio), so that dup2 onto
// 0..2 in the child always yields a descriptor without FD_CLOEXEC.
int above_stdio(int fd) {
    if (fd < 0 || fd > 2) return fd;
    int moved = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
    ::close(fd);
    return moved;
}

}  // namespace

vde_switch_child::vde_switch_child(const std::filesystem::path& temp_base) {
    std::string tmpl = (temp_base / "vmrt-bench-vde-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) throw_errno("mkdtemp " + tmpl);
    dir_ = tmpl;
    ctl_ = dir_ / "ctl";
    try {
        // Its output goes to an anonymous file: nothing to clean up, whatever happens.
        log_.reset(above_stdio(::open(dir_.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600)));
        if (!log_) throw_errno("open(O_TMPFILE) in " + dir_.string());
        int console[2];
        if (::pipe2(console, O_CLOEXEC) < 0) throw_errno("pipe2");
        vmrt::io::unique_fd console_read(above_stdio(console[0]));
        console_.reset(above_stdio(console[1]));
        if (!console_read || !console_) throw_errno("pipe2");

        std::string ctl = ctl_.string();
        const char* argv[] = {"vde_switch", "-s", ctl.c_str(), nullptr};
        pid_t parent = ::getpid();
        pid_ = ::fork();
        if (pid_ < 0) throw_errno("fork");
        if (pid_ == 0) {
            // The child: only async-signal-safe calls until exec.
            ::setpgid(0, 0);
            ::prctl(PR_SET_PDEATHSIG, SIGTERM);       // SIGTERM: it removes its sockets on the way out
            if (::getppid() != parent) ::_exit(127);  // the bench died before prctl took effect
            // The pipe and the log sit above 2 (above_stdio), so every dup2 makes a fresh,
            // inheritable descriptor.
            if (::dup2(console_read.get(), 0) < 0 || ::dup2(log_.get(), 1) < 0 || ::dup2(log_.get(), 2) < 0)
                ::_exit(127);
            ::execvp(argv[0], const_cast<char* const*>(argv));
            ::_exit(127);
        }
        ::setpgid(pid_, pid_);  // also from here, so the group exists before any kill
        console_read.reset();

        // Up when a libvdeplug client can connect (the control socket exists and listens).
        auto deadline = std::chrono::steady_clock::now() + 5s;
        for (;;) {
            struct stat st {};
            if (::stat((ctl_ / "ctl").c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) break;
            if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
                pid_ = -1;
                throw std::runtime_error("vde_switch exited at start: " + output());
            }
            if (std::chrono::steady_clock::now() > deadline)
                throw std::runtime_error("vde_switch did not create its control socket: " + output());
            std::this_thread::sleep_for(5ms);
        }
    } catch (...) {
        shut_down();
        throw;
    }
}

vde_switch_child::~vde_switch_child() { shut_down(); }

void vde_switch_child::shut_down() noexcept {
    console_.reset();  // EOF on its console: vde_switch cleans up and exits by itself
    if (pid_ > 0) {
        if (!reaped(pid_, 1000ms)) {
            ::kill(-pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
        pid_ = -1;
    }
    log_.reset();
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
}

std::string vde_switch_child::output() const {
    std::string out;
    char buf[4096];
    off_t at = 0;
    ssize_t n;
    while (log_ && (n = ::pread(log_.get(), buf, sizeof buf, at)) > 0 && out.size() < 16384) {
        out.append(buf, static_cast<std::size_t>(n));
        at += n;
    }
    return out;
}

vde_connections::vde_connections(const std::filesystem::path& control_dir, std::size_t count) {
    std::string url = "vde://" + control_dir.string();
    for (std::size_t i = 0; i < count; ++i) {
        vde_open_args args{};
        std::string descr = "vmrt-bench-" + std::to_string(i);
        // The control socket can exist a moment before vde_switch listens on it: retry briefly.
        VDECONN* c = nullptr;
        auto deadline = std::chrono::steady_clock::now() + 5s;
        while (!(c = vde_open(url.data(), descr.data(), &args)) &&
               (errno == ECONNREFUSED || errno == ENOENT) && std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(10ms);
        if (!c) {
            int err = errno;
            for (auto* open : conns_) vde_close(open);
            throw std::runtime_error("vde_open " + url + ": " + std::strerror(err));
        }
        conns_.push_back(c);
    }
}

vde_connections::~vde_connections() {
    for (auto* c : conns_) vde_close(c);
}

std::vector<int> vde_connections::data_fds() const {
    std::vector<int> fds;
    for (auto* c : conns_) fds.push_back(vde_datafd(c));
    return fds;
}

}  // namespace swbench
