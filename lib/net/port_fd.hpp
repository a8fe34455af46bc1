// Checks and prepares the fds the switch takes over: the fd type must match the port kind (a
// mismatch would silently mangle every frame), and socketpair ports get buffers sized for bursts.
#pragma once

#include <vmrt/io/unique_fd.hpp>
#include <vmrt/net/l2_switch.hpp>

#include <utility>

namespace vmrt::net {

/// Throws vmrt::error(errc::invalid_spec) unless `fd` can carry `kind` (a datagram or seqpacket
/// socket, a stream socket, a TAP fd opened with IFF_TAP | IFF_NO_PI). Returns whether it is a
/// SOCK_SEQPACKET socket. Makes the fd non-blocking and close-on-exec.
bool prepare_port_fd(int fd, port_kind kind, const std::string& port_name);

/// A connected AF_UNIX socketpair of `kind` (dgram or stream): {switch's end, VM's end}.
std::pair<io::unique_fd, io::unique_fd> make_port_socketpair(port_kind kind);

}  // namespace vmrt::net
