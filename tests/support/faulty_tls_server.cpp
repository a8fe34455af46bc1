#include "support/faulty_tls_server.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/read.hpp>

#include <algorithm>
#include <charconv>
#include <mutex>
#include <thread>

namespace vmrt::test {
namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;

struct faulty_tls_server::impl {
    explicit impl(faulty_tls_server_options o) : options(std::move(o)) {
        tls.use_certificate_chain_file(options.identity.cert.string());
        tls.use_private_key_file(options.identity.key.string(), asio::ssl::context::pem);
        if (options.token_auth)
            tokens.emplace(*options.token_auth,
                           "https://127.0.0.1:" + std::to_string(acceptor.local_endpoint().port()) +
                               options.token_auth->path);
    }

    faulty_tls_server_options options;
    asio::ssl::context tls{asio::ssl::context::tls_server};
    std::unique_ptr<asio::io_context> ctx = std::make_unique<asio::io_context>();  // outlives the acceptor
    tcp::acceptor acceptor{*ctx, {asio::ip::make_address("127.0.0.1"), options.port}};
    std::optional<fake_token_service> tokens;  // with options.token_auth
    std::thread thread;

    mutable std::mutex mutex;
    std::vector<received_request> received;
    unsigned responses = 0;

    /// "bytes=N-" → N; anything else (or a range we do not honour) → 0.
    std::size_t range_start(const std::string& range, std::size_t body_size) const {
        if (!options.honour_range || !range.starts_with("bytes=") || !range.ends_with("-")) return 0;
        std::size_t n = 0;
        auto digits = std::string_view(range).substr(6, range.size() - 7);
        auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
        if (ec != std::errc{} || end != digits.data() + digits.size() || n >= body_size) return 0;
        return n;
    }

    asio::awaitable<void> stall_forever() {
        auto ex = co_await asio::this_coro::executor;
        asio::steady_timer forever(ex, asio::steady_timer::time_point::max());
        co_await forever.async_wait(asio::use_awaitable);
    }

    /// Records a request with the status it gets; for the faulty targets, returns how many such
    /// requests came before (the "first N responses" of the faults), else max.
    unsigned record(received_request seen, unsigned status, bool counts_as_faulty) {
        std::lock_guard lock(mutex);
        seen.status = status;
        received.push_back(std::move(seen));
        return counts_as_faulty ? responses++ : std::numeric_limits<unsigned>::max();
    }

    /// Writes `out`; if `throttled`, the bytes after `head_size` go `throttle_chunk` at a time.
    asio::awaitable<void> send(asio::ssl::stream<tcp::socket>& stream, const std::string& out,
                               std::size_t head_size, bool throttled) {
        if (!throttled) {
            co_await asio::async_write(stream, asio::buffer(out), asio::use_awaitable);
            co_return;
        }
        auto ex = co_await asio::this_coro::executor;
        asio::steady_timer pause(ex);
        std::size_t at = 0;
        std::size_t piece = head_size + options.throttle_chunk;
        while (at < out.size()) {
            const std::size_t n = std::min(piece, out.size() - at);
            co_await asio::async_write(stream, asio::buffer(out.data() + at, n), asio::use_awaitable);
            at += n;
            piece = options.throttle_chunk;
            if (at < out.size()) {
                pause.expires_after(options.throttle_interval);
                co_await pause.async_wait(asio::use_awaitable);
            }
        }
    }

    asio::awaitable<void> session(tcp::socket socket) {
        asio::ssl::stream<tcp::socket> stream(std::move(socket), tls);
        co_await stream.async_handshake(asio::ssl::stream_base::server, asio::use_awaitable);
        boost::beast::flat_buffer buffer;
        for (;;) {
            http::request<http::empty_body> request;
            co_await http::async_read(stream, buffer, request, asio::use_awaitable);
            received_request seen{std::string(request.target()), std::string(request[http::field::range]),
                                  std::string(request[http::field::if_range]),
                                  std::string(request[http::field::authorization]), 0};
            if (tokens && tokens->is_token_request(seen.target)) {
                const std::string out = tokens->answer_token_request(seen.target, seen.authorization);
                record(std::move(seen), 200, false);
                co_await asio::async_write(stream, asio::buffer(out), asio::use_awaitable);
                continue;
            }
            if (tokens && seen.target.starts_with("/v2/")) {
                if (auto refusal = tokens->refuse(seen.target, seen.authorization)) {
                    record(std::move(seen), 401, false);
                    co_await asio::async_write(stream, asio::buffer(*refusal), asio::use_awaitable);
                    continue;
                }
            }
            const std::string* body = &options.body;
            if (!options.paths.empty()) {
                auto it = options.paths.find(seen.target);
                if (it == options.paths.end()) {
                    record(std::move(seen), 404, false);
                    const std::string missing = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
                    co_await asio::async_write(stream, asio::buffer(missing), asio::use_awaitable);
                    continue;
                }
                body = &it->second;
            }
            const bool faulty = seen.target.starts_with(options.fault_prefix);
            const std::size_t start = range_start(seen.range, body->size());
            if (options.stall_before_headers) {
                record(std::move(seen), 0, faulty);
                co_await stall_forever();
                co_return;
            }
            const bool busy = faulty && [&] {
                std::lock_guard lock(mutex);
                return responses < options.busy_responses;
            }();
            const unsigned index = record(std::move(seen),
                                          busy        ? options.busy_status
                                          : start > 0 ? 206
                                                      : 200,
                                          faulty);

            if (busy) {
                const std::string text = "busy, try again\n";
                std::string out =
                    "HTTP/1.1 " + std::to_string(options.busy_status) +
                    " Busy\r\nContent-Length: " + std::to_string(text.size()) + "\r\n" +
                    (options.retry_after.empty() ? "" : "Retry-After: " + options.retry_after + "\r\n") +
                    "\r\n" + text;
                co_await asio::async_write(stream, asio::buffer(out), asio::use_awaitable);
                continue;
            }
            const std::size_t length = body->size() - start;
            std::string head = start > 0
                                   ? "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes " +
                                         std::to_string(start) + "-" + std::to_string(body->size() - 1) +
                                         "/" + std::to_string(body->size()) + "\r\n"
                                   : std::string("HTTP/1.1 200 OK\r\n");
            head += "Content-Length: " + std::to_string(length) +
                    "\r\nETag: \"v1\"\r\nAccept-Ranges: bytes\r\n\r\n";
            std::size_t sent = length;
            const bool cut = index < options.cut_responses && options.cut_after < length;
            if (cut) sent = options.cut_after;
            const bool stall = options.stall_after < sent;
            if (stall) sent = options.stall_after;
            const std::string out = head + body->substr(start, sent);
            co_await send(stream, out, head.size(), index < options.throttle_responses);
            if (stall) {
                co_await stall_forever();
                co_return;
            }
            if (cut) {
                // A dropped connection: the TCP socket closes under TLS without close_notify.
                boost::system::error_code ignored;
                stream.next_layer().close(ignored);
                co_return;
            }
        }
    }

    asio::awaitable<void> accept_loop() {
        for (;;) {
            tcp::socket socket = co_await acceptor.async_accept(asio::use_awaitable);
            asio::co_spawn(*ctx, session(std::move(socket)), asio::detached);
        }
    }
};

faulty_tls_server::faulty_tls_server(faulty_tls_server_options options)
    : impl_(std::make_unique<impl>(std::move(options))) {
    asio::co_spawn(*impl_->ctx, impl_->accept_loop(), asio::detached);
    impl_->thread = std::thread([ctx = impl_->ctx.get()] { ctx->run(); });
}

faulty_tls_server::~faulty_tls_server() {
    impl_->ctx->stop();
    impl_->thread.join();
    // impl's members then go in reverse order: the acceptor, then the io_context, whose
    // destruction destroys the suspended sessions and with them their sockets.
}

std::uint16_t faulty_tls_server::port() const noexcept { return impl_->acceptor.local_endpoint().port(); }

std::vector<received_request> faulty_tls_server::requests() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->received;
}

std::vector<token_request_record> faulty_tls_server::token_requests() const {
    return impl_->tokens ? impl_->tokens->token_requests() : std::vector<token_request_record>{};
}

}  // namespace vmrt::test
