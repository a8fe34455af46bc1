// Verified downloads of assets (kernels, disk images) over HTTPS.
//
//   auto r = co_await io::async_download(client, "https://example.org/vmlinuz", dir / "vmlinuz",
//                                        {.expected_sha256 = "3f2a..."});
//
// How a download goes:
//  1. Cache: if `final_path` already exists and its SHA-256 is the expected one, nothing is
//     fetched (result.cache_hit). A file with another digest is left in place until a verified
//     replacement is renamed over it.
//  2. The body streams into a temporary file beside `final_path` (".NAME.partial.PID.RANDOM")
//     while it is hashed (OpenSSL EVP SHA-256); memory use is one buffer, whatever the size.
//  3. Redirects are followed up to max_redirects (https only; see https_client).
//  4. Resume: when the connection ends or stalls mid-body, the download asks again with
//     `Range: bytes=N-` (and If-Range with the first response's strong ETag or Last-Modified,
//     so a changed file is never spliced onto the old prefix). A 206 must start exactly at N and
//     agree on the total length; a 200 means the server ignored the range: the temp file is
//     emptied and the hash restarted; a 416 whose length equals N means the body was complete.
//     At most max_resume_attempts such retries, then errc::incomplete_body (or errc::timeout).
//     Resuming happens within one call: the temp file is private to it and removed when it ends.
//  4b. Busy servers: a 429 or transient 5xx (500/502/503/504) is asked again after the server's
//     Retry-After, or with exponential backoff (options.retry), keeping any bytes already
//     received; after retry.max_retries, or a Retry-After beyond retry.max_retry_after, the
//     status is the error.
//  5. The length must match Content-Length / Content-Range, the digest must match, and only then
//     fchmod → fsync → rename over final_path → fsync of the directory. On any failure
//     (including cancellation) the temp file is removed and final_path is untouched.
//
// Errors (vmrt::error): errc::digest_mismatch (expected and actual digest in the message),
// http_status_error (errc::http_status, e.g. 404/500 with a body excerpt), errc::incomplete_body,
// errc::timeout, errc::certificate_rejected, errc::protocol_error (bad redirect, bad
// Content-Range), a system error for connect failures and file errors, invalid_argument for a
// bad URL or a missing/invalid expected digest. Every message names the URL.
//
// File I/O (writes, the cache-hit hash, fsync) is done synchronously on the calling executor's
// thread: writes go to the page cache in 256 KiB pieces; the final fsync of a large image can
// take a while on slow disks.
#pragma once

#include <vmrt/io/https_client.hpp>
#include <vmrt/io/retry.hpp>

#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>

namespace vmrt::io {

struct download_options {
    /// The SHA-256 the content must have (64 hex digits). Required unless allow_unverified.
    std::string expected_sha256;
    /// Accept any content when no digest is given (the result still reports the digest). Never
    /// a cache hit: the file is always fetched again.
    bool allow_unverified = false;
    unsigned max_redirects = 5;
    /// Retries with Range after the connection ended or stalled mid-body.
    unsigned max_resume_attempts = 5;
    /// Asking again after 429 or a transient 5xx (io/retry.hpp), honouring Retry-After.
    retry_policy retry;
    /// Mode of the final file.
    std::filesystem::perms perms = std::filesystem::perms::owner_read | std::filesystem::perms::owner_write |
                                   std::filesystem::perms::group_read | std::filesystem::perms::others_read;
    /// Reuse an existing final file whose digest matches (step 1 above).
    bool use_cache = true;
    /// Extra request header fields (Authorization, Accept, ...).
    boost::beast::http::fields headers;
    /// Called after every chunk written: (bytes in the temp file, total length if known). It
    /// goes back down when a server ignores Range and the body restarts from zero.
    std::function<void(std::uint64_t done, std::optional<std::uint64_t> total)> progress;
};

struct download_result {
    std::string sha256;          ///< lowercase hex digest of the file at final_path
    std::uint64_t bytes = 0;     ///< its size
    unsigned resumed_count = 0;  ///< Range requests made after a broken transfer
    unsigned busy_retries = 0;   ///< requests repeated after a 429 or transient 5xx
    std::string final_url;       ///< the URL the body came from, after redirects
    bool cache_hit = false;      ///< final_path already held the expected content
};

/// Downloads `url` to `final_path` through `client` (its TLS trust and timeouts apply).
boost::asio::awaitable<download_result> async_download(https_client& client, std::string url,
                                                       std::filesystem::path final_path,
                                                       download_options options);

/// Same, with a client of its own made from `client_options` on the current executor.
boost::asio::awaitable<download_result> async_download(std::string url, std::filesystem::path final_path,
                                                       download_options options,
                                                       https_client_options client_options = {});

}  // namespace vmrt::io
