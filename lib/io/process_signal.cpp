// Reaching the right process: signals through the pidfd (or to the own process group while the
// leader is unreaped), and the identity (pid + start time from /proc) that tells a reused pid apart.
#include "io/process_impl.hpp"
#include "io/process_syscalls.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <csignal>
#include <string_view>

namespace vmrt::io {
namespace {

using detail::last_error;
using detail::open_cloexec;
using detail::pidfd_send_signal;

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

}  // namespace

error_code process::impl::send(int sig) noexcept {
    if (reaped) return {};
    if (pidfd_send_signal(pidfd.native_handle(), sig) == 0 || errno == ESRCH) return {};
    return last_error();
}

// Until the leader is reaped its pid cannot be reused, and so neither can the group id: only
// then is kill(-pgid) sure to reach our group and nobody else's.
error_code process::impl::send_group(int sig) noexcept {
    if (!own_group) return errc::invalid_state;  // the group is the caller's own
    if (reaped) return {};
    if (::kill(-id.pid, sig) == 0 || errno == ESRCH) return {};
    return last_error();
}

void process::impl::kill_and_reap() noexcept {
    if (reaped) return;
    // The group takes the VMM's own children along; the pidfd still reaches the child if it
    // has left its group (setsid) or never had one of its own.
    if (own_group) ::kill(-id.pid, SIGKILL);
    pidfd_send_signal(pidfd.native_handle(), SIGKILL);
    reap_blocking();
}

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

}  // namespace vmrt::io
