#include "net/port_fd.hpp"

#include <vmrt/error.hpp>

#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

namespace vmrt::net {

namespace {

// Both ends get room for bursts of frames. On the VM's end of a datagram pair the receive buffer
// is 4x the send buffer, as Apple's VZFileHandleNetworkDeviceAttachment asks; Linux caps both at
// net.core.{w,r}mem_max without complaint.
constexpr int switch_end_buffer = 4 << 20;
constexpr int vm_end_send_buffer = 1 << 20;
constexpr int vm_end_receive_buffer = 4 << 20;

[[noreturn]] void refuse(const std::string& port_name, const std::string& why) {
    throw error(errc::invalid_spec, {.message = "switch port '" + port_name + "': " + why});
}

[[noreturn]] void fail(const char* what) {
    int err = errno;
    throw error(error_code(err, boost::system::system_category()),
                {.message = std::string(what) + ": " + std::strerror(err)});
}

void set_buffers(int fd, int send, int receive) {
    // Best effort: a smaller buffer only means more backpressure drops under bursts.
    ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &send, sizeof send);
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &receive, sizeof receive);
}

}  // namespace

bool prepare_port_fd(int fd, port_kind kind, const std::string& port_name) {
    if (fd < 0) refuse(port_name, "no file descriptor");
    struct stat st {};
    if (::fstat(fd, &st) != 0)
        refuse(port_name, std::string("not an open file descriptor: ") + std::strerror(errno));
    bool seqpacket = false;
    if (kind == port_kind::tap) {
        struct ifreq ifr {};
        if (!S_ISCHR(st.st_mode) || ::ioctl(fd, TUNGETIFF, &ifr) != 0)
            refuse(port_name, "a TAP port needs an fd of /dev/net/tun attached to a device (TUNSETIFF)");
        if ((ifr.ifr_flags & IFF_TAP) == 0)
            refuse(port_name, "the device is a TUN (IP), not a TAP (Ethernet)");
        // Some kernels (6.18 here) report IFF_NO_PI whether or not the fd was opened with it, so
        // this catches the mistake only where the kernel tells the truth.
        if ((ifr.ifr_flags & IFF_NO_PI) == 0)
            refuse(port_name,
                   "the TAP fd must be opened with IFF_NO_PI (frames without a packet-info header)");
        if ((ifr.ifr_flags & IFF_VNET_HDR) != 0) refuse(port_name, "the TAP fd must not use IFF_VNET_HDR");
    } else {
        int type = 0;
        socklen_t len = sizeof type;
        if (!S_ISSOCK(st.st_mode) || ::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0)
            refuse(port_name, "not a socket");
        bool ok =
            kind == port_kind::stream ? type == SOCK_STREAM : (type == SOCK_DGRAM || type == SOCK_SEQPACKET);
        if (!ok)
            refuse(port_name, kind == port_kind::stream
                                  ? "a stream port needs a SOCK_STREAM socket"
                                  : "a datagram port needs a SOCK_DGRAM or SOCK_SEQPACKET socket");
        seqpacket = type == SOCK_SEQPACKET;
    }
    int flags = ::fcntl(fd, F_GETFL);
    if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) fail("fcntl(O_NONBLOCK)");
    ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    return seqpacket;
}

std::pair<io::unique_fd, io::unique_fd> make_port_socketpair(port_kind kind) {
    int type = kind == port_kind::stream ? SOCK_STREAM : SOCK_DGRAM;
    int fds[2];
    if (::socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, fds) != 0) fail("socketpair");
    io::unique_fd ours(fds[0]), theirs(fds[1]);
    set_buffers(ours.get(), switch_end_buffer, switch_end_buffer);
    set_buffers(theirs.get(), vm_end_send_buffer, vm_end_receive_buffer);
    return {std::move(ours), std::move(theirs)};
}

}  // namespace vmrt::net
