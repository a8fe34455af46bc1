// vsock on Apple's Virtualization.framework, guest -> host: a VZVirtioSocketListener per host port
// whose delegate (a run-time class, like the VM's delegate) hands each connection the guest makes
// to the listening vsock_listener.
//
// -listener:shouldAcceptNewConnection:fromSocketDevice: runs on the VM's queue. It duplicates the
// connection's file descriptor, closes the VZVirtioSocketConnection (the pattern of Apple's own
// apple/containerization, VsockConnectionStream.swift: dup(conn.fileDescriptor), conn.close()) and
// passes the duplicate through an AF_UNIX datagram pair (SCM_RIGHTS) to the listener's accept(),
// which wraps it in a stream on the awaiting coroutine's executor. When the handover fails (nobody
// listens any more, the pair is full) the delegate answers NO and the guest sees a refused
// connection. When the delegate is released (the listener was removed, or the VM torn down) it sends
// an empty datagram: accept() then knows no connection can come any more.
#pragma once

#include "hv/apple_vz/objc/handle.hpp"

#include <vmrt/io/unique_fd.hpp>
#include <vmrt/vsock_listener.hpp>

#include <boost/asio/any_io_executor.hpp>

#include <cstdint>
#include <memory>

namespace vmrt::hv::vz {

/// A new VZVirtioSocketListenerDelegate (+1) that hands connections to `sender` (the sending end
/// of a datagram pair, see make_datagram_pair). Any thread.
objc::strong make_listener_delegate(io::unique_fd sender, std::uint32_t port);

/// The accept() side: the receiving end of the pair, and what keeps the VZ listener registered
/// (destroying the last owner of `registration` removes it).
std::unique_ptr<vsock_listener::source> make_vsock_source(boost::asio::any_io_executor ex,
                                                          io::unique_fd receiver, std::uint32_t port,
                                                          std::shared_ptr<void> registration);

}  // namespace vmrt::hv::vz
