// hybrid_vsock_listener: the Unix socket `<vsock socket>_<port>` CH connects to when the guest
// connects to CID 2 (see include/vmrt/net/hybrid_vsock.hpp).
#include <vmrt/error.hpp>
#include <vmrt/net/hybrid_vsock.hpp>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace vmrt::net {

namespace asio = boost::asio;
using stream_protocol = asio::local::stream_protocol;

struct hybrid_vsock_listener::impl {
    impl(asio::any_io_executor ex, std::filesystem::path p, std::uint32_t port_number)
        : acceptor(ex), path(std::move(p)), port(port_number) {}

    stream_protocol::acceptor acceptor;
    std::filesystem::path path;
    std::uint32_t port;
    dev_t device = 0;  // identity of the socket file we bound: removed only while it is still ours
    ino_t inode = 0;

    // Closes the socket (a pending accept fails with operation_aborted) and removes the file.
    // Idempotent. Runs when the listener goes, even if an accept still holds this state.
    void close() {
        error_code ignored;
        acceptor.close(ignored);
        struct stat st {};
        if (inode != 0 && ::lstat(path.c_str(), &st) == 0 && st.st_dev == device && st.st_ino == inode)
            ::unlink(path.c_str());
        inode = 0;
    }
    ~impl() { close(); }
};

namespace {

vmrt::error listener_error(error_code ec, const std::filesystem::path& path, const std::string& what) {
    return vmrt::error(ec, {.message = "hybrid vsock listener " + path.string() + ": " + what});
}

// Something is at `path` already. A socket file nobody accepts on (connect gives ECONNREFUSED)
// is a leftover of a crashed process and may go; anything else belongs to someone.
void remove_if_stale(const std::filesystem::path& path) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) return;  // nothing there
    if (!S_ISSOCK(st.st_mode))
        throw listener_error(errc::already_exists, path, "the path exists and is not a socket");
    const int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (probe < 0)
        throw listener_error(error_code(errno, boost::system::system_category()), path, "socket()");
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.c_str(), path.native().size());
    const int rc = ::connect(probe, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    const int err = errno;
    ::close(probe);
    if (rc == 0 || err != ECONNREFUSED)
        throw listener_error(errc::already_exists, path, "another process listens there");
    ::unlink(path.c_str());
}

}  // namespace

hybrid_vsock_listener hybrid_vsock_listener::bind(asio::any_io_executor ex,
                                                  std::filesystem::path vsock_socket, std::uint32_t port) {
    std::filesystem::path path = vsock_socket.native() + "_" + std::to_string(port);
    if (vsock_socket.empty() || path.native().size() >= sizeof(sockaddr_un::sun_path))
        throw vmrt::error(errc::invalid_spec,
                          {.message = "hybrid vsock listener path '" + path.string() + "' is " +
                                      std::to_string(path.native().size()) +
                                      " bytes long; a Unix socket path must be shorter than " +
                                      std::to_string(sizeof(sockaddr_un::sun_path)) + " bytes",
                           .field = "vsock_socket"});
    remove_if_stale(path);

    auto p = std::make_shared<impl>(ex, path, port);
    error_code ec;
    p->acceptor.open(stream_protocol(), ec);
    if (!ec) p->acceptor.bind(stream_protocol::endpoint(path.string()), ec);
    if (ec == boost::system::errc::address_in_use)
        throw listener_error(errc::already_exists, path, "the path was taken meanwhile");
    if (ec) throw listener_error(ec, path, "bind: " + ec.message());
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0) {  // before listen: nobody can have replaced it yet
        p->device = st.st_dev;
        p->inode = st.st_ino;
    }
    p->acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) throw listener_error(ec, path, "listen: " + ec.message());
    return hybrid_vsock_listener(std::move(p));
}

hybrid_vsock_listener::hybrid_vsock_listener(hybrid_vsock_listener&&) noexcept = default;
hybrid_vsock_listener& hybrid_vsock_listener::operator=(hybrid_vsock_listener&& other) noexcept {
    if (this != &other) {
        if (impl_) impl_->close();
        impl_ = std::move(other.impl_);
    }
    return *this;
}

hybrid_vsock_listener::~hybrid_vsock_listener() {
    if (impl_) impl_->close();
}

asio::awaitable<stream_protocol::socket> hybrid_vsock_listener::accept() {
    auto self = impl_;  // the state outlives this object while the accept is pending
    if (!self) throw vmrt::error(errc::invalid_state, {.message = "hybrid vsock listener was moved from"});
    error_code ec;
    auto s = co_await self->acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (ec == asio::error::operation_aborted)
        throw listener_error(errc::cancelled, self->path, "accept cancelled");
    if (ec) throw listener_error(ec, self->path, "accept: " + ec.message());
    co_return s;
}

const std::filesystem::path& hybrid_vsock_listener::path() const noexcept {
    static const std::filesystem::path none;
    return impl_ ? impl_->path : none;
}

std::uint32_t hybrid_vsock_listener::port() const noexcept { return impl_ ? impl_->port : 0; }

}  // namespace vmrt::net
