// io::async_download end to end: a real nginx with a generated CA for the ordinary cases, and a
// TLS server that drops or stalls connections mid-body (support/faulty_tls_server.hpp) to prove
// resumption with Range. After every failure the final path must be untouched and no temporary
// file may remain.
#include "support/faulty_tls_server.hpp"
#include "support/https_test_env.hpp"
#include "support/test_support.hpp"

#include <vmrt/io/download.hpp>
#include <vmrt/io/https_client.hpp>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/test/unit_test.hpp>

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <exception>
#include <filesystem>
#include <string>
#include <vector>

namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using vmrt::errc;
using vmrt::io::async_download;
using vmrt::io::download_options;
using vmrt::io::download_result;
using vmrt::test::faulty_tls_server;
using vmrt::test::https_test_env;
using vmrt::test::run_coro;

bool contains(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

/// The names in `dir` (to prove that no temporary file is left).
std::vector<std::string> listing(const fs::path& dir) {
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(dir)) names.push_back(entry.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
}

/// Runs a download that must fail and returns its exception.
asio::awaitable<std::exception_ptr> download_failure(std::string url, fs::path out, download_options options,
                                                     vmrt::io::https_client_options client) {
    std::exception_ptr failure;
    try {
        co_await async_download(url, out, std::move(options), std::move(client));
    } catch (...) {
        failure = std::current_exception();
    }
    BOOST_TEST_REQUIRE(static_cast<bool>(failure), "the download of " << url << " succeeded");
    co_return failure;
}

template <typename E = vmrt::error>
E as_error(std::exception_ptr p) {
    try {
        std::rethrow_exception(p);
    } catch (const E& e) {
        return e;
    } catch (const std::exception& e) {
        BOOST_FAIL("unexpected exception: " << e.what());
    }
    throw std::logic_error("unreachable");
}

// GCC 12 destroys braced temporaries inside co_await expressions twice: options are built by
// these functions instead.
download_options verified(const std::string& sha256, unsigned max_resume_attempts = 5,
                          unsigned max_redirects = 5) {
    download_options o;
    o.expected_sha256 = sha256;
    o.max_resume_attempts = max_resume_attempts;
    o.max_redirects = max_redirects;
    return o;
}

download_options unverified() {
    download_options o;
    o.allow_unverified = true;
    return o;
}

/// A misbehaving server with the env's valid certificate, serving the env's blob.
vmrt::test::faulty_tls_server_options faulty(const https_test_env& env) {
    return {.identity = env.pki.valid, .body = env.blob};
}

std::string faulty_url(const faulty_tls_server& server) {
    return "https://127.0.0.1:" + std::to_string(server.port()) + "/blob.bin";
}

}  // namespace

BOOST_AUTO_TEST_SUITE(download_test)

BOOST_AUTO_TEST_CASE(happy_path_then_cache_hit) {
    asio::io_context ctx;
    https_test_env env;
    const fs::path out_dir = env.dir / "out";
    fs::create_directories(out_dir);
    const fs::path target = out_dir / "blob.bin";
    run_coro(ctx, [&]() -> asio::awaitable<void> {
        co_await env.start_nginx();
        std::uint64_t last_done = 0, calls = 0;
        std::optional<std::uint64_t> last_total;
        download_options options{.expected_sha256 = env.blob_sha256};
        options.progress = [&](std::uint64_t done, std::optional<std::uint64_t> total) {
            BOOST_TEST(done >= last_done);
            last_done = done;
            last_total = total;
            ++calls;
        };
        ::umask(077);  // the final mode must not depend on the umask
        download_result r = co_await async_download(env.url(env.valid_port, "/blob.bin"), target, options,
                                                    env.client_options());
        ::umask(022);
        BOOST_TEST(r.sha256 == env.blob_sha256);
        BOOST_TEST(r.bytes == env.blob.size());
        BOOST_TEST(r.resumed_count == 0u);
        BOOST_TEST(!r.cache_hit);
        BOOST_TEST(r.final_url == env.url(env.valid_port, "/blob.bin"));
        BOOST_TEST((vmrt::test::read_file(target) == env.blob));
        BOOST_TEST((fs::status(target).permissions() == (fs::perms::owner_read | fs::perms::owner_write |
                                                         fs::perms::group_read | fs::perms::others_read)));
        BOOST_TEST((listing(out_dir) == vmrt::test::strings("blob.bin")));
        BOOST_TEST(last_done == env.blob.size());
        BOOST_TEST(last_total.value_or(0) == env.blob.size());
        BOOST_TEST(calls > 1u);

        // With the server gone, the file on disk with the right digest is a cache hit.
        env.nginx.reset();
        download_result again = co_await async_download(env.url(env.valid_port, "/blob.bin"), target,
                                                        verified(env.blob_sha256), env.client_options());
        BOOST_TEST(again.cache_hit);
        BOOST_TEST(again.sha256 == env.blob_sha256);
        BOOST_TEST(again.bytes == env.blob.size());
    });
}

BOOST_AUTO_TEST_CASE(wrong_digest_leaves_nothing) {
    asio::io_context ctx;
    https_test_env env(200 * 1024);
    const fs::path out_dir = env.dir / "out";
    fs::create_directories(out_dir);
    const std::string wrong(64, 'a');
    run_coro(ctx, [&]() -> asio::awaitable<void> {
        co_await env.start_nginx();
        auto e = as_error(co_await download_failure(env.url(env.valid_port, "/blob.bin"), out_dir / "new.bin",
                                                    verified(wrong), env.client_options()));
        BOOST_TEST((e.code() == errc::digest_mismatch), e.what());
        BOOST_TEST(contains(e.diag().message, env.blob_sha256), e.diag().message);
        BOOST_TEST(contains(e.diag().message, wrong), e.diag().message);
        BOOST_TEST(contains(e.diag().message, "/blob.bin"), e.diag().message);
        BOOST_TEST(listing(out_dir).empty());

        // An older file at the final path is left exactly as it was.
        vmrt::test::write_file(out_dir / "old.bin", "the previous version");
        e = as_error(co_await download_failure(env.url(env.valid_port, "/blob.bin"), out_dir / "old.bin",
                                               verified(wrong), env.client_options()));
        BOOST_TEST((e.code() == errc::digest_mismatch));
        BOOST_TEST(vmrt::test::read_file(out_dir / "old.bin") == "the previous version");
        BOOST_TEST((listing(out_dir) == vmrt::test::strings("old.bin")));
    });
}

BOOST_AUTO_TEST_CASE(a_digest_is_required_unless_explicitly_waived) {
    asio::io_context ctx;
    https_test_env env(10 * 1024);
    const fs::path out_dir = env.dir / "out";
    fs::create_directories(out_dir);
    run_coro(ctx, [&]() -> asio::awaitable<void> {
        co_await env.start_nginx();
        auto e = as_error(co_await download_failure(env.url(env.valid_port, "/blob.bin"), out_dir / "a.bin",
                                                    download_options(), env.client_options()));
        BOOST_TEST((e.code() == boost::system::errc::invalid_argument));
        BOOST_TEST(contains(e.diag().message, "allow_unverified"), e.diag().message);
        e = as_error(co_await download_failure(env.url(env.valid_port, "/blob.bin"), out_dir / "a.bin",
                                               verified("xyz"), env.client_options()));
        BOOST_TEST((e.code() == boost::system::errc::invalid_argument));
        BOOST_TEST(env.nginx->access_log().empty());  // refused before any request

        auto r = co_await async_download(env.url(env.valid_port, "/blob.bin"), out_dir / "a.bin",
                                         unverified(), env.client_options());
        BOOST_TEST(r.sha256 == env.blob_sha256);
        BOOST_TEST((vmrt::test::read_file(out_dir / "a.bin") == env.blob));
    });
}

BOOST_AUTO_TEST_CASE(redirects_followed_and_loops_refused) {
    asio::io_context ctx;
    https_test_env env(100 * 1024);
    const fs::path out_dir = env.dir / "out";
    fs::create_directories(out_dir);
    run_coro(ctx, [&]() -> asio::awaitable<void> {
        co_await env.start_nginx();
        auto r = co_await async_download(env.url(env.valid_port, "/redirect-chain"), out_dir / "b.bin",
                                         verified(env.blob_sha256), env.client_options());
        BOOST_TEST(r.final_url == env.url(env.valid_port, "/blob.bin"));
        BOOST_TEST((vmrt::test::read_file(out_dir / "b.bin") == env.blob));

        auto e = as_error(co_await download_failure(env.url(env.valid_port, "/loop"), out_dir / "loop.bin",
                                                    verified(env.blob_sha256, 5, 3), env.client_options()));
        BOOST_TEST((e.code() == errc::protocol_error));
        BOOST_TEST(contains(e.diag().message, "more than 3 redirects"), e.diag().message);
        BOOST_TEST((listing(out_dir) == vmrt::test::strings("b.bin")));
    });
}

BOOST_AUTO_TEST_CASE(http_errors_are_clear_and_leave_nothing) {
    asio::io_context ctx;
    https_test_env env(10 * 1024);
    const fs::path out_dir = env.dir / "out";
    fs::create_directories(out_dir);
    run_coro(ctx, [&]() -> asio::awaitable<void> {
        co_await env.start_nginx();
        auto e404 = as_error<vmrt::io::http_status_error>(
            co_await download_failure(env.url(env.valid_port, "/missing.bin"), out_dir / "x.bin",
                                      verified(env.blob_sha256), env.client_options()));
        BOOST_TEST((e404.code() == errc::http_status));
        BOOST_TEST(e404.status() == 404u);
        BOOST_TEST(contains(e404.diag().message, "download of " + env.url(env.valid_port, "/missing.bin")),
                   e404.diag().message);
        BOOST_TEST(contains(e404.diag().message, "HTTP 404"), e404.diag().message);

        auto e500 = as_error<vmrt::io::http_status_error>(
            co_await download_failure(env.url(env.valid_port, "/error500"), out_dir / "x.bin",
                                      verified(env.blob_sha256), env.client_options()));
        BOOST_TEST(e500.status() == 500u);
        BOOST_TEST(contains(e500.diag().message, "internal trouble"), e500.diag().message);
        BOOST_TEST(listing(out_dir).empty());
    });
}

BOOST_AUTO_TEST_CASE(refused_certificates_write_nothing) {
    asio::io_context ctx;
    https_test_env env(10 * 1024);
    const fs::path out_dir = env.dir / "out";
    fs::create_directories(out_dir);
    run_coro(ctx, [&]() -> asio::awaitable<void> {
        co_await env.start_nginx();
        auto expired =
            as_error(co_await download_failure(env.url(env.expired_port, "/blob.bin"), out_dir / "x.bin",
                                               verified(env.blob_sha256), env.client_options()));
        BOOST_TEST((expired.code() == errc::certificate_rejected));
        BOOST_TEST(contains(expired.diag().message, "certificate has expired"), expired.diag().message);
        auto unknown =
            as_error(co_await download_failure(env.url(env.unknown_ca_port, "/blob.bin"), out_dir / "x.bin",
                                               verified(env.blob_sha256), env.client_options()));
        BOOST_TEST((unknown.code() == errc::certificate_rejected));
        BOOST_TEST(listing(out_dir).empty());
    });
}

// The connection drops after 1 MiB; the download resumes with Range + If-Range and the result is
// the exact file.
BOOST_AUTO_TEST_CASE(mid_stream_close_then_resume) {
    asio::io_context ctx;
    https_test_env env;
    const fs::path out_dir = env.dir / "out";
    fs::create_directories(out_dir);
    auto options = faulty(env);
    options.cut_responses = 1;
    options.cut_after = 1024 * 1024;
    faulty_tls_server server(options);
    run_coro(ctx, [&]() -> asio::awaitable<void> {
        auto r = co_await async_download(faulty_url(server), out_dir / "blob.bin", verified(env.blob_sha256),
                                         env.client_options());
        BOOST_TEST(r.resumed_count == 1u);
        BOOST_TEST(r.sha256 == env.blob_sha256);
        BOOST_TEST((vmrt::test::read_file(out_dir / "blob.bin") == env.blob));
        auto seen = server.requests();
        BOOST_TEST_REQUIRE(seen.size() == 2u);
        BOOST_TEST(seen[0].range.empty());
        BOOST_TEST(seen[1].range == "bytes=1048576-");
        BOOST_TEST(seen[1].if_range == "\"v1\"");
        BOOST_TEST((listing(out_dir) == vmrt::test::strings("blob.bin")));
    });
}

BOOST_AUTO_TEST_CASE(a_busy_server_is_asked_again_after_its_retry_after) {
    // Two 429s with "Retry-After: 1", then the content: the download waits as asked (about 2 s,
    // not the 0.5 s backoff) and succeeds.
    asio::io_context ctx;
    https_test_env env;
    const fs::path out_dir = env.dir / "out";
    fs::create_directories(out_dir);
    auto options = faulty(env);
    options.busy_responses = 2;
    options.retry_after = "1";
    faulty_tls_server server(options);
    run_coro(ctx, [&]() -> asio::awaitable<void> {
        const auto t0 = std::chrono::steady_clock::now();
        auto r = co_await async_download(faulty_url(server), out_dir / "blob.bin", verified(env.blob_sha256),
                                         env.client_options());
        const auto waited = std::chrono::steady_clock::now() - t0;
        BOOST_TEST(r.busy_retries == 2u);
        BOOST_TEST(r.sha256 == env.blob_sha256);
        BOOST_TEST((waited >= std::chrono::seconds(2)));
        BOOST_TEST(server.requests().size() == 3u);
        BOOST_TEST((listing(out_dir) == vmrt::test::strings("blob.bin")));
    });
}

BOOST_AUTO_TEST_CASE(a_server_that_stays_busy_fails_with_its_status_and_writes_nothing) {
    asio::io_context ctx;
    https_test_env env;
    const fs::path out_dir = env.dir / "out";
    fs::create_directories(out_dir);
    auto options = faulty(env);
    options.busy_responses = 100;
    options.busy_status = 503;
    faulty_tls_server server(options);
    auto busy = faulty(env);
    busy.busy_responses = 100;
    busy.retry_after = "3600";  // an hour: a refusal, not worth waiting for
    faulty_tls_server refusing(busy);
    run_coro(ctx, [&]() -> asio::awaitable<void> {
        auto opts = verified(env.blob_sha256);
        opts.retry.max_retries = 2;
        opts.retry.initial_delay = std::chrono::milliseconds(20);
        try {
            co_await async_download(faulty_url(server), out_dir / "blob.bin", opts, env.client_options());
            BOOST_FAIL("a server that is always busy cannot deliver");
        } catch (const vmrt::error& e) {
            BOOST_TEST((e.code() == vmrt::errc::http_status), e.what());
            BOOST_TEST(std::string(e.what()).find("503") != std::string::npos, e.what());
        }
        BOOST_TEST(server.requests().size() == 3u);  // the first try and two retries
        try {
            co_await async_download(faulty_url(refusing), out_dir / "blob.bin", opts, env.client_options());
            BOOST_FAIL("a Retry-After of an hour is not waited for");
        } catch (const vmrt::error& e) {
            BOOST_TEST(std::string(e.what()).find("asks to wait 3600 s") != std::string::npos, e.what());
        }
        BOOST_TEST(refusing.requests().size() == 1u);
        BOOST_TEST(listing(out_dir).empty());
    });
}

BOOST_AUTO_TEST_CASE(several_drops_are_resumed_each_time) {
    asio::io_context ctx;
    https_test_env env;
    const fs::path out_dir = env.dir / "out";
    fs::create_directories(out_dir);
    auto options = faulty(env);
    options.cut_responses = 3;
    options.cut_after = 700 * 1000;
    faulty_tls_server server(options);
    run_coro(ctx, [&]() -> asio::awaitable<void> {
        auto r = co_await async_download(faulty_url(server), out_dir / "blob.bin", verified(env.blob_sha256),
                                         env.client_options());
        BOOST_TEST(r.resumed_count == 3u);
        BOOST_TEST((vmrt::test::read_file(out_dir / "blob.bin") == env.blob));
        auto seen = server.requests();
        BOOST_TEST_REQUIRE(seen.size() == 4u);
        BOOST_TEST(seen[3].range == "bytes=2100000-");
    });
}

// A server that answers a Range request with 200 sends the whole body again: the partial file
// is emptied and the hash restarted, not spliced.
BOOST_AUTO_TEST_CASE(a_server_ignoring_range_restarts_from_zero) {
    asio::io_context ctx;
    https_test_env env;
    const fs::path out_dir = env.dir / "out";
    fs::create_directories(out_dir);
    auto options = faulty(env);
    options.cut_responses = 1;
    options.cut_after = 500 * 1000;
    options.honour_range = false;
    faulty_tls_server server(options);
    run_coro(ctx, [&]() -> asio::awaitable<void> {
        std::uint64_t lowest_after_restart = ~0ULL;
        bool went_down = false;
        std::uint64_t previous = 0;
        download_options d{.expected_sha256 = env.blob_sha256};
        d.progress = [&](std::uint64_t done, std::optional<std::uint64_t>) {
            if (done < previous) {
                went_down = true;
                lowest_after_restart = std::min(lowest_after_restart, done);
            }
            previous = done;
        };
        auto r = co_await async_download(faulty_url(server), out_dir / "blob.bin", d, env.client_options());
        BOOST_TEST(r.resumed_count == 1u);
        BOOST_TEST(r.sha256 == env.blob_sha256);
        BOOST_TEST((vmrt::test::read_file(out_dir / "blob.bin") == env.blob));
        BOOST_TEST(went_down);
        BOOST_TEST(server.requests().at(1).range == "bytes=500000-");
    });
}

BOOST_AUTO_TEST_CASE(truncated_body_without_resume_is_a_clear_error) {
    asio::io_context ctx;
    https_test_env env(1024 * 1024);
    const fs::path out_dir = env.dir / "out";
    fs::create_directories(out_dir);
    auto options = faulty(env);
    options.cut_responses = 100;
    options.cut_after = 300 * 1000;
    options.honour_range = false;
    faulty_tls_server server(options);
    run_coro(ctx, [&]() -> asio::awaitable<void> {
        // No resume allowed: the first truncation is final.
        auto e = as_error(co_await download_failure(faulty_url(server), out_dir / "blob.bin",
                                                    verified(env.blob_sha256, 0), env.client_options()));
        BOOST_TEST((e.code() == errc::incomplete_body), e.what());
        BOOST_TEST(contains(e.diag().message, "after 300000 body bytes"), e.diag().message);
        BOOST_TEST(contains(e.diag().message, "gave up after 0 resume attempts"), e.diag().message);
        BOOST_TEST(server.requests().size() == 1u);
        BOOST_TEST(listing(out_dir).empty());

        // Resumes allowed, but the server never gets further.
        e = as_error(co_await download_failure(faulty_url(server), out_dir / "blob.bin",
                                               verified(env.blob_sha256, 2), env.client_options()));
        BOOST_TEST((e.code() == errc::incomplete_body), e.what());
        BOOST_TEST(contains(e.diag().message, "gave up after 2 resume attempts"), e.diag().message);
        BOOST_TEST(server.requests().size() == 4u);
        BOOST_TEST(listing(out_dir).empty());
    });
}

BOOST_AUTO_TEST_CASE(a_stalled_body_hits_the_idle_timeout) {
    asio::io_context ctx;
    https_test_env env(1024 * 1024);
    const fs::path out_dir = env.dir / "out";
    fs::create_directories(out_dir);
    auto options = faulty(env);
    options.stall_after = 100 * 1000;
    faulty_tls_server server(options);
    auto client = env.client_options();
    client.timeouts.body_idle = 300ms;
    run_coro(ctx, [&]() -> asio::awaitable<void> {
        const auto start = std::chrono::steady_clock::now();
        auto e = as_error(co_await download_failure(faulty_url(server), out_dir / "blob.bin",
                                                    verified(env.blob_sha256, 1), client));
        BOOST_TEST((e.code() == errc::timeout), e.what());
        BOOST_TEST(contains(e.diag().message, "no body bytes for 300 ms"), e.diag().message);
        BOOST_TEST(contains(e.diag().message, "gave up after 1 resume attempts"), e.diag().message);
        BOOST_TEST((std::chrono::steady_clock::now() - start < 5s));
        // The resume asked for the rest after the 100,000 bytes that did arrive.
        auto seen = server.requests();
        BOOST_TEST_REQUIRE(seen.size() == 2u);
        BOOST_TEST(seen[1].range == "bytes=100000-");
        BOOST_TEST(listing(out_dir).empty());
    });
}

BOOST_AUTO_TEST_CASE(cancellation_removes_the_temporary_file) {
    asio::io_context ctx;
    https_test_env env(1024 * 1024);
    const fs::path out_dir = env.dir / "out";
    fs::create_directories(out_dir);
    auto options = faulty(env);
    options.stall_after = 100 * 1000;
    faulty_tls_server server(options);
    run_coro(ctx, [&]() -> asio::awaitable<void> {
        using namespace asio::experimental::awaitable_operators;
        auto ex = co_await asio::this_coro::executor;
        asio::steady_timer timer(ex, 500ms);
        const auto start = std::chrono::steady_clock::now();
        auto winner = co_await (async_download(faulty_url(server), out_dir / "blob.bin",
                                               verified(env.blob_sha256), env.client_options()) ||
                                timer.async_wait(asio::use_awaitable));
        BOOST_TEST(winner.index() == 1u);  // the timer: the download was cancelled
        BOOST_TEST((std::chrono::steady_clock::now() - start < 3s));
        BOOST_TEST(listing(out_dir).empty());
    });
}

BOOST_AUTO_TEST_SUITE_END()
