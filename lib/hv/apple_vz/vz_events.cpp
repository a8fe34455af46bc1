#include "hv/apple_vz/vz_events.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <cerrno>
#include <cstring>
#include <system_error>

namespace vmrt::hv::vz {

namespace {

// kind, signal, then the text.
constexpr std::size_t header_size = 2;

#if defined(MSG_NOSIGNAL)
constexpr int no_sigpipe = MSG_NOSIGNAL;
#else
constexpr int no_sigpipe = 0;  // macOS: SO_NOSIGPIPE is set on the socket instead
#endif

void set_cloexec(int fd) { ::fcntl(fd, F_SETFD, ::fcntl(fd, F_GETFD) | FD_CLOEXEC); }

}  // namespace

std::pair<io::unique_fd, io::unique_fd> make_datagram_pair() {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_DGRAM, 0, fds) != 0)
        throw std::system_error(errno, std::generic_category(), "socketpair (AF_UNIX, SOCK_DGRAM)");
    io::unique_fd reader(fds[0]);
    io::unique_fd sender(fds[1]);
    set_cloexec(reader.get());
    set_cloexec(sender.get());
#if defined(SO_NOSIGPIPE)
    int one = 1;
    ::setsockopt(sender.get(), SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one);
#endif
    return {std::move(reader), std::move(sender)};
}

bool send_datagram(int socket, std::string_view data, int fd_to_pass) noexcept {
    iovec iov{const_cast<char*>(data.data()), data.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
    if (fd_to_pass >= 0) {
        std::memset(control, 0, sizeof control);
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
        cmsghdr* c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        std::memcpy(CMSG_DATA(c), &fd_to_pass, sizeof(int));
    }
    for (;;) {
        if (::sendmsg(socket, &msg, MSG_DONTWAIT | no_sigpipe) >= 0) return true;
        if (errno != EINTR) return false;
    }
}

received_datagram receive_datagram(int socket, char* buffer, std::size_t capacity) noexcept {
    received_datagram out;
    iovec iov{buffer, capacity};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
#if defined(MSG_CMSG_CLOEXEC)
    constexpr int flags = MSG_DONTWAIT | MSG_CMSG_CLOEXEC;
#else
    constexpr int flags = MSG_DONTWAIT;
#endif
    ssize_t n = -1;
    do {
        n = ::recvmsg(socket, &msg, flags);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return out;
    out.size = static_cast<long>(n);
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        int fd = -1;
        std::memcpy(&fd, CMSG_DATA(c), sizeof(int));
        set_cloexec(fd);
        out.fd.reset(fd);
    }
    return out;
}

bool vz_event_sender::send(const vz_event& e) const noexcept {
    std::string datagram;
    try {
        datagram.reserve(max_event_size);
        datagram += static_cast<char>(e.kind);
        datagram += static_cast<char>(e.signal & 0x7f);
        datagram += std::string_view(e.text).substr(0, max_event_size - header_size);
    } catch (...) {
        return false;
    }
    return send_datagram(fd_.get(), datagram);
}

std::optional<vz_event> decode_event(std::string_view datagram) {
    if (datagram.size() < header_size) return std::nullopt;
    vz_event e;
    switch (static_cast<vz_event_kind>(datagram[0])) {
    case vz_event_kind::guest_stopped:
    case vz_event_kind::stopped_with_error:
    case vz_event_kind::stopped_by_host:
    case vz_event_kind::note:
        e.kind = static_cast<vz_event_kind>(datagram[0]);
        break;
    default:
        return std::nullopt;
    }
    e.signal = static_cast<unsigned char>(datagram[1]);
    e.text = std::string(datagram.substr(header_size));
    return e;
}

}  // namespace vmrt::hv::vz
