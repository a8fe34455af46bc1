#include "hv/apple_vz/vz_vsock.hpp"

#include "hv/apple_vz/objc/class_builder.hpp"
#include "hv/apple_vz/vz_events.hpp"

#include <vmrt/error.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fcntl.h>

#include <array>
#include <cerrno>
#include <cstring>

namespace vmrt::hv::vz {

namespace {

namespace asio = boost::asio;
using objc::BOOL;
using objc::id;

struct listener_state {
    io::unique_fd sender;
    std::uint32_t port = 0;
    listener_state(io::unique_fd s, std::uint32_t p) : sender(std::move(s)), port(p) {}
    listener_state(listener_state&&) noexcept = default;
    listener_state& operator=(listener_state&&) noexcept = default;
    ~listener_state() {
        // The end of this listener: an empty datagram tells accept() that nothing more comes.
        if (sender) send_datagram(sender.get(), {});
    }
};

// -listener:shouldAcceptNewConnection:fromSocketDevice:, on the VM's queue.
BOOL should_accept(listener_state& s, id, id connection, id) noexcept {
    const int fd = objc::send<int>(connection, objc::sel<"fileDescriptor">());
    if (fd < 0) return objc::NO;  // "A file descriptor of -1 indicates a closed connection."
    io::unique_fd mine(::fcntl(fd, F_DUPFD_CLOEXEC, 0));
    if (!mine) return objc::NO;
    objc::send<void>(connection, objc::sel<"close">());
    // The guest's port travels along for diagnostics; the descriptor is the connection.
    std::uint32_t source = objc::send<std::uint32_t>(connection, objc::sel<"sourcePort">());
    char ports[sizeof source];
    std::memcpy(ports, &source, sizeof source);
    return send_datagram(s.sender.get(), std::string_view(ports, sizeof ports), mine.get()) ? objc::YES
                                                                                            : objc::NO;
}

const objc::cpp_class<listener_state>& listener_delegate_class() {
    static const objc::cpp_class<listener_state> c = [] {
        objc::cpp_class_builder<listener_state> b("VmrtVZVirtioSocketListenerDelegate");
        b.adopt_protocol("VZVirtioSocketListenerDelegate");
        b.method<&should_accept>("listener:shouldAcceptNewConnection:fromSocketDevice:");
        return b.finish();
    }();
    return c;
}

class vz_vsock_source final : public vsock_listener::source {
public:
    vz_vsock_source(asio::any_io_executor ex, io::unique_fd receiver, std::uint32_t port,
                    std::shared_ptr<void> registration)
        : receiver_(std::move(ex), receiver.release()), port_(port), registration_(std::move(registration)) {}

    ~vz_vsock_source() override {
        boost::system::error_code ignored;
        receiver_.close(ignored);
    }

    asio::awaitable<asio::local::stream_protocol::socket> accept() override {
        auto ex = co_await asio::this_coro::executor;
        std::array<char, 64> buffer;
        for (;;) {
            if (ended_)
                throw error(make_error_code(errc::invalid_state),
                            {.message = "the VM has ended: no more vsock connections to port " +
                                        std::to_string(port_)});
            auto [ec] = co_await receiver_.async_wait(asio::posix::descriptor_base::wait_read,
                                                      asio::as_tuple(asio::use_awaitable));
            if (ec) throw boost::system::system_error(ec);
            auto got = receive_datagram(receiver_.native_handle(), buffer.data(), buffer.size());
            if (got.size < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK) continue;
                throw boost::system::system_error(errno, boost::system::system_category(), "vsock handover");
            }
            if (got.fd) {
                asio::local::stream_protocol::socket s(ex);
                s.assign(asio::local::stream_protocol(), got.fd.release());
                co_return s;
            }
            if (got.size == 0) ended_ = true;  // the listener's delegate is gone
        }
    }

private:
    asio::posix::stream_descriptor receiver_;
    std::uint32_t port_;
    std::shared_ptr<void> registration_;
    bool ended_ = false;
};

}  // namespace

objc::strong make_listener_delegate(io::unique_fd sender, std::uint32_t port) {
    return listener_delegate_class().make(listener_state(std::move(sender), port));
}

std::unique_ptr<vsock_listener::source> make_vsock_source(asio::any_io_executor ex, io::unique_fd receiver,
                                                          std::uint32_t port,
                                                          std::shared_ptr<void> registration) {
    return std::make_unique<vz_vsock_source>(std::move(ex), std::move(receiver), port,
                                             std::move(registration));
}

}  // namespace vmrt::hv::vz
