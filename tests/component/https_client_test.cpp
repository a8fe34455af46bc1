// io::https_client against a real nginx on loopback with a CA the test generates (see
// support/https_test_env.hpp), and against servers that stall: certificate checks, HTTP error
// statuses with their explanations, redirects, keep-alive reuse, timeouts.
#include "support/faulty_tls_server.hpp"
#include "support/https_test_env.hpp"
#include "support/test_support.hpp"

#include <vmrt/io/https_client.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <exception>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using namespace std::chrono_literals;
using vmrt::errc;
using vmrt::io::http_request;
using vmrt::io::http_response;
using vmrt::io::https_client;
using vmrt::io::parse_https_url;
using vmrt::test::https_test_env;
using vmrt::test::run_coro;

http_request get(const std::string& url) { return {.url = parse_https_url(url)}; }

/// Sends `url` and returns the error it fails with (the test fails if it succeeds).
asio::awaitable<vmrt::error> send_failure(https_client& client, std::string url) {
    std::exception_ptr failure;
    try {
        co_await client.async_send(get(url));
    } catch (...) {
        failure = std::current_exception();
    }
    BOOST_TEST_REQUIRE(static_cast<bool>(failure), url << " did not fail");
    try {
        std::rethrow_exception(failure);
    } catch (const vmrt::error& e) {
        co_return e;
    }
}

bool contains(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(https_client_test)

BOOST_AUTO_TEST_CASE(valid_certificate_by_ip_and_by_name) {
    asio::io_context ctx;
    https_test_env env;
    const auto hosts = vmrt::test::strings("127.0.0.1", "localhost");
    run_coro(ctx, [&]() -> asio::awaitable<void> {
        co_await env.start_nginx();
        auto ex = co_await asio::this_coro::executor;
        https_client client(ex, env.client_options());
        for (const auto& host : hosts) {
            auto resp = co_await client.async_send(
                get("https://" + host + ":" + std::to_string(env.valid_port) + "/blob.bin"));
            BOOST_TEST(resp.status() == 200u);
            BOOST_TEST(resp.content_length().value_or(0) == env.blob.size());
            std::string body = co_await resp.async_read_all(env.blob.size());
            BOOST_TEST((body == env.blob));
            BOOST_TEST(resp.body_done());
        }
    });
}

BOOST_AUTO_TEST_CASE(bad_certificates_are_refused_with_the_reason) {
    asio::io_context ctx;
    https_test_env env;
    // Built outside the coroutine: GCC 12 mishandles braced lists inside coroutine bodies.
    const std::vector<std::pair<std::string, std::string>> cases = {
        {env.url(env.expired_port, "/blob.bin"), "certificate has expired"},
        {env.url(env.unknown_ca_port, "/blob.bin"), "unable to get local issuer certificate"},
        {env.url(env.wrong_name_port, "/blob.bin"), "IP address mismatch"},
        {"https://localhost:" + std::to_string(env.wrong_name_port) + "/blob.bin", "hostname mismatch"}};
    run_coro(ctx, [&]() -> asio::awaitable<void> {
        co_await env.start_nginx();
        auto ex = co_await asio::this_coro::executor;
        https_client client(ex, env.client_options());
        for (const auto& [url, reason] : cases) {
            auto e = co_await send_failure(client, url);
            BOOST_TEST((e.code() == errc::certificate_rejected), url << ": " << e.what());
            BOOST_TEST(contains(e.diag().message, reason), e.diag().message);
            BOOST_TEST(contains(e.diag().message, url.substr(8, url.find('/', 8) - 8)), e.diag().message);
        }
        // The system trust store does not know the test CA: verification is on by default.
        https_client system_store(ex);
        auto e = co_await send_failure(system_store, env.url(env.valid_port, "/blob.bin"));
        BOOST_TEST((e.code() == errc::certificate_rejected), e.what());
    });
}

BOOST_AUTO_TEST_CASE(error_statuses_are_returned_and_explained) {
    asio::io_context ctx;
    https_test_env env;
    run_coro(ctx, [&]() -> asio::awaitable<void> {
        co_await env.start_nginx();
        auto ex = co_await asio::this_coro::executor;
        https_client client(ex, env.client_options());

        auto missing = co_await client.async_send(get(env.url(env.valid_port, "/missing.bin")));
        BOOST_TEST(missing.status() == 404u);
        auto e404 = co_await vmrt::io::status_error_of(missing, "fetching the kernel");
        BOOST_TEST((e404.code() == errc::http_status));
        BOOST_TEST(e404.status() == 404u);
        BOOST_TEST(e404.url() == env.url(env.valid_port, "/missing.bin"));
        BOOST_TEST(contains(e404.body_excerpt(), "404 Not Found"), e404.body_excerpt());
        BOOST_TEST(
            contains(e404.diag().message, "fetching the kernel: GET " + e404.url() + " answered HTTP 404"),
            e404.diag().message);

        auto broken = co_await client.async_send(get(env.url(env.valid_port, "/error500")));
        BOOST_TEST(broken.status() == 500u);
        auto e500 = co_await vmrt::io::status_error_of(broken);
        BOOST_TEST(e500.status() == 500u);
        BOOST_TEST(contains(e500.body_excerpt(), "internal trouble"), e500.body_excerpt());
        BOOST_TEST(contains(e500.diag().message, "HTTP 500"), e500.diag().message);
    });
}

BOOST_AUTO_TEST_CASE(redirects_are_followed_up_to_the_limit) {
    asio::io_context ctx;
    https_test_env env;
    run_coro(ctx, [&]() -> asio::awaitable<void> {
        co_await env.start_nginx();
        auto ex = co_await asio::this_coro::executor;
        https_client client(ex, env.client_options());

        auto plain = co_await client.async_send(get(env.url(env.valid_port, "/redirect")));
        BOOST_TEST(plain.status() == 302u);

        auto followed =
            co_await client.async_send_following(get(env.url(env.valid_port, "/redirect-chain")), 5);
        BOOST_TEST(followed.status() == 200u);
        BOOST_TEST(followed.redirects() == 2u);
        BOOST_TEST(followed.url().str() == env.url(env.valid_port, "/blob.bin"));
        std::string body = co_await followed.async_read_all(env.blob.size());
        BOOST_TEST((body == env.blob));

        std::exception_ptr failure;
        try {
            co_await client.async_send_following(get(env.url(env.valid_port, "/redirect-chain")), 1);
        } catch (...) {
            failure = std::current_exception();
        }
        BOOST_TEST_REQUIRE(static_cast<bool>(failure));
        try {
            std::rethrow_exception(failure);
        } catch (const vmrt::error& e) {
            BOOST_TEST((e.code() == errc::protocol_error));
            BOOST_TEST(contains(e.diag().message, "more than 1 redirects"), e.diag().message);
        }

        failure = nullptr;
        try {
            co_await client.async_send_following(get(env.url(env.valid_port, "/loop")), 5);
        } catch (...) {
            failure = std::current_exception();
        }
        BOOST_TEST_REQUIRE(static_cast<bool>(failure));
        try {
            std::rethrow_exception(failure);
        } catch (const vmrt::error& e) {
            BOOST_TEST((e.code() == errc::protocol_error));
            BOOST_TEST(contains(e.diag().message, "more than 5 redirects"), e.diag().message);
            BOOST_TEST(contains(e.diag().message, "/loop"), e.diag().message);
        }
    });
}

// nginx's access log records its connection number and the requests served on it.
BOOST_AUTO_TEST_CASE(connections_are_reused_and_replaced_when_the_server_closed_them) {
    asio::io_context ctx;
    https_test_env env(64 * 1024);
    run_coro(ctx, [&]() -> asio::awaitable<void> {
        co_await env.start_nginx();
        auto ex = co_await asio::this_coro::executor;
        https_client client(ex, env.client_options());
        for (int i = 0; i < 3; ++i) {
            auto resp = co_await client.async_send(get(env.url(env.valid_port, "/blob.bin")));
            std::string body = co_await resp.async_read_all(env.blob.size());
            BOOST_TEST((body == env.blob));
            BOOST_TEST(client.idle_connections() == 1u);
        }
        auto log = env.nginx->access_log();
        BOOST_TEST_REQUIRE(log.size() == 3u);
        auto connection_of = [](const std::string& line) {
            return line.substr(0, line.find(' '));
        };
        BOOST_TEST(connection_of(log[0]) == connection_of(log[2]));
        BOOST_TEST(log[2].find(" 3 200 GET /blob.bin") != std::string::npos, log[2]);

        // nginx closes idle connections after keepalive_timeout (1 s): the pooled one is dead.
        asio::steady_timer pause(ex, 1500ms);
        co_await pause.async_wait(asio::use_awaitable);
        auto resp = co_await client.async_send(get(env.url(env.valid_port, "/blob.bin")));
        BOOST_TEST(resp.status() == 200u);
        std::string body = co_await resp.async_read_all(env.blob.size());
        BOOST_TEST((body == env.blob));
        log = env.nginx->access_log();
        BOOST_TEST_REQUIRE(log.size() == 4u);
        BOOST_TEST(connection_of(log[3]) != connection_of(log[0]));
    });
}

BOOST_AUTO_TEST_CASE(connection_refused_is_a_clear_error) {
    asio::io_context ctx;
    run_coro(ctx, [&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        https_client client(ex);
        const auto port = vmrt::test::free_loopback_port();
        auto e = co_await send_failure(client, "https://127.0.0.1:" + std::to_string(port) + "/x");
        BOOST_TEST((e.code() == asio::error::connection_refused), e.what());
        BOOST_TEST(contains(e.diag().message, "cannot connect to 127.0.0.1:" + std::to_string(port)),
                   e.diag().message);
    });
}

BOOST_AUTO_TEST_CASE(stalled_servers_hit_the_timeouts) {
    asio::io_context ctx;
    vmrt::test::temp_dir dir;
    auto pki = vmrt::test::make_test_pki(dir / "pki");
    vmrt::test::faulty_tls_server silent({.identity = pki.valid, .body = "x", .stall_before_headers = true});
    run_coro(ctx, [&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        vmrt::io::https_client_options options;
        options.tls.ca_file = pki.ca_cert;
        options.timeouts.handshake = 300ms;
        options.timeouts.response = 300ms;
        https_client client(ex, options);

        // A server that answers nothing after the request.
        auto start = std::chrono::steady_clock::now();
        auto e = co_await send_failure(client, "https://127.0.0.1:" + std::to_string(silent.port()) + "/x");
        BOOST_TEST((e.code() == errc::timeout), e.what());
        BOOST_TEST(contains(e.diag().message, "no response header within 300 ms"), e.diag().message);
        BOOST_TEST((std::chrono::steady_clock::now() - start < 5s));

        // A listener that accepts TCP (the kernel's backlog) but never speaks TLS.
        asio::ip::tcp::acceptor mute(ex, {asio::ip::make_address("127.0.0.1"), 0});
        start = std::chrono::steady_clock::now();
        e = co_await send_failure(client,
                                  "https://127.0.0.1:" + std::to_string(mute.local_endpoint().port()) + "/x");
        BOOST_TEST((e.code() == errc::timeout), e.what());
        BOOST_TEST(contains(e.diag().message, "TLS handshake"), e.diag().message);
        BOOST_TEST((std::chrono::steady_clock::now() - start < 5s));
    });
}

// body_idle bounds the silence between body bytes, not the whole body: a body that takes 5 idle
// periods to arrive, a little at a time, is read to the end (the deadline is pushed back lazily,
// not per TLS record, so this checks that it is pushed back at all).
BOOST_AUTO_TEST_CASE(a_slow_steady_body_outlasts_the_idle_timeout) {
    asio::io_context ctx;
    vmrt::test::temp_dir dir;
    auto pki = vmrt::test::make_test_pki(dir / "pki");
    std::string body(200 * 1024, '\0');
    for (std::size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>(i * 7 + i / 1024);
    vmrt::test::faulty_tls_server slow({.identity = pki.valid,
                                        .body = body,
                                        .throttle_responses = 1,
                                        .throttle_chunk = 10 * 1024,
                                        .throttle_interval = 100ms});
    run_coro(ctx, [&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        vmrt::io::https_client_options options;
        options.tls.ca_file = pki.ca_cert;
        options.timeouts.body_idle = 400ms;
        https_client client(ex, options);
        const auto start = std::chrono::steady_clock::now();
        auto resp =
            co_await client.async_send(get("https://127.0.0.1:" + std::to_string(slow.port()) + "/x"));
        BOOST_TEST_REQUIRE(resp.status() == 200u);
        std::string got;
        std::vector<char> chunk(64 * 1024);  // larger than what arrives at a time
        while (std::size_t n = co_await resp.async_read_some(asio::buffer(chunk)))
            got.append(chunk.data(), n);
        BOOST_TEST((got == body));
        BOOST_TEST(resp.body_done());
        BOOST_TEST((std::chrono::steady_clock::now() - start > 1500ms));  // it really was slow
    });
}

BOOST_AUTO_TEST_CASE(an_unreadable_ca_file_is_reported_at_construction) {
    asio::io_context ctx;
    vmrt::io::https_client_options options;
    options.tls.ca_file = "/nonexistent/ca.pem";
    try {
        https_client client(ctx.get_executor(), options);
        BOOST_FAIL("a missing CA file was accepted");
    } catch (const vmrt::error& e) {
        BOOST_TEST((e.code() == boost::system::errc::invalid_argument));
        BOOST_TEST(contains(e.diag().message, "/nonexistent/ca.pem"), e.diag().message);
    }
}

BOOST_AUTO_TEST_SUITE_END()
