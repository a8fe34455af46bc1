#include "hv/apple_vz/vz_control.hpp"

#include "io/unix_listener.hpp"

#include <vmrt/error.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

namespace vmrt::hv::vz {

namespace asio = boost::asio;
using stream = asio::local::stream_protocol;

struct vz_control_relay::state {
    state(asio::any_io_executor ex, std::filesystem::path p) : path(std::move(p)), listener(ex), port(ex) {}
    std::filesystem::path path;
    stream::acceptor listener;
    stream::socket port;  ///< the host's end of the console port's pair
    bool closed = false;
};

namespace {

constexpr auto tuple = asio::as_tuple(asio::use_awaitable);

// Copies from `from` to `to` until either side ends; then shuts both directions of `client` down
// so that the other direction's copy ends too.
asio::awaitable<void> copy(stream::socket& from, stream::socket& to, stream::socket& client) {
    std::array<char, 4096> buffer;
    for (;;) {
        auto [ec, n] = co_await from.async_read_some(asio::buffer(buffer), tuple);
        if (ec) break;
        auto [wec, written] = co_await asio::async_write(to, asio::buffer(buffer.data(), n), tuple);
        if (wec) break;
    }
    boost::system::error_code ignored;
    client.shutdown(stream::socket::shutdown_both, ignored);
}

asio::awaitable<void> guest_to_host(std::shared_ptr<vz_control_relay::state> st,
                                    std::shared_ptr<stream::socket> client) {
    co_await copy(st->port, *client, *client);
}

// GCC 12: no co_await inside constructor arguments and no shared_ptr temporaries inside a co_await
// expression (both are miscompiled; ThreadSanitizer found the first here): named locals only.
asio::awaitable<void> relay(std::shared_ptr<vz_control_relay::state> st) {
    auto ex = co_await asio::this_coro::executor;
    for (;;) {
        auto [ec, client] = co_await st->listener.async_accept(tuple);
        if (ec || st->closed) co_return;
        // One client at a time, like a serial port: both directions until the client goes.
        auto shared_client = std::make_shared<stream::socket>(std::move(client));
        auto done = std::make_shared<asio::steady_timer>(ex, std::chrono::steady_clock::time_point::max());
        auto other_direction = guest_to_host(st, shared_client);
        asio::co_spawn(ex, std::move(other_direction), [done](std::exception_ptr) { done->cancel(); });
        co_await copy(*shared_client, st->port, *shared_client);
        // The client left (or the port failed): the other direction still waits for the guest;
        // stop that read (the port stays open for the next client) and wait for it to end.
        boost::system::error_code ignored;
        st->port.cancel(ignored);
        co_await done->async_wait(tuple);
        if (st->closed) co_return;
    }
}

}  // namespace

std::pair<std::unique_ptr<vz_control_relay>, io::unique_fd>
vz_control_relay::open(asio::any_io_executor ex, std::filesystem::path socket) {
    auto listening = io::listen_unix(socket);
    if (!listening)
        throw error(make_error_code(errc::vmm_start_failed),
                    {.message = "cannot listen on the control socket " + socket.string() + ": " +
                                listening.error().message(),
                     .field = "control_channel"});
    int pair[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM, 0, pair) != 0) {
        int e = errno;
        ::unlink(socket.c_str());
        throw error(make_error_code(errc::vmm_start_failed),
                    {.message = std::string("socketpair for the control port: ") + std::strerror(e),
                     .field = "control_channel"});
    }
    io::unique_fd host_end(pair[0]);
    io::unique_fd vm_end(pair[1]);
    ::fcntl(host_end.get(), F_SETFD, FD_CLOEXEC);
    ::fcntl(vm_end.get(), F_SETFD, FD_CLOEXEC);
    auto st = std::make_shared<state>(ex, std::move(socket));
    st->listener.assign(stream(), listening->release());
    st->port.assign(stream(), host_end.release());
    return {std::unique_ptr<vz_control_relay>(new vz_control_relay(st)), std::move(vm_end)};
}

vz_control_relay::~vz_control_relay() {
    state_->closed = true;
    boost::system::error_code ignored;
    state_->listener.close(ignored);
    state_->port.close(ignored);
    ::unlink(state_->path.c_str());
}

void vz_control_relay::start() {
    asio::co_spawn(state_->listener.get_executor(), relay(state_), asio::detached);
}

const std::filesystem::path& vz_control_relay::socket() const noexcept { return state_->path; }

}  // namespace vmrt::hv::vz
