// The state behind an http_response: its connection (until the body is done), the Beast parser
// that streams the body into the caller's buffers, and the pool the connection returns to.
#pragma once

#include "io/https_connection.hpp"

#include <vmrt/io/https_client.hpp>

#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>

#include <memory>

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

    /// The body is complete: give the connection back for reuse if the server keeps it open.
    void finish();
};

}  // namespace vmrt::io
