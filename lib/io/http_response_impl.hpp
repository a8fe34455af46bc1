// The state behind an http_response: its connection (until the body is done), the Beast parser
// that streams the body into the caller's buffers, and the pool the connection returns to.
#pragma once

#include "io/https_connection.hpp"

#include <vmrt/io/https_client.hpp>

#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>

#include <chrono>
#include <memory>
#include <optional>

namespace vmrt::io {

struct http_response::impl {
    using parser_type = boost::beast::http::response_parser<boost::beast::http::buffer_body>;

    std::unique_ptr<detail::https_connection> conn;  ///< null once the body is done or failed
    std::unique_ptr<parser_type> parser;
    std::weak_ptr<detail::connection_pool> pool;
    https_url url;
    boost::beast::http::verb method = boost::beast::http::verb::get;
    http_timeouts timeouts;
    unsigned redirects = 0;
    std::uint64_t body_read = 0;
    bool done = false;
    /// The Content-Length body bytes still to come once the parser has handed the body over to
    /// direct reads (see http_response.cpp), or nothing while the parser reads it.
    std::optional<std::uint64_t> direct_remaining;
    /// When the idle deadline was last pushed back (it is not re-armed on every TLS record).
    std::chrono::steady_clock::time_point idle_armed{};

    /// The body is complete: give the connection back for reuse if the server keeps it open.
    void finish();
    /// True when the rest of the body can be read straight from the TLS stream into the caller's
    /// buffer: a Content-Length body whose header the parser has read and whose buffered bytes it
    /// has consumed. The parser then has nothing left to do but count, which this does instead.
    bool direct_read_possible();
    /// Makes sure at least body_idle is left before the connection's deadline.
    void keep_idle_deadline();
};

}  // namespace vmrt::io
