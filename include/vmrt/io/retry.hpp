// When and how long to wait before asking an HTTP server again: 429 Too Many Requests and the
// transient 5xx statuses (a registry under load), with exponential backoff that honours the
// server's Retry-After (RFC 9110 §10.2.3). Sans-I/O: the caller sleeps and counts.
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

namespace vmrt::io {

struct retry_policy {
    /// Retries after the first attempt (0: never retry).
    unsigned max_retries = 4;
    /// Backoff before retry n (1-based): initial_delay * 2^(n-1), at most max_delay.
    std::chrono::steady_clock::duration initial_delay = std::chrono::milliseconds(500);
    std::chrono::steady_clock::duration max_delay = std::chrono::seconds(30);
    /// A Retry-After longer than this is not waited for: the request fails instead, with the
    /// server's demand in the message (a registry asking for an hour is a refusal).
    std::chrono::steady_clock::duration max_retry_after = std::chrono::seconds(120);
};

/// 429 and 500, 502, 503, 504: statuses that say "not now" rather than "no".
bool is_retryable_status(unsigned status) noexcept;

/// A Retry-After value: delta-seconds ("120") or an HTTP date ("Fri, 27 Nov 2026 10:00:00 GMT",
/// IMF-fixdate only), as a wait from `now` (0 for a date in the past). nullopt if the value is
/// neither (then the backoff applies).
std::optional<std::chrono::seconds> parse_retry_after(std::string_view value,
                                                      std::chrono::system_clock::time_point now);

/// The wait before retry `retry` (1-based): the server's Retry-After if it gave one, else the
/// exponential backoff, scaled by `jitter` in [0.5, 1] (callers pass a random value so that many
/// clients do not retry in lockstep; tests pass 1).
std::chrono::steady_clock::duration retry_delay(const retry_policy& policy, unsigned retry,
                                                std::optional<std::chrono::seconds> retry_after,
                                                double jitter = 1.0);

}  // namespace vmrt::io
