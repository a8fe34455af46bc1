// Registry authentication, sans-I/O: WWW-Authenticate challenges (RFC 7235 §4.1, §2.1), the
// bearer token request URL (the distribution token protocol) and the token response.
//
// One header value may hold several challenges:
//   Bearer realm="https://auth.docker.io/token",service="registry.docker.io", Basic realm="x"
// A challenge is a scheme followed by either a token68 or a comma-separated list of
// name=value parameters (value: token or quoted-string with backslash escapes). Schemes and
// parameter names are case-insensitive and returned in lowercase; whitespace is allowed around
// commas and '='; empty list elements are skipped; a parameter repeated within one challenge is
// an error (RFC 7235 §2.1: "each parameter name MUST only occur once per challenge").
#pragma once

#include <vmrt/io/url.hpp>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vmrt::image {

struct auth_challenge {
    std::string scheme;                         ///< lowercase: "bearer", "basic"
    std::map<std::string, std::string> params;  ///< lowercase names, unquoted values
    std::string token68;                        ///< set instead of params for the token68 form

    /// The value of a parameter, or nothing.
    std::optional<std::string> param(std::string_view name) const;
    friend bool operator==(const auth_challenge&, const auth_challenge&) = default;
};

/// Longest header value accepted.
inline constexpr std::size_t max_challenge_header_length = 16 * 1024;

/// Parses one WWW-Authenticate header value. Throws vmrt::error(errc::protocol_error) naming the
/// position and what was expected. An empty value (or one of only commas) gives no challenges.
std::vector<auth_challenge> parse_www_authenticate(std::string_view header_value);

/// The first challenge of `scheme` (case-insensitive) in `challenges`, or nullptr.
const auth_challenge* find_challenge(const std::vector<auth_challenge>& challenges, std::string_view scheme);

/// "repository:<repository>:pull": the scope a pull needs.
std::string pull_scope(std::string_view repository);

/// The token endpoint URL for a Bearer challenge: realm, plus `service=` (if the challenge has
/// one) and one `scope=` per scope, percent-encoded (RFC 3986 unreserved characters kept), added
/// to the realm's own query. `scopes` replaces the challenge's scope when not empty; otherwise
/// the challenge's scope parameter is used (split at spaces: it may list several). Throws
/// vmrt::error(errc::protocol_error) if the challenge is not Bearer, has no realm, or the realm is
/// not an acceptable https URL (credentials are only ever sent over verified TLS).
io::https_url bearer_token_url(const auth_challenge& challenge, const std::vector<std::string>& scopes = {});

/// A parsed token response. Holds a secret: never log it.
struct bearer_token {
    std::string token;                ///< `token`, or `access_token` when `token` is absent
    std::chrono::seconds expires_in;  ///< `expires_in`; 60 s when absent or 0 (the spec's default)
    std::optional<std::chrono::sys_seconds> issued_at;  ///< `issued_at` (RFC 3339), when given
    std::string refresh_token;                          ///< `refresh_token`, when given
};

/// Longest token response body accepted.
inline constexpr std::size_t max_token_response_length = 1024 * 1024;

/// Parses the JSON body of a token endpoint's reply. Throws vmrt::error(errc::protocol_error)
/// when it is not JSON, has no token, or has a field of the wrong type; the message never
/// contains the body (it may hold a token).
bearer_token parse_token_response(std::string_view body);

/// Percent-encodes everything but RFC 3986 unreserved characters (A-Z a-z 0-9 - . _ ~).
std::string percent_encode(std::string_view text);

}  // namespace vmrt::image
