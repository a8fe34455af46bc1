// The host side of the guest's vsock connections to one host port, whatever carries them: Cloud
// Hypervisor's hybrid vsock (a Unix socket `<socket>_<port>` the VMM connects to) or Apple's
// Virtualization.framework (a VZVirtioSocketListener whose delegate hands over each connection).
//
//   auto [ec, listener] = co_await manager.async_vsock_listen("web", 5000, as_tuple(use_awaitable));
//   auto stream = co_await listener.accept();   // the guest connected to CID 2, port 5000
//
// Listening lasts as long as the vsock_listener (and, for Apple VZ, the VM): destroying it stops
// listening, and connections that arrive afterwards are refused. Connections already accepted are
// independent of it.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/local/stream_protocol.hpp>

#include <cstdint>
#include <memory>

namespace vmrt {

class vsock_listener {
public:
    /// What a backend implements: the queue of connections the guest made to one port.
    class source {
    public:
        virtual ~source() = default;
        /// The next connection, as a stream on the executor of the awaiting coroutine. Throws
        /// vmrt::error errc::invalid_state once the VM has ended (no connection can come any more).
        virtual boost::asio::awaitable<boost::asio::local::stream_protocol::socket> accept() = 0;
    };

    /// An empty listener (accept() fails with errc::invalid_state).
    vsock_listener() = default;
    vsock_listener(std::uint32_t port, std::unique_ptr<source> s) : port_(port), source_(std::move(s)) {}
    vsock_listener(vsock_listener&&) noexcept = default;
    vsock_listener& operator=(vsock_listener&&) noexcept = default;
    ~vsock_listener() = default;

    /// The next connection the guest made to port(), on the awaiting coroutine's executor.
    /// Cancellable (any type): then throws system_error(operation_aborted) and keeps listening.
    /// One accept at a time.
    boost::asio::awaitable<boost::asio::local::stream_protocol::socket> accept();

    std::uint32_t port() const noexcept { return port_; }
    explicit operator bool() const noexcept { return source_ != nullptr; }

private:
    std::uint32_t port_ = 0;
    std::unique_ptr<source> source_;
};

}  // namespace vmrt
