// HTTP/1.1 client over a Unix stream socket (Cloud Hypervisor's API socket), on the sans-I/O
// codec in io/http1_codec.hpp.
//
//   io::http_unix_client api(std::move(connected_socket));          // or (executor, path, options)
//   auto r = co_await api.async_request("PUT", "/api/v1/vm.boot");
//   if (r.status == 204) ...
//
// * One request at a time: concurrent calls queue and run in call order. CH's server answers in
//   order anyway, and its single VMM thread serializes the work (reference §1, §10.7).
// * Keep-alive: one connection is reused for every request. CH never closes a connection, so the
//   client never expects it to.
// * Every request has a deadline (options::request_timeout, or the per-call override).
// * Connecting: a client made from a path connects on first use. After the connection was lost
//   (error, timeout, peer gone, close()), the next request reconnects only if
//   options::reconnect_on_closed is set; otherwise it fails with errc::invalid_state. A request
//   is never re-sent on its own: the caller decides whether it was idempotent.
//
// Errors (vmrt::error):
//  * errc::vmm_crashed — the peer closed the connection (EOF, ECONNRESET, EPIPE) before the
//    response was complete. CH never closes connections (§2.2), so this means the VMM process
//    went away; after `vmm.shutdown` it is the expected outcome (§2.2, §10.4).
//  * errc::protocol_error — the response is malformed (see http1_codec.hpp), or bytes arrived
//    that belong to no request.
//  * errc::timeout — the deadline passed; errc::cancelled — the caller cancelled the call.
//  * the system error (ENOENT, ECONNREFUSED, ...) when connecting to a path fails.
// After any of these the connection is closed: its state is unknown.
//
// Thread safety: none; use it from one executor (the socket's).
#pragma once

#include "io/http1_codec.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/local/stream_protocol.hpp>

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace vmrt::io {

class http_unix_client {
public:
    using socket_type = boost::asio::local::stream_protocol::socket;

    struct options {
        std::chrono::steady_clock::duration request_timeout = std::chrono::seconds(30);
        /// Reconnect (to the path) before a request when the previous connection was lost.
        bool reconnect_on_closed = false;
        http1::limits limits{};
    };

    /// Uses an already connected socket (e.g. the API socket of a VMM that was given a pre-bound
    /// listener). Never reconnects: there is no path.
    explicit http_unix_client(socket_type connected, options opts);
    explicit http_unix_client(socket_type connected);
    /// Connects to `path` on first use.
    http_unix_client(boost::asio::any_io_executor ex, std::filesystem::path path, options opts);
    http_unix_client(boost::asio::any_io_executor ex, std::filesystem::path path);

    http_unix_client(http_unix_client&&) noexcept;
    http_unix_client& operator=(http_unix_client&&) noexcept;
    ~http_unix_client();

    /// Sends one request and reads its response. `timeout` overrides options::request_timeout
    /// (vm.boot may legitimately block for 60 s: reference §10.7).
    /// `fds`: file descriptors passed to the peer with the request's first bytes (SCM_RIGHTS),
    /// as CH's vm.add-net wants TAP fds (reference §1.3, §2.4); they stay open here.
    boost::asio::awaitable<http1::response>
    async_request(std::string method, std::string target, std::optional<std::string> json_body = std::nullopt,
                  std::optional<std::chrono::steady_clock::duration> timeout = std::nullopt,
                  std::vector<int> fds = {});

    /// True while a connection is open.
    bool is_open() const noexcept;
    /// Closes the connection (a queued or running request fails).
    void close() noexcept;

    struct impl;

private:
    std::shared_ptr<impl> impl_;
};

}  // namespace vmrt::io
