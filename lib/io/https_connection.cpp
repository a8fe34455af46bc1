#include "io/https_connection.hpp"

#include <vmrt/io/with_timeout.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <chrono>

namespace vmrt::io::detail {
namespace asio = boost::asio;
namespace beast = boost::beast;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

std::string millis(std::chrono::steady_clock::duration d) {
    return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()) + " ms";
}

void load_trust(asio::ssl::context& ctx, const tls_options& options) {
    boost::system::error_code ec;
    if (!options.ca_file.empty()) {
        ctx.load_verify_file(options.ca_file.string(), ec);
        if (ec)
            fail(make_error_code(boost::system::errc::invalid_argument),
                 "cannot load the CA file " + options.ca_file.string() + ": " + ec.message());
    }
    if (!options.ca_dir.empty()) {
        ctx.add_verify_path(options.ca_dir.string(), ec);
        if (ec)
            fail(make_error_code(boost::system::errc::invalid_argument),
                 "cannot use the CA directory " + options.ca_dir.string() + ": " + ec.message());
    }
    if (options.ca_file.empty() && options.ca_dir.empty()) {
        ctx.set_default_verify_paths(ec);
        if (ec) fail(ec, "cannot load the system's trusted CA certificates: " + ec.message());
    }
}

/// Binds the expected peer identity to the connection: OpenSSL then checks it during the
/// handshake and reports a mismatch as a verification result with its own message, unlike a
/// verify callback, whose refusal only says "certificate verify failed".
void expect_peer(SSL* ssl, const https_url& url) {
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    bool ok = url.ip_literal ? X509_VERIFY_PARAM_set1_ip_asc(param, url.host.c_str()) == 1
                             // SNI is for names only (RFC 6066 §3 forbids IP literals in it).
                             : SSL_set_tlsext_host_name(ssl, url.host.c_str()) == 1 &&
                                   SSL_set1_host(ssl, url.host.c_str()) == 1;
    if (!ok) fail(make_error_code(errc::internal), "OpenSSL refused the peer name " + url.host);
}

}  // namespace

void fail(error_code ec, std::string message) { throw vmrt::error(ec, {.message = std::move(message)}); }

asio::ssl::context make_tls_context(const tls_options& options) {
    asio::ssl::context ctx(asio::ssl::context::tls_client);
    SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION);
    ctx.set_verify_mode(asio::ssl::verify_peer);
    load_trust(ctx, options);
    return ctx;
}

asio::awaitable<std::unique_ptr<https_connection>>
async_open_connection(asio::ssl::context& ctx, const https_url& url, const http_timeouts& timeouts) {
    auto ex = co_await asio::this_coro::executor;
    auto conn = std::make_unique<https_connection>(ex, ctx);
    conn->origin = url.origin();
    expect_peer(conn->stream.native_handle(), url);

    asio::ip::tcp::resolver resolver(ex);
    auto [rec, endpoints] = co_await with_timeout(
        resolver.async_resolve(url.host, std::to_string(url.port), asio::deferred), timeouts.connect);
    if (rec == errc::timeout)
        fail(rec, "resolving " + url.host + " took longer than " + millis(timeouts.connect));
    if (rec) fail(rec, "cannot resolve " + url.host + ": " + rec.message());

    auto& tcp = beast::get_lowest_layer(conn->stream);
    tcp.expires_after(timeouts.connect);
    auto [cec, endpoint] = co_await tcp.async_connect(endpoints, use_tuple);
    if (cec == beast::error::timeout)
        fail(make_error_code(errc::timeout),
             "connecting to " + url.authority() + " took longer than " + millis(timeouts.connect));
    if (cec) fail(cec, "cannot connect to " + url.authority() + ": " + cec.message());

    tcp.expires_after(timeouts.handshake);
    auto [hec] = co_await conn->stream.async_handshake(asio::ssl::stream_base::client, use_tuple);
    if (hec) {
        long verdict = SSL_get_verify_result(conn->stream.native_handle());
        if (hec == beast::error::timeout)
            fail(make_error_code(errc::timeout), "the TLS handshake with " + url.authority() +
                                                     " took longer than " + millis(timeouts.handshake));
        if (verdict != X509_V_OK)
            fail(make_error_code(errc::certificate_rejected),
                 "the TLS certificate of " + url.authority() +
                     " was rejected: " + X509_verify_cert_error_string(verdict));
        fail(hec, "the TLS handshake with " + url.authority() + " failed: " + hec.message());
    }
    tcp.expires_never();
    co_return conn;
}

std::unique_ptr<https_connection> connection_pool::take(const std::string& origin) {
    auto it = idle_.find(origin);
    if (it == idle_.end()) return nullptr;
    auto conn = std::move(it->second);
    idle_.erase(it);
    return conn;
}

void connection_pool::give(std::unique_ptr<https_connection> conn) {
    if (!conn || idle_.count(conn->origin) >= max_per_origin_) return;
    beast::get_lowest_layer(conn->stream).expires_never();
    auto origin = conn->origin;
    idle_.emplace(std::move(origin), std::move(conn));
}

}  // namespace vmrt::io::detail
