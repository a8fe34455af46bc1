#include "io/https_connection.hpp"
#include "io/partial_file.hpp"

#include <vmrt/io/download.hpp>
#include <vmrt/io/http_range.hpp>
#include <vmrt/io/sha256.hpp>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <random>
#include <system_error>
#include <vector>

namespace vmrt::io {
namespace asio = boost::asio;
namespace http = boost::beast::http;
namespace fs = std::filesystem;

namespace {

constexpr std::size_t chunk_bytes = 256 * 1024;

/// What If-Range may carry: a strong ETag, else Last-Modified (RFC 9110 §13.1.5). Weak ETags
/// cannot prove that two byte ranges belong to the same representation.
std::string validator_of(const http::fields& headers) {
    auto etag = headers[http::field::etag];
    if (!etag.empty() && !etag.starts_with("W/")) return std::string(etag);
    return std::string(headers[http::field::last_modified]);
}

std::string checked_digest(const std::string& what, const download_options& options) {
    if (options.expected_sha256.empty()) {
        if (!options.allow_unverified)
            detail::fail(make_error_code(boost::system::errc::invalid_argument),
                         what + ": no expected SHA-256 given (set allow_unverified to accept any content)");
        return {};
    }
    if (!is_sha256_hex(options.expected_sha256))
        detail::fail(make_error_code(boost::system::errc::invalid_argument),
                     what + ": the expected SHA-256 \"" + options.expected_sha256.substr(0, 80) +
                         "\" is not 64 hex digits");
    return normalize_hex(options.expected_sha256);
}

std::string bytes_of(std::uint64_t done, std::optional<std::uint64_t> total) {
    return std::to_string(done) + (total ? " of " + std::to_string(*total) : std::string()) + " bytes";
}

/// The body of a response that resumes at `offset` must be exactly the rest of the same file.
void check_resumed_range(const std::string& what, const http_response& resp, std::uint64_t offset,
                         std::optional<std::uint64_t>& total) {
    auto value = resp.headers()[http::field::content_range];
    auto range = parse_content_range({value.data(), value.size()});
    if (!range || !range->first || *range->first != offset ||
        (range->complete_length && total && *range->complete_length != *total))
        detail::fail(make_error_code(errc::protocol_error),
                     what + ": asked to resume at byte " + std::to_string(offset) +
                         ", the server answered 206 with Content-Range \"" +
                         std::string(value.substr(0, 100)) + "\"");
    if (range->complete_length) total = range->complete_length;
}

/// A 416 to our Range request is fine only when the file has no bytes beyond `offset`.
bool range_was_at_end(const http_response& resp, std::uint64_t offset, std::optional<std::uint64_t> total) {
    auto value = resp.headers()[http::field::content_range];
    auto range = parse_content_range({value.data(), value.size()});
    return range && range->complete_length && *range->complete_length == offset &&
           (!total || *total == offset);
}

}  // namespace

asio::awaitable<download_result> async_download(https_client& client, std::string url_text,
                                                fs::path final_path, download_options options) {
    const https_url url = parse_https_url(url_text);
    const std::string what = "download of " + url.str();
    const std::string expected = checked_digest(what, options);
    if (final_path.filename().empty())
        detail::fail(make_error_code(boost::system::errc::invalid_argument),
                     what + ": the destination \"" + final_path.string() + "\" names no file");

    download_result result;
    std::error_code fec;
    if (options.use_cache && !expected.empty() && fs::is_regular_file(final_path, fec)) {
        if (sha256_of_file(final_path) == expected) {
            result.sha256 = expected;
            result.bytes = fs::file_size(final_path);
            result.cache_hit = true;
            co_return result;
        }
    }

    detail::partial_file file(final_path);
    sha256 hash;
    std::optional<std::uint64_t> total;
    std::string validator;
    std::vector<char> buffer(chunk_bytes);
    for (;;) {
        const std::uint64_t offset = file.size();
        http_request request{.url = url, .headers = options.headers};
        if (offset > 0) {
            request.headers.set(http::field::range, range_from(offset));
            if (!validator.empty()) request.headers.set(http::field::if_range, validator);
        }
        http_response resp = co_await client.async_send_following(std::move(request), options.max_redirects);
        result.final_url = resp.url().str();

        bool complete = false;
        if (resp.status() == 200) {
            if (offset > 0) {  // the server ignored the range, or the file changed (If-Range)
                file.truncate();
                hash.reset();
            }
            total = resp.content_length();
            validator = validator_of(resp.headers());
        } else if (resp.status() == 206 && offset > 0) {
            check_resumed_range(what, resp, offset, total);
        } else if (resp.status() == 416 && offset > 0 && range_was_at_end(resp, offset, total)) {
            complete = true;
        } else if (is_retryable_status(resp.status()) && result.busy_retries < options.retry.max_retries) {
            auto demand = resp.headers()[http::field::retry_after];
            auto retry_after =
                parse_retry_after({demand.data(), demand.size()}, std::chrono::system_clock::now());
            if (!(retry_after && *retry_after > options.retry.max_retry_after)) {
                ++result.busy_retries;
                static thread_local std::minstd_rand jitter_source{std::random_device{}()};
                const double jitter = 0.5 + 0.5 * std::uniform_real_distribution<double>(0, 1)(jitter_source);
                auto ex = co_await asio::this_coro::executor;  // not inside the constructor call (GCC 12)
                asio::steady_timer wait(ex,
                                        retry_delay(options.retry, result.busy_retries, retry_after, jitter));
                co_await wait.async_wait(asio::use_awaitable);
                continue;  // the same request again, from the same offset
            }
            auto failure = co_await status_error_of(resp, what + " (the server asks to wait " +
                                                              std::to_string(retry_after->count()) + " s)");
            throw failure;
        } else {
            auto failure = co_await status_error_of(resp, what);
            throw failure;
        }

        std::string broken;  // why the body ended early, if it did
        error_code broken_ec;
        while (!complete) {
            std::size_t n = 0;
            try {
                n = co_await resp.async_read_some(asio::buffer(buffer));
            } catch (const vmrt::error& e) {
                if (e.code() != errc::incomplete_body && e.code() != errc::timeout) throw;
                broken_ec = e.code();
                broken = e.diag().message;
            }
            if (!broken.empty() || n == 0) break;
            if (total && file.size() + n > *total)
                detail::fail(make_error_code(errc::protocol_error),
                             what + ": the server sent more than the " + std::to_string(*total) +
                                 " bytes it announced");
            file.write(buffer.data(), n);
            hash.update(buffer.data(), n);
            if (options.progress) options.progress(file.size(), total);
        }
        if (broken.empty()) break;
        if (result.resumed_count >= options.max_resume_attempts)
            detail::fail(broken_ec, what + ": " + broken + "; gave up after " +
                                        std::to_string(result.resumed_count) + " resume attempts with " +
                                        bytes_of(file.size(), total));
        ++result.resumed_count;
    }

    if (total && file.size() != *total)
        detail::fail(make_error_code(errc::incomplete_body),
                     what + ": the body ended after " + bytes_of(file.size(), total));
    result.sha256 = hash.hex_digest();
    result.bytes = file.size();
    if (!expected.empty() && result.sha256 != expected)
        detail::fail(make_error_code(errc::digest_mismatch),
                     what + ": SHA-256 of the " + std::to_string(result.bytes) + " bytes received is " +
                         result.sha256 + ", expected " + expected + "; " + final_path.string() +
                         " was not written");
    file.commit(final_path, options.perms);
    co_return result;
}

asio::awaitable<download_result> async_download(std::string url, fs::path final_path,
                                                download_options options,
                                                https_client_options client_options) {
    // The executor is fetched first: GCC 12 mishandles co_await inside constructor arguments.
    auto ex = co_await asio::this_coro::executor;
    https_client client(ex, std::move(client_options));
    co_return co_await async_download(client, std::move(url), std::move(final_path), std::move(options));
}

}  // namespace vmrt::io
