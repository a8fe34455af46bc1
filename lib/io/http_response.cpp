#include "io/http_response_impl.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>

#include <chrono>

namespace vmrt::io {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

/// The ways a connection ends before its body does. A TLS stream cut without close_notify
/// (stream_truncated) is one of them: it is how a dropped connection looks under TLS.
bool is_premature_end(const error_code& ec) {
    return ec == http::error::partial_message || ec == http::error::end_of_stream || ec == asio::error::eof ||
           ec == asio::ssl::error::stream_truncated || ec == asio::error::connection_reset ||
           ec == asio::error::connection_aborted || ec == asio::error::broken_pipe;
}

const beast::http::fields& no_fields() {
    static const beast::http::fields empty;
    return empty;
}

const https_url& no_url() {
    static const https_url empty;
    return empty;
}

}  // namespace

void http_response::impl::finish() {
    done = true;
    if (conn && parser->keep_alive()) {
        if (auto p = pool.lock()) p->give(std::move(conn));
    }
    conn.reset();
}

http_response::http_response() = default;
http_response::http_response(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
http_response::http_response(http_response&&) noexcept = default;
http_response& http_response::operator=(http_response&&) noexcept = default;
http_response::~http_response() = default;

unsigned http_response::status() const noexcept { return impl_ ? impl_->parser->get().result_int() : 0; }

std::string_view http_response::reason() const noexcept {
    if (!impl_) return {};
    auto r = impl_->parser->get().reason();
    return {r.data(), r.size()};
}

const beast::http::fields& http_response::headers() const noexcept {
    return impl_ ? impl_->parser->get().base() : no_fields();
}

std::optional<std::uint64_t> http_response::content_length() const noexcept {
    if (!impl_) return std::nullopt;
    if (auto len = impl_->parser->content_length()) return *len;
    return std::nullopt;
}

const https_url& http_response::url() const noexcept { return impl_ ? impl_->url : no_url(); }
http::verb http_response::method() const noexcept { return impl_ ? impl_->method : http::verb::unknown; }
unsigned http_response::redirects() const noexcept { return impl_ ? impl_->redirects : 0; }
std::uint64_t http_response::body_bytes_read() const noexcept { return impl_ ? impl_->body_read : 0; }
bool http_response::body_done() const noexcept { return impl_ && impl_->done; }

bool http_response::impl::direct_read_possible() {
    if (direct_remaining) return true;
    if (!parser->is_header_done() || parser->chunked() || conn->buffer.size() != 0) return false;
    auto left = parser->content_length_remaining();
    if (!left) return false;  // a body delimited by the connection's end: the parser reads it
    direct_remaining = *left;
    return true;
}

void http_response::impl::keep_idle_deadline() {
    // Re-arming Beast's timer costs a timer cancellation and a new wait; doing it per 16 KiB TLS
    // record was a large share of a pull's CPU. Arming for 9/8 of body_idle and re-arming once
    // 1/8 has passed leaves at least body_idle before the deadline at the start of every read.
    const auto now = std::chrono::steady_clock::now();
    const auto slack = timeouts.body_idle / 8;
    if (now - idle_armed < slack) return;
    beast::get_lowest_layer(conn->stream).expires_after(timeouts.body_idle + slack);
    idle_armed = now;
}

namespace {

/// Throws the error for a body read that failed with `ec`; the connection is dropped first.
[[noreturn]] void fail_body(http_response::impl& p, error_code ec, std::optional<std::uint64_t> announced) {
    p.conn.reset();  // the connection is unusable after any failure
    const auto where = " from " + p.url.str() + " after " + std::to_string(p.body_read) + " body bytes";
    const auto of = announced ? " (" + std::to_string(*announced) + " more announced)" : std::string();
    if (ec == beast::error::timeout)
        detail::fail(
            make_error_code(errc::timeout),
            "no body bytes for " +
                std::to_string(
                    std::chrono::duration_cast<std::chrono::milliseconds>(p.timeouts.body_idle).count()) +
                " ms" + where + of);
    if (ec == asio::error::operation_aborted) detail::fail(ec, "body read cancelled" + where);
    if (is_premature_end(ec))
        detail::fail(make_error_code(errc::incomplete_body),
                     "the connection ended before the body did" + where + of + ": " + ec.message());
    detail::fail(make_error_code(errc::protocol_error),
                 "malformed response body" + where + ": " + ec.message());
}

/// The rest of a Content-Length body, read from the TLS stream into `buffer` without the parser
/// (which would copy every byte once more through its own buffer).
asio::awaitable<std::size_t> read_direct(http_response::impl& p, asio::mutable_buffer buffer) {
    if (*p.direct_remaining == 0) {
        p.finish();
        co_return 0;
    }
    p.keep_idle_deadline();
    const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(buffer.size(), *p.direct_remaining));
    auto [ec, n] = co_await p.conn->stream.async_read_some(asio::buffer(buffer.data(), want), use_tuple);
    p.body_read += n;
    *p.direct_remaining -= n;
    if (*p.direct_remaining == 0) {
        if (ec) p.conn.reset();  // the body is whole, but the connection is not fit for reuse
        p.finish();
    } else if (ec || n == 0) {
        // A read that returns nothing without an error would look like the body's end to the
        // caller: it is a premature end.
        fail_body(p, ec ? ec : error_code(asio::error::eof), p.direct_remaining);
    }
    co_return n;
}

}  // namespace

asio::awaitable<std::size_t> http_response::async_read_some(asio::mutable_buffer buffer) {
    if (!impl_) detail::fail(make_error_code(errc::invalid_state), "read from an empty http_response");
    impl& p = *impl_;
    if (p.done) co_return 0;
    if (buffer.size() == 0)
        detail::fail(make_error_code(boost::system::errc::invalid_argument),
                     "body read into an empty buffer");
    if (!p.conn)
        detail::fail(make_error_code(errc::invalid_state),
                     "the connection of the response from " + p.url.str() + " failed earlier");
    if (p.direct_read_possible()) co_return co_await read_direct(p, buffer);
    for (;;) {
        auto& body = p.parser->get().body();
        body.data = buffer.data();
        body.size = buffer.size();
        body.more = true;
        p.keep_idle_deadline();
        auto [ec, consumed] =
            co_await http::async_read_some(p.conn->stream, p.conn->buffer, *p.parser, use_tuple);
        const std::size_t produced = buffer.size() - body.size;
        p.body_read += produced;
        if (ec == http::error::need_buffer) ec = {};  // our buffer is full: not an error
        if (ec) {
            auto announced = p.parser->content_length_remaining();
            fail_body(p, ec, announced ? std::optional<std::uint64_t>(*announced) : std::nullopt);
        }
        if (p.parser->is_done()) p.finish();
        if (produced > 0 || p.done) co_return produced;
    }
}

asio::awaitable<std::string> http_response::async_read_all(std::size_t limit) {
    std::string out;
    std::string chunk(16 * 1024, '\0');
    while (std::size_t n = co_await async_read_some(asio::buffer(chunk))) {
        if (out.size() + n > limit)
            detail::fail(make_error_code(errc::protocol_error), "the response body from " + url().str() +
                                                                    " is larger than " +
                                                                    std::to_string(limit) + " bytes");
        out.append(chunk, 0, n);
    }
    co_return out;
}

asio::awaitable<std::string> http_response::async_read_excerpt(std::size_t max) {
    std::string out;
    std::string chunk(std::min<std::size_t>(max, 16 * 1024), '\0');
    while (out.size() < max && !body_done() && impl_ && impl_->conn) {
        std::size_t n = 0;
        bool transport_failed = false;
        try {
            n = co_await async_read_some(
                asio::buffer(chunk.data(), std::min(chunk.size(), max - out.size())));
        } catch (const vmrt::error& e) {
            if (e.code() == asio::error::operation_aborted) throw;
            transport_failed = true;  // an excerpt is best effort: keep what arrived
        }
        if (transport_failed || n == 0) break;
        out.append(chunk, 0, n);
    }
    co_return out;
}

}  // namespace vmrt::io
