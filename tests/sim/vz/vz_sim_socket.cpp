// The simulated vsock runtime: VZVirtioSocketDevice (connect, listeners), VZVirtioSocketListener
// and VZVirtioSocketConnection, and the guest's side of each stream (its echo services, and the
// connections a test makes the guest open to a host port).
#include "hv/apple_vz/objc/block.hpp"
#include "vz_sim_runtime_model.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <map>
#include <optional>

namespace vmrt::objc::sim::vz::detail {

namespace {

namespace asio = boost::asio;

constexpr const char* device_class = "VZVirtioSocketDevice";

struct socket_device_payload {
    std::weak_ptr<machine_core> vm;
    std::mutex mutex;
    std::map<std::uint32_t, strong> listeners;  ///< retained, as -setSocketListener:forPort: does
    std::uint32_t next_host_port = 49152;       ///< the host ports VZ assigns to host → guest streams
    std::uint32_t next_guest_port = 1024;       ///< the guest's ephemeral ports (guest → host)
};
using device = self_t<socket_device_payload>;

struct listener_payload {
    id delegate = nullptr;  ///< weak, as Apple declares it
};
using listener = self_t<listener_payload>;

struct connection_payload {
    int fd = -1;
    std::uint32_t source_port = 0;
    std::uint32_t destination_port = 0;
    connection_payload() = default;
    connection_payload(const connection_payload&) = delete;
    connection_payload& operator=(const connection_payload&) = delete;
    ~connection_payload() {
        if (fd >= 0) ::close(fd);  // the connection owns its descriptor
    }
};
using connection = self_t<connection_payload>;

// The VM of a device, checking the calling queue; nullptr (and a misuse) if the VM is gone.
std::shared_ptr<machine_core> vm_of(socket_device_payload& d, const char* selector) {
    auto core = d.vm.lock();
    if (!core) {
        record_misuse(std::string("-[VZVirtioSocketDevice ") + selector + "] after its VM was deallocated");
        return nullptr;
    }
    core->check_queue(device_class, selector);
    return core;
}

strong make_connection(io::unique_fd host_end, std::uint32_t source, std::uint32_t destination) {
    strong c = alloc_init(cls("VZVirtioSocketConnection"));
    auto* p = payload<connection_payload>(c.get());
    p->fd = host_end.release();
    p->source_port = source;
    p->destination_port = destination;
    return c;
}

ns_error_spec connection_reset() {
    // What a Mac reports when nothing listens on the port (NSPOSIXErrorDomain 54 on macOS).
    return {"NSPOSIXErrorDomain", ECONNRESET, "Connection reset by peer"};
}

asio::awaitable<void> echo(asio::local::stream_protocol::socket s) {
    std::array<char, 4096> buffer;
    for (;;) {
        auto [ec, n] = co_await s.async_read_some(asio::buffer(buffer), asio::as_tuple(asio::use_awaitable));
        if (ec) co_return;
        auto [wec, written] = co_await asio::async_write(s, asio::buffer(buffer.data(), n),
                                                         asio::as_tuple(asio::use_awaitable));
        if (wec) co_return;
    }
}

bool make_stream(io::unique_fd& a, io::unique_fd& b) {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) return false;
    a.reset(fds[0]);
    b.reset(fds[1]);
    return true;
}

using connect_handler = block<void(id, id)>;

void connect_to_port(device self, std::uint32_t port, id handler_block) {
    auto core = vm_of(*self.payload, "connectToPort:completionHandler:");
    if (!core) return;
    connect_handler done = connect_handler::adopt(::_Block_copy(handler_block));
    std::optional<ns_error_spec> refusal;
    guest_behaviour b;
    {
        std::lock_guard lock(core->mutex);
        b = core->behaviour;
        if (core->state != machine_state::running)
            refusal = ns_error_spec{"VZErrorDomain", vz_error_invalid_state,
                                    "Invalid virtual machine state: the virtual machine is " +
                                        std::string(to_string(core->state))};
    }
    if (!refusal && !b.echo_ports.contains(port)) refusal = connection_reset();
    io::unique_fd host_end, guest_end;
    if (!refusal && !make_stream(host_end, guest_end))
        refusal = ns_error_spec{"NSPOSIXErrorDomain", errno, std::strerror(errno)};
    std::uint32_t source = 0;
    if (!refusal) {
        std::lock_guard lock(self->mutex);
        source = self->next_host_port++;
        serve_echo(*core, std::move(guest_end));
    }
    auto host = std::make_shared<io::unique_fd>(std::move(host_end));
    core->on_queue([done = std::move(done), refusal, host, source, port](machine_core&) {
        if (refusal) {
            strong error = make_error(*refusal);
            invoke_block<void, id, id>(done.get(), nullptr, error.get());
            return;
        }
        // The connection is +0 to the handler: the framework releases its reference afterwards.
        strong c = make_connection(std::move(*host), source, port);
        invoke_block<void, id, id>(done.get(), c.get(), nullptr);
    });
}

}  // namespace

// Starts an echo service on the guest's end of a stream (on the guest thread).
void serve_echo(machine_core& c, io::unique_fd guest_end) {
    std::lock_guard lock(c.mutex);
    if (!c.guest) return;  // the VM is being torn down: the descriptor closes here
    asio::io_context& ctx = c.guest->context();
    asio::post(ctx, [&ctx, fd = std::make_shared<io::unique_fd>(std::move(guest_end))] {
        asio::local::stream_protocol::socket s(ctx);
        boost::system::error_code ec;
        s.assign(asio::local::stream_protocol(), fd->get(), ec);
        if (ec) return;
        static_cast<void>(fd->release());
        asio::co_spawn(ctx, echo(std::move(s)), asio::detached);
    });
}

strong make_socket_device(const std::shared_ptr<machine_core>& core) {
    strong d = alloc_init(cls(device_class));
    payload<socket_device_payload>(d.get())->vm = core;
    return d;
}

boost::system::result<guest_connection> guest_connects(machine_core& core, id device_obj,
                                                       std::uint32_t port) {
    auto refused = boost::system::error_code(ECONNRESET, boost::system::system_category());
    auto* d = payload<socket_device_payload>(device_obj);
    strong listener_obj;
    std::uint32_t source = 0;
    {
        std::lock_guard lock(d->mutex);
        auto it = d->listeners.find(port);
        if (it == d->listeners.end()) return refused;
        listener_obj = it->second;
        source = d->next_guest_port++;
    }
    id delegate = payload<listener_payload>(listener_obj.get())->delegate;
    SEL should_accept = sel<"listener:shouldAcceptNewConnection:fromSocketDevice:">();
    if (!delegate || !responds_to(delegate, should_accept)) return refused;
    io::unique_fd host_end, guest_end;
    if (!make_stream(host_end, guest_end))
        return boost::system::error_code(errno, boost::system::system_category());
    {
        std::lock_guard lock(core.mutex);
        if (core.state != machine_state::running) return refused;
    }
    strong c = make_connection(std::move(host_end), source, port);
    const BOOL accepted =
        send<BOOL, id, id, id>(delegate, should_accept, listener_obj.get(), c.get(), device_obj);
    if (!accepted) return refused;  // the connection (and the host's end) goes with `c`
    return guest_connection{std::move(guest_end), source};
}

void install_socket_classes() {
    class_def<>("VZSocketDevice").done();
    class_def<socket_device_payload>(device_class, "VZSocketDevice")
        .method("connectToPort:completionHandler:",
                [](device self, std::uint32_t port, id handler_block) {
                    connect_to_port(self, port, handler_block);
                })
        .method("setSocketListener:forPort:",
                [](device self, id l, std::uint32_t port) {
                    if (!vm_of(*self.payload, "setSocketListener:forPort:")) return;
                    std::lock_guard lock(self->mutex);
                    self->listeners[port] = strong::retain(l);  // one listener per port: replaced
                })
        .method("removeSocketListenerForPort:",
                [](device self, std::uint32_t port) {
                    if (!vm_of(*self.payload, "removeSocketListenerForPort:")) return;
                    strong gone;
                    {
                        std::lock_guard lock(self->mutex);
                        auto it = self->listeners.find(port);
                        if (it == self->listeners.end())
                            return;  // "Does nothing if the port had no listener."
                        gone = std::move(it->second);
                        self->listeners.erase(it);
                    }
                })
        .done();

    class_def<listener_payload>("VZVirtioSocketListener")
        .method("delegate", [](listener self) -> id { return self->delegate; })
        .method("setDelegate:", [](listener self, id d) { self->delegate = d; })
        .done();

    class_def<connection_payload>("VZVirtioSocketConnection")
        .method("fileDescriptor", [](connection self) -> int { return self->fd; })
        .method("sourcePort", [](connection self) -> std::uint32_t { return self->source_port; })
        .method("destinationPort", [](connection self) -> std::uint32_t { return self->destination_port; })
        .method("close",
                [](connection self) {
                    if (self->fd >= 0) ::close(self->fd);
                    self->fd = -1;  // "A file descriptor of -1 indicates a closed connection."
                })
        .done();
}

}  // namespace vmrt::objc::sim::vz::detail
