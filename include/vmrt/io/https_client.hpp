// An HTTPS/1.1 client over Boost.Beast and OpenSSL, for asset downloads and registry pulls.
//
//   io::https_client client(co_await asio::this_coro::executor, {.tls = {.ca_file = "ca.pem"}});
//   io::http_request req{.url = io::parse_https_url("https://example.org/blob")};
//   req.headers.set(beast::http::field::authorization, "Bearer " + token);
//   io::http_response resp = co_await client.async_send_following(std::move(req), 5);
//   if (resp.status() != 200) throw co_await io::status_error_of(resp, "fetching the blob");
//   while (std::size_t n = co_await resp.async_read_some(asio::buffer(chunk))) consume(chunk, n);
//
// What it guarantees:
//  * TLS peer verification is always on: the system trust store, or the CA file/directory given.
//    The certificate must match the URL's host (DNS name, or IP address for IP literals); SNI is
//    sent for names. TLS 1.2 is the minimum. A refused certificate is errc::certificate_rejected
//    with OpenSSL's reason ("certificate has expired", "Hostname mismatch", ...).
//  * Bodies are streamed: async_send returns after the response header, and the body is read
//    into the caller's buffer, so nothing is ever held whole in memory.
//  * Nothing waits forever: name resolution + connect, the TLS handshake, the response header
//    and every body read have their own timeout (errc::timeout, with what was being waited for).
//  * HTTP error statuses are not exceptions at this layer (a registry's 401 is a step of its
//    protocol); status_error_of() turns a response into a clear error with a body excerpt.
//  * Connections are kept alive and reused per origin once a body has been read to its end. A
//    reused connection that the server closed while idle is replaced transparently (GET/HEAD).
//
// Errors are thrown as vmrt::error with diagnostics naming the method and URL: the system error
// of a failed connect (connection_refused, host_not_found, ...), errc::certificate_rejected,
// errc::timeout, errc::incomplete_body (the connection ended before the announced body did),
// errc::protocol_error (malformed response, bad redirect, too many redirects),
// boost::asio::error::operation_aborted when the awaiting coroutine is cancelled.
//
// Thread safety: none. Use a client and its responses from one executor (a strand). A response
// must not outlive its client's executor; it may outlive the client (its connection then closes
// instead of returning to the pool).
#pragma once

#include <vmrt/error.hpp>
#include <vmrt/io/url.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/beast/http/fields.hpp>
#include <boost/beast/http/verb.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace vmrt::io {

struct tls_options {
    /// PEM file of trusted CA certificates. With ca_dir, both are used; with neither, the system
    /// store (OpenSSL's default verify paths, /etc/ssl/certs on Debian).
    std::filesystem::path ca_file;
    /// Directory of trusted CA certificates in OpenSSL's hashed layout (c_rehash).
    std::filesystem::path ca_dir;
};

struct http_timeouts {
    std::chrono::steady_clock::duration connect = std::chrono::seconds(30);  ///< resolve + TCP connect
    std::chrono::steady_clock::duration handshake = std::chrono::seconds(30);
    /// From sending the request to the end of the response header.
    std::chrono::steady_clock::duration response = std::chrono::seconds(60);
    /// Longest wait for more body bytes (a stalled transfer fails after this).
    std::chrono::steady_clock::duration body_idle = std::chrono::seconds(60);
};

struct https_client_options {
    tls_options tls;
    http_timeouts timeouts;
    std::string user_agent = "vmrt/0.1";
    /// Idle connections kept per origin for reuse; 0 disables keep-alive reuse.
    std::size_t max_idle_per_origin = 4;
    /// Largest response header accepted.
    std::uint32_t max_header_bytes = 64 * 1024;
};

struct http_request {
    boost::beast::http::verb method = boost::beast::http::verb::get;
    https_url url;
    /// Extra header fields (Authorization, Range, Accept, ...). Host and User-Agent are set by
    /// the client; Content-Length follows `body`.
    boost::beast::http::fields headers;
    /// A small request body (token requests); empty: none.
    std::string body;
};

/// A response whose header has arrived; its body is read with async_read_some.
class http_response {
public:
    http_response();
    http_response(http_response&&) noexcept;
    http_response& operator=(http_response&&) noexcept;
    ~http_response();

    unsigned status() const noexcept;
    std::string_view reason() const noexcept;
    const boost::beast::http::fields& headers() const noexcept;
    /// The Content-Length, if the body has one (not for chunked or close-delimited bodies).
    std::optional<std::uint64_t> content_length() const noexcept;
    /// The URL this response came from (the last one, after redirects).
    const https_url& url() const noexcept;
    boost::beast::http::verb method() const noexcept;
    /// Redirects followed to get here (async_send_following).
    unsigned redirects() const noexcept;
    /// Body bytes read so far.
    std::uint64_t body_bytes_read() const noexcept;
    /// True once the whole body has been read.
    bool body_done() const noexcept;

    /// Reads the next body bytes into `buffer` and returns how many; 0 only when the body is
    /// complete (and then again on every later call). Errors: errc::incomplete_body when the
    /// connection ends early (a TLS stream truncated without close_notify included),
    /// errc::timeout after http_timeouts::body_idle without a byte, protocol errors.
    boost::asio::awaitable<std::size_t> async_read_some(boost::asio::mutable_buffer buffer);

    /// Reads the whole body as a string; errc::protocol_error if it is longer than `limit`.
    boost::asio::awaitable<std::string> async_read_all(std::size_t limit);

    /// Reads up to `max` body bytes for a diagnostic message; never throws for transport errors
    /// (it returns what arrived), only for cancellation.
    boost::asio::awaitable<std::string> async_read_excerpt(std::size_t max = 512);

    struct impl;
    explicit http_response(std::unique_ptr<impl> p);

private:
    friend class https_client;
    std::unique_ptr<impl> impl_;
};

class https_client {
public:
    using executor_type = boost::asio::any_io_executor;

    /// Loads the trust store now: a CA file or directory that cannot be read is reported here
    /// (vmrt::error, boost::system::errc::invalid_argument, naming the file).
    explicit https_client(executor_type ex, https_client_options options = {});
    https_client(https_client&&) noexcept;
    https_client& operator=(https_client&&) noexcept;
    https_client(const https_client&) = delete;
    https_client& operator=(const https_client&) = delete;
    /// Closes the idle connections.
    ~https_client();

    executor_type get_executor() const noexcept;
    const https_client_options& options() const noexcept;

    /// Sends one request and returns once the response header has arrived. Any status is
    /// returned (redirects are not followed).
    boost::asio::awaitable<http_response> async_send(http_request request);

    /// Same, following 301, 302, 303, 307 and 308 up to `max_redirects` times (then
    /// errc::protocol_error). A 303, or a 301/302 of a request other than GET/HEAD, becomes a
    /// GET without body. Authorization, Proxy-Authorization and Cookie are dropped when a redirect
    /// leaves the origin (scheme, host and port), so a token never reaches a third party; a
    /// redirect to plain http:// is refused.
    boost::asio::awaitable<http_response> async_send_following(http_request request, unsigned max_redirects);

    /// Idle connections currently kept for reuse (all origins).
    std::size_t idle_connections() const noexcept;

    struct impl;

private:
    std::shared_ptr<impl> impl_;
};

/// An HTTP error status as an exception (errc::http_status); the message names the method, the
/// URL, the status and an excerpt of the body.
class http_status_error : public vmrt::error {
public:
    http_status_error(unsigned status, std::string url, std::string body_excerpt, std::string message);
    unsigned status() const noexcept { return status_; }
    const std::string& url() const noexcept { return url_; }
    const std::string& body_excerpt() const noexcept { return body_excerpt_; }

private:
    unsigned status_;
    std::string url_;
    std::string body_excerpt_;
};

/// Builds the error for an unexpected status of `response`, reading a short excerpt of its body
/// (control bytes replaced). `context` says what was being done ("downloading kernel.img").
boost::asio::awaitable<http_status_error> status_error_of(http_response& response,
                                                          std::string_view context = {});

}  // namespace vmrt::io
