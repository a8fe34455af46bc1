#include "fake_ch/vhost_user_frontend.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <utility>

namespace fake_ch {

namespace {

// The vhost-user message header (QEMU docs/interop/vhost-user.rst): request, flags, payload size,
// all little-endian u32 (x86 only here). Flags: version 1 in bits 0-1, bit 2 = reply.
constexpr std::uint32_t get_features = 1;
constexpr std::uint32_t version_1 = 0x1;
constexpr std::uint32_t reply_flag = 0x4;

struct header {
    std::uint32_t request = 0;
    std::uint32_t flags = 0;
    std::uint32_t size = 0;
};
static_assert(sizeof(header) == 12);

// Reads exactly `n` bytes before `deadline`; false on EOF, error or time-out.
bool read_exactly(int fd, void* out, std::size_t n, std::chrono::steady_clock::time_point deadline) {
    auto* p = static_cast<char*>(out);
    while (n > 0) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline -
                                                                          std::chrono::steady_clock::now());
        pollfd pfd{fd, POLLIN, 0};
        if (left.count() <= 0 || ::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) return false;
        auto got = ::read(fd, p, n);
        if (got <= 0) return false;
        p += got;
        n -= static_cast<std::size_t>(got);
    }
    return true;
}

// CH's vhost-user connect loop (vhost_user::connect_vhost_user): connect, on failure sleep 100 ms,
// until the time is up.
int connect_with_retries(const std::string& socket, std::chrono::milliseconds patience, std::string& error) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (socket.size() >= sizeof addr.sun_path) {
        error = "socket path too long: " + socket;
        return -1;
    }
    std::memcpy(addr.sun_path, socket.c_str(), socket.size() + 1);
    const auto deadline = std::chrono::steady_clock::now() + patience;
    for (;;) {
        int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0 && ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0) return fd;
        const int why = errno;
        if (fd >= 0) ::close(fd);
        if (std::chrono::steady_clock::now() >= deadline) {
            error = "Failed connecting the backend after trying for " + std::to_string(patience.count()) +
                    " ms: " + socket + ": " + std::strerror(why);
            return -1;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
}

}  // namespace

std::optional<vhost_user_connection> vhost_user_connection::open(const std::string& socket,
                                                                 std::chrono::milliseconds patience,
                                                                 std::chrono::milliseconds reply_timeout,
                                                                 std::string& error) {
    int fd = connect_with_retries(socket, patience, error);
    if (fd < 0) return std::nullopt;
    header request{get_features, version_1, 0};
    header answer;
    std::uint64_t features = 0;
    const auto deadline = std::chrono::steady_clock::now() + reply_timeout;
    const bool ok =
        ::send(fd, &request, sizeof request, MSG_NOSIGNAL) == static_cast<ssize_t>(sizeof request) &&
        read_exactly(fd, &answer, sizeof answer, deadline) && answer.request == get_features &&
        (answer.flags & reply_flag) != 0 && answer.size == sizeof features &&
        read_exactly(fd, &features, sizeof features, deadline);
    if (!ok) {
        ::close(fd);
        error = "Failed to get the vhost-user backend's features from " + socket +
                " (no valid VHOST_USER_GET_FEATURES reply)";
        return std::nullopt;
    }
    return vhost_user_connection(fd, features);
}

vhost_user_connection::vhost_user_connection(vhost_user_connection&& o) noexcept
    : fd_(std::exchange(o.fd_, -1)), features_(o.features_) {}

vhost_user_connection& vhost_user_connection::operator=(vhost_user_connection&& o) noexcept {
    if (this != &o) {
        if (fd_ >= 0) ::close(fd_);
        fd_ = std::exchange(o.fd_, -1);
        features_ = o.features_;
    }
    return *this;
}

vhost_user_connection::~vhost_user_connection() {
    if (fd_ >= 0) ::close(fd_);
}

fs_frontends::fs_frontends() {
    const char* ms = std::getenv("VMRT_FAKE_CH_VHOST_USER_WAIT_MS");
    patience_ = std::chrono::milliseconds(ms ? std::atoi(ms) : 60000);
}

std::optional<std::string> fs_frontends::connect(const boost::json::array& devices) {
    std::map<std::string, vhost_user_connection> opened;
    for (const auto& d : devices) {
        if (!d.is_object()) continue;
        const auto* socket = d.as_object().if_contains("socket");
        const auto* id = d.as_object().if_contains("id");
        if (!socket || !socket->is_string()) return std::string("virtio-fs device without a socket");
        std::string error;
        // A backend answers GET_FEATURES at once; 5 s (less if the patience is shorter) is generous.
        auto c = vhost_user_connection::open(std::string(socket->as_string()), patience_,
                                             std::min(patience_, std::chrono::milliseconds(5000)), error);
        if (!c) return error;  // `opened` closes the others
        opened.emplace(id && id->is_string() ? std::string(id->as_string())
                                             : std::string(socket->as_string()),
                       std::move(*c));
    }
    for (auto& [id, c] : opened) connections_.insert_or_assign(id, std::move(c));
    return std::nullopt;
}

void fs_frontends::disconnect(const std::string& id) {
    if (id.empty())
        connections_.clear();
    else
        connections_.erase(id);
}

void fs_frontends::on_event(const std::string& source, const std::string& event,
                            const boost::json::value& properties) {
    if (source != "vm") return;
    if (event == "shutdown" || event == "deleted" || event == "rebooting") disconnect();
    if (event == "device-removed" && properties.is_object())
        if (const auto* id = properties.as_object().if_contains("id"); id && id->is_string())
            disconnect(std::string(id->as_string()));
}

}  // namespace fake_ch
