#include "io/http_unix_client.hpp"

#include <vmrt/error.hpp>

#include <boost/asio/error.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/experimental/channel.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <sys/socket.h>

#include <array>
#include <cstring>
#include <exception>
#include <variant>

namespace vmrt::io {

namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;

struct http_unix_client::impl {
    impl(socket_type s, std::optional<std::filesystem::path> p, options o)
        : socket(std::move(s)), path(std::move(p)), opts(o), parser(o.limits), lock(socket.get_executor(), 1),
          ever_connected(socket.is_open()) {}

    socket_type socket;
    std::optional<std::filesystem::path> path;
    options opts;
    http1::response_parser parser;
    // A one-slot channel used as a FIFO lock: sending takes the slot, receiving frees it.
    asio::experimental::channel<void(error_code)> lock;
    bool ever_connected = false;

    void drop_connection() noexcept {
        error_code ignored;
        socket.close(ignored);
        parser = http1::response_parser(opts.limits);
    }

    std::string where() const { return path ? " (" + path->string() + ")" : std::string(); }

    asio::awaitable<void> ensure_connected() {
        if (socket.is_open()) co_return;
        if (!path)
            throw vmrt::error(errc::invalid_state,
                              {.message = "HTTP connection is closed and has no path to reconnect to"});
        if (ever_connected && !opts.reconnect_on_closed)
            throw vmrt::error(errc::invalid_state,
                              {.message = "HTTP connection" + where() + " was lost and reconnecting is off"});
        error_code ec;
        socket.open(asio::local::stream_protocol(), ec);
        if (!ec)
            co_await socket.async_connect(asio::local::stream_protocol::endpoint(path->string()),
                                          asio::redirect_error(asio::use_awaitable, ec));
        if (ec) {
            drop_connection();
            throw vmrt::error(ec, {.message = "cannot connect to " + path->string() + ": " + ec.message()});
        }
        ever_connected = true;
    }

    [[noreturn]] void peer_gone(const error_code& ec, std::string_view what) {
        const auto partial = parser.buffered();
        drop_connection();
        throw vmrt::error(errc::vmm_crashed,
                          {.message = "HTTP peer" + where() + " closed the connection " + std::string(what) +
                                      " (" + ec.message() + ", " + std::to_string(partial) +
                                      " response bytes received): the VMM is gone"});
    }

    static bool is_disconnect(const error_code& ec) {
        return ec == asio::error::eof || ec == asio::error::connection_reset ||
               ec == asio::error::broken_pipe || ec == asio::error::not_connected;
    }

    // One write and the reads of its response. Errors close the connection.
    // Sends the request's first bytes with `fds` attached (SCM_RIGHTS); returns how many bytes went.
    asio::awaitable<std::size_t> send_with_fds(const std::string& request, const std::vector<int>& fds) {
        std::vector<char> control(CMSG_SPACE(sizeof(int) * fds.size()), 0);
        for (;;) {
            iovec iov{const_cast<char*>(request.data()), request.size()};
            msghdr msg{};
            msg.msg_iov = &iov;
            msg.msg_iovlen = 1;
            msg.msg_control = control.data();
            msg.msg_controllen = control.size();
            cmsghdr* c = CMSG_FIRSTHDR(&msg);
            c->cmsg_level = SOL_SOCKET;
            c->cmsg_type = SCM_RIGHTS;
            c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
            std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
            const auto n = ::sendmsg(socket.native_handle(), &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n >= 0) co_return static_cast<std::size_t>(n);
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                error_code ec(errno, boost::system::system_category());
                if (is_disconnect(ec)) peer_gone(ec, "before the request was sent");
                drop_connection();
                throw vmrt::error(ec, {.message = "HTTP sendmsg failed" + where() + ": " + ec.message()});
            }
            error_code ec;
            co_await socket.async_wait(socket_type::wait_write,
                                       asio::redirect_error(asio::use_awaitable, ec));
            if (ec == asio::error::operation_aborted) throw boost::system::system_error(ec);
        }
    }

    asio::awaitable<http1::response> exchange(const std::string& request, const std::vector<int>& fds) {
        error_code probe;
        if (socket.available(probe) > 0 && !probe) {
            std::array<char, 256> junk{};
            error_code ignored;
            const auto n = socket.read_some(asio::buffer(junk), ignored);
            drop_connection();
            throw vmrt::error(errc::protocol_error,
                              {.message = "HTTP peer" + where() + " sent bytes no request asked for: \"" +
                                          http1::printable_excerpt(std::string_view(junk.data(), n)) + "\""});
        }
        error_code ec;
        const std::size_t sent = fds.empty() ? 0 : co_await send_with_fds(request, fds);
        co_await asio::async_write(socket, asio::buffer(request.data() + sent, request.size() - sent),
                                   asio::redirect_error(asio::use_awaitable, ec));
        if (ec) {
            if (is_disconnect(ec)) peer_gone(ec, "before the request was sent");
            drop_connection();
            throw vmrt::error(ec, {.message = "HTTP write failed" + where() + ": " + ec.message()});
        }
        std::array<char, 4096> buf{};
        for (;;) {
            std::optional<http1::response> r;
            try {
                r = parser.next();
            } catch (...) {
                drop_connection();
                throw;
            }
            if (r) {
                if (parser.buffered() > 0) {
                    drop_connection();
                    throw vmrt::error(errc::protocol_error,
                                      {.message = "HTTP peer" + where() + " sent bytes after the response"});
                }
                co_return std::move(*r);
            }
            const auto n = co_await socket.async_read_some(asio::buffer(buf),
                                                           asio::redirect_error(asio::use_awaitable, ec));
            if (ec) {
                if (is_disconnect(ec)) peer_gone(ec, "before the response was complete");
                drop_connection();
                if (ec == asio::error::operation_aborted) throw boost::system::system_error(ec);
                throw vmrt::error(ec, {.message = "HTTP read failed" + where() + ": " + ec.message()});
            }
            parser.feed(std::string_view(buf.data(), n));
        }
    }
};

namespace {

// The exchange's outcome as a value: the awaitable operator || waits for the first *success*,
// so an exception must not be what ends a branch.
struct exchange_outcome {
    std::optional<http1::response> response;
    std::exception_ptr error;
};

asio::awaitable<exchange_outcome> guarded_exchange(std::shared_ptr<http_unix_client::impl> self,
                                                   const std::string& request, const std::vector<int>& fds) {
    exchange_outcome out;
    try {
        out.response = co_await self->exchange(request, fds);
    } catch (...) {
        out.error = std::current_exception();
    }
    co_return out;
}

// Frees the lock slot when the request ends, however it ends.
struct lock_release {
    http_unix_client::impl* self;
    ~lock_release() {
        self->lock.try_receive([](error_code) {});
    }
};

}  // namespace

http_unix_client::http_unix_client(socket_type connected, options opts)
    : impl_(std::make_shared<impl>(std::move(connected), std::nullopt, opts)) {}
http_unix_client::http_unix_client(socket_type connected)
    : http_unix_client(std::move(connected), options{}) {}
http_unix_client::http_unix_client(asio::any_io_executor ex, std::filesystem::path path, options opts)
    : impl_(std::make_shared<impl>(socket_type(ex), std::move(path), opts)) {}
http_unix_client::http_unix_client(asio::any_io_executor ex, std::filesystem::path path)
    : http_unix_client(std::move(ex), std::move(path), options{}) {}
http_unix_client::http_unix_client(http_unix_client&&) noexcept = default;
http_unix_client& http_unix_client::operator=(http_unix_client&& other) noexcept {
    if (this != &other) {
        close();
        impl_ = std::move(other.impl_);
    }
    return *this;
}
http_unix_client::~http_unix_client() { close(); }

bool http_unix_client::is_open() const noexcept { return impl_ && impl_->socket.is_open(); }

void http_unix_client::close() noexcept {
    if (impl_) impl_->drop_connection();
}

asio::awaitable<http1::response>
http_unix_client::async_request(std::string method, std::string target, std::optional<std::string> json_body,
                                std::optional<std::chrono::steady_clock::duration> timeout,
                                std::vector<int> fds) {
    auto self = impl_;  // keeps the state alive even if the client object is destroyed meanwhile
    if (!self) throw vmrt::error(errc::invalid_state, {.message = "HTTP client was moved from"});
    const std::string request = http1::encode_request(method, target, json_body);
    const std::string what = method + " " + target;

    error_code ec;
    const error_code no_error;
    co_await self->lock.async_send(no_error, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) throw vmrt::error(errc::cancelled, {.message = what + ": cancelled while queued"});
    lock_release release{self.get()};

    co_await self->ensure_connected();
    auto ex = co_await asio::this_coro::executor;  // not inside the constructor call (GCC 12)
    asio::steady_timer timer(ex, timeout.value_or(self->opts.request_timeout));
    std::variant<exchange_outcome, std::monostate> raced;
    try {
        raced = co_await (guarded_exchange(self, request, fds) || timer.async_wait(asio::use_awaitable));
    } catch (const boost::system::system_error&) {
        // Both branches failed: the caller cancelled the call.
        self->drop_connection();
        throw vmrt::error(errc::cancelled, {.message = what + ": cancelled"});
    }
    if (raced.index() == 1) {
        self->drop_connection();
        throw vmrt::error(errc::timeout, {.message = what + ": no complete response" + self->where() +
                                                     " within the deadline"});
    }
    auto& outcome = std::get<0>(raced);
    if (outcome.error) {
        try {
            std::rethrow_exception(outcome.error);
        } catch (const vmrt::error&) {
            throw;
        } catch (const boost::system::system_error& e) {
            self->drop_connection();
            if (e.code() == asio::error::operation_aborted)
                throw vmrt::error(errc::cancelled, {.message = what + ": cancelled or closed"});
            throw vmrt::error(e.code(), {.message = what + ": " + e.what()});
        }
    }
    co_return std::move(*outcome.response);
}

}  // namespace vmrt::io
