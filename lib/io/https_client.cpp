#include "io/http_response_impl.hpp"
#include "io/https_connection.hpp"

#include <vmrt/io/https_client.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <chrono>

namespace vmrt::io {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

/// How a kept-alive connection looks when the server closed it while it sat idle.
bool is_stale_connection(const error_code& ec) {
    return ec == http::error::end_of_stream || ec == asio::error::eof ||
           ec == asio::ssl::error::stream_truncated || ec == asio::error::connection_reset ||
           ec == asio::error::broken_pipe;
}

bool is_idempotent(http::verb v) { return v == http::verb::get || v == http::verb::head; }

bool is_redirect(unsigned status) {
    return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

std::string describe(const http_request& req) {
    return std::string(http::to_string(req.method)) + " " + req.url.str();
}

http::request<http::string_body> make_message(const http_request& req, const https_client_options& options) {
    http::request<http::string_body> msg{req.method, req.url.target, 11};
    for (const auto& f : req.headers) msg.insert(f.name_string(), f.value());
    msg.set(http::field::host, req.url.authority());
    if (msg.find(http::field::user_agent) == msg.end()) msg.set(http::field::user_agent, options.user_agent);
    msg.keep_alive(options.max_idle_per_origin > 0);
    if (!req.body.empty()) {
        msg.body() = req.body;
        msg.prepare_payload();
    }
    return msg;
}

/// Keeps printable ASCII of a body excerpt for a message.
std::string printable(std::string_view text) {
    std::string out;
    for (char c : text) out += (c >= 0x20 && c < 0x7f) ? c : (c == '\n' ? ' ' : '.');
    return out;
}

}  // namespace

struct https_client::impl {
    impl(executor_type e, https_client_options o)
        : ex(std::move(e)), options(std::move(o)), tls(detail::make_tls_context(options.tls)),
          pool(std::make_shared<detail::connection_pool>(options.max_idle_per_origin)) {}

    executor_type ex;
    https_client_options options;
    asio::ssl::context tls;
    std::shared_ptr<detail::connection_pool> pool;
};

https_client::https_client(executor_type ex, https_client_options options)
    : impl_(std::make_shared<impl>(std::move(ex), std::move(options))) {}
https_client::https_client(https_client&&) noexcept = default;
https_client& https_client::operator=(https_client&&) noexcept = default;
https_client::~https_client() {
    if (impl_) impl_->pool->clear();
}

https_client::executor_type https_client::get_executor() const noexcept { return impl_->ex; }
const https_client_options& https_client::options() const noexcept { return impl_->options; }
std::size_t https_client::idle_connections() const noexcept { return impl_->pool->size(); }

asio::awaitable<http_response> https_client::async_send(http_request request) {
    // Keep the state alive across the suspensions even if the client is moved from meanwhile.
    std::shared_ptr<impl> self = impl_;
    const auto& timeouts = self->options.timeouts;
    const auto msg = make_message(request, self->options);
    for (int attempt = 0;; ++attempt) {
        // Only the first attempt may take a pooled connection; a retry always opens a fresh one.
        std::unique_ptr<detail::https_connection> conn =
            attempt == 0 ? self->pool->take(request.url.origin()) : nullptr;
        const bool reused = conn != nullptr;
        if (!conn) conn = co_await detail::async_open_connection(self->tls, request.url, timeouts);

        auto parser = std::make_unique<http_response::impl::parser_type>();
        parser->header_limit(self->options.max_header_bytes);
        parser->body_limit(boost::none);  // bodies are streamed to the caller, never buffered
        if (request.method == http::verb::head) parser->skip(true);

        auto& tcp = beast::get_lowest_layer(conn->stream);
        tcp.expires_after(timeouts.response);
        auto [wec, written] = co_await http::async_write(conn->stream, msg, use_tuple);
        error_code ec = wec;
        if (!ec) {
            auto [rec, read] =
                co_await http::async_read_header(conn->stream, conn->buffer, *parser, use_tuple);
            ec = rec;
        }
        if (ec && reused && is_idempotent(request.method) && !parser->got_some() && is_stale_connection(ec))
            continue;  // the server closed the idle connection: retry once on a new one
        if (ec == beast::error::timeout)
            detail::fail(
                make_error_code(errc::timeout),
                describe(request) + ": no response header within " +
                    std::to_string(
                        std::chrono::duration_cast<std::chrono::milliseconds>(timeouts.response).count()) +
                    " ms");
        if (ec == asio::error::operation_aborted) detail::fail(ec, describe(request) + ": cancelled");
        if (ec && is_stale_connection(ec))
            detail::fail(make_error_code(errc::protocol_error),
                         describe(request) + ": the server closed the connection without a response (" +
                             ec.message() + ")");
        if (ec)
            detail::fail(make_error_code(errc::protocol_error),
                         describe(request) + ": bad response header: " + ec.message());
        tcp.expires_never();
        ++conn->requests_sent;

        auto state = std::make_unique<http_response::impl>();
        state->conn = std::move(conn);
        state->parser = std::move(parser);
        state->pool = self->pool;
        state->url = request.url;
        state->method = request.method;
        state->timeouts = timeouts;
        if (state->parser->is_done()) state->finish();  // no body (HEAD, 204, Content-Length: 0)
        co_return http_response(std::move(state));
    }
}

asio::awaitable<http_response> https_client::async_send_following(http_request request,
                                                                  unsigned max_redirects) {
    for (unsigned redirects = 0;; ++redirects) {
        http_response response = co_await async_send(request);
        const unsigned status = response.status();
        auto location = response.headers()[http::field::location];
        if (!is_redirect(status) || location.empty()) {
            response.impl_->redirects = redirects;
            co_return response;
        }
        if (redirects >= max_redirects)
            detail::fail(make_error_code(errc::protocol_error),
                         describe(request) + ": more than " + std::to_string(max_redirects) +
                             " redirects (the last one to \"" + printable(location.substr(0, 200)) + "\")");
        std::string why;
        auto next = try_resolve_location(request.url, {location.data(), location.size()}, why);
        if (!next)
            detail::fail(make_error_code(errc::protocol_error),
                         describe(request) + ": redirect to an unusable location \"" +
                             printable(location.substr(0, 200)) + "\": " + why);
        // Drain a small redirect body so that the connection can be reused.
        co_await response.async_read_excerpt(16 * 1024);
        if (next->origin() != request.url.origin()) {
            request.headers.erase(http::field::authorization);
            request.headers.erase(http::field::proxy_authorization);
            request.headers.erase(http::field::cookie);
        }
        if (status == 303 || ((status == 301 || status == 302) && !is_idempotent(request.method))) {
            request.method = http::verb::get;
            request.body.clear();
            request.headers.erase(http::field::content_type);
        }
        request.url = std::move(*next);
    }
}

http_status_error::http_status_error(unsigned status, std::string url, std::string body_excerpt,
                                     std::string message)
    : vmrt::error(make_error_code(errc::http_status), {.message = std::move(message)}), status_(status),
      url_(std::move(url)), body_excerpt_(std::move(body_excerpt)) {}

asio::awaitable<http_status_error> status_error_of(http_response& response, std::string_view context) {
    const std::string raw = co_await response.async_read_excerpt(512);
    std::string excerpt = printable(raw);
    std::string message;
    if (!context.empty()) message = std::string(context) + ": ";
    message += std::string(http::to_string(response.method())) + " " + response.url().str() +
               " answered HTTP " + std::to_string(response.status());
    if (!response.reason().empty()) message += " " + std::string(response.reason());
    if (!excerpt.empty()) message += "; body: " + excerpt;
    co_return http_status_error(response.status(), response.url().str(), std::move(excerpt),
                                std::move(message));
}

}  // namespace vmrt::io
