#include "io/process_syscalls.hpp"

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

namespace vmrt::io::detail {

error_code errno_code(int e) noexcept { return {e, boost::system::system_category()}; }
error_code last_error() noexcept { return errno_code(errno); }

error_code move_above_stdio(unique_fd& fd) noexcept {
    if (fd.get() > 2) return {};
    int moved = ::fcntl(fd.get(), F_DUPFD_CLOEXEC, 3);
    if (moved < 0) return last_error();
    fd.reset(moved);
    return {};
}

unique_fd open_cloexec(const char* path, int flags, error_code& ec, mode_t mode) noexcept {
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

}  // namespace vmrt::io::detail
