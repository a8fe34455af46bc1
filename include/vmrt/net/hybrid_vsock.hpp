// The host side of Cloud Hypervisor's hybrid vsock (`--vsock cid=N,socket=/path/ch.vsock`,
// shared/reference/cloud-hypervisor.md §4 and §10.10).
//
// Host → guest: `async_hybrid_vsock_connect` connects to the VM's vsock Unix socket, sends
// `CONNECT <port>\n` and waits for `OK <host_port>\n`; every byte after that line is the guest
// service's stream. CH gives no error message when the guest is not listening (or the guest does
// not answer within 2 s): it just closes the connection. So EOF or ECONNRESET before `OK` is
// "connection refused" and the handshake is retried with backoff, as is a socket that does not
// exist yet or refuses connections (the VM is not up). A reply that is not `OK <decimal>\n` is a
// protocol error at once.
//
//   auto s = co_await vmrt::net::async_hybrid_vsock_connect(dir / "ch.vsock", 1234);
//   co_await asio::async_write(s.socket, asio::buffer(request), asio::use_awaitable);
//
// Guest → host: when the guest connects to CID 2 port P, CH connects to `<socket>_<P>`. A
// `hybrid_vsock_listener` listens there; no handshake line is written on this side.
//
// Errors are vmrt::error: errc::timeout (the deadline passed; the diagnostics give the number of
// attempts and the last reason), errc::protocol_error (a malformed reply, quoted), errc::cancelled
// (the awaiting coroutine was cancelled), errc::invalid_spec (a path too long for a Unix socket),
// errc::already_exists (a listener path that something else owns), or the system error of an
// unexpected failure. Everything runs on the awaiting coroutine's executor and honours its
// cancellation slot (terminal cancellation).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/local/stream_protocol.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>

namespace vmrt::net {

struct hybrid_vsock_connect_options {
    /// Overall deadline of the handshake, retries included.
    std::chrono::steady_clock::duration timeout = std::chrono::seconds(10);
    /// Pause before the first retry; it doubles up to max_backoff (CH issue #560's design).
    std::chrono::steady_clock::duration initial_backoff = std::chrono::milliseconds(20);
    std::chrono::steady_clock::duration max_backoff = std::chrono::milliseconds(500);
};

/// A connected host → guest stream.
struct hybrid_vsock_stream {
    boost::asio::local::stream_protocol::socket socket;  ///< positioned after the `OK` line
    std::uint32_t host_port = 0;                         ///< the port CH allocated (from `OK <port>`)
    unsigned attempts = 0;                               ///< handshakes tried, the successful one included
};

/// Connects to guest port `port` through the VM's vsock socket `vsock_socket`.
boost::asio::awaitable<hybrid_vsock_stream> async_hybrid_vsock_connect(std::filesystem::path vsock_socket,
                                                                       std::uint32_t port,
                                                                       hybrid_vsock_connect_options opts);
/// Same, with the default options. A separate overload rather than a default argument: GCC 12
/// miscompiles a braced temporary inside a co_await expression.
boost::asio::awaitable<hybrid_vsock_stream> async_hybrid_vsock_connect(std::filesystem::path vsock_socket,
                                                                       std::uint32_t port);

/// Listens on `<vsock_socket>_<port>` for connections the guest makes to CID 2, port `port`.
/// Destroying it closes the socket and removes the file, if the file is still the one it bound.
class hybrid_vsock_listener {
public:
    /// Binds and listens. A file already at the path is removed only if it is a socket nobody
    /// listens on (a leftover of a crashed process); otherwise errc::already_exists.
    static hybrid_vsock_listener bind(boost::asio::any_io_executor ex, std::filesystem::path vsock_socket,
                                      std::uint32_t port);

    hybrid_vsock_listener(hybrid_vsock_listener&&) noexcept;
    hybrid_vsock_listener& operator=(hybrid_vsock_listener&&) noexcept;
    ~hybrid_vsock_listener();

    /// The next connection from the guest.
    boost::asio::awaitable<boost::asio::local::stream_protocol::socket> accept();
    /// `<vsock_socket>_<port>`.
    const std::filesystem::path& path() const noexcept;
    std::uint32_t port() const noexcept;

    struct impl;

private:
    explicit hybrid_vsock_listener(std::shared_ptr<impl> p) : impl_(std::move(p)) {}
    std::shared_ptr<impl> impl_;
};

}  // namespace vmrt::net
