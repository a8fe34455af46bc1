// The connection layer under https_client: the TLS context (trust store, verification rules) and
// one verified TLS connection to an origin, plus the idle-connection pool. Private to lib/io.
#pragma once

#include <vmrt/error.hpp>
#include <vmrt/io/https_client.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <map>
#include <memory>
#include <string>

namespace vmrt::io::detail {

using tls_stream = boost::beast::ssl_stream<boost::beast::tcp_stream>;

/// One TLS connection and the bytes read past the last message.
struct https_connection {
    https_connection(boost::asio::any_io_executor ex, boost::asio::ssl::context& ctx) : stream(ex, ctx) {}
    tls_stream stream;
    boost::beast::flat_buffer buffer;
    std::string origin;
    unsigned requests_sent = 0;
};

/// A TLS client context with peer verification on, TLS >= 1.2, and the trust store `options`
/// name (the system store if none). Throws vmrt::error (invalid_argument) if a CA path cannot
/// be loaded.
boost::asio::ssl::context make_tls_context(const tls_options& options);

/// Resolves and connects to `url`'s host and port, then handshakes, checking the certificate
/// against the host. Errors: see https_client.hpp.
boost::asio::awaitable<std::unique_ptr<https_connection>>
async_open_connection(boost::asio::ssl::context& ctx, const https_url& url, const http_timeouts& timeouts);

/// Idle keep-alive connections by origin. Shared between a client and its responses, which give
/// their connection back when their body has been read to the end.
class connection_pool {
public:
    explicit connection_pool(std::size_t max_per_origin) : max_per_origin_(max_per_origin) {}
    /// An idle connection to `origin`, or nothing.
    std::unique_ptr<https_connection> take(const std::string& origin);
    /// Keeps `conn` for reuse, or closes it when the origin already has enough idle ones.
    void give(std::unique_ptr<https_connection> conn);
    std::size_t size() const noexcept { return idle_.size(); }
    void clear() noexcept { idle_.clear(); }

private:
    std::size_t max_per_origin_;
    std::multimap<std::string, std::unique_ptr<https_connection>> idle_;
};

/// Throws vmrt::error{ec, message}.
[[noreturn]] void fail(error_code ec, std::string message);

}  // namespace vmrt::io::detail
