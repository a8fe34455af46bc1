// Absolute https:// URLs as the HTTPS client uses them (sans-I/O): parsed strictly, so that a
// value taken from a config file or a Location header can neither smuggle bytes into the request
// line nor carry credentials, and resolved against a base the way RFC 3986 §5 says (redirects).
//
// Accepted: https://HOST[:PORT][/PATH][?QUERY][#FRAGMENT], scheme case-insensitive, HOST a DNS
// name, an IPv4 address or a bracketed IPv6 address (no zone id). The fragment is dropped (it
// is never sent). Refused with a reason: other schemes (plain http included: downloads are
// always verified TLS), user:password@ (credentials belong in headers), empty hosts, bad ports,
// and any byte in the path or query that would need percent-encoding (spaces, controls, non-ASCII,
// backslash): callers percent-encode, the parser never guesses.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace vmrt::io {

struct https_url {
    std::string host;          ///< lowercase; an IPv6 address without its brackets
    std::uint16_t port = 443;  ///< 443 unless given
    std::string target = "/";  ///< path and query as sent in the request line; starts with '/'
    bool ip_literal = false;   ///< host is an IPv4/IPv6 address (no SNI; certificate checked by IP)

    /// HOST or HOST:PORT (port only when not 443), IPv6 in brackets: the Host header.
    std::string authority() const;
    /// https://AUTHORITY: requests to the same origin may share credentials.
    std::string origin() const;
    /// The whole URL, normalised (lowercase scheme and host, no default port, no fragment).
    std::string str() const;

    friend bool operator==(const https_url&, const https_url&) = default;
};

/// Parses an absolute https URL. Returns nothing and sets `why` when it is refused.
std::optional<https_url> try_parse_https_url(std::string_view text, std::string& why);

/// Same; throws vmrt::error (boost::system::errc::invalid_argument) naming the URL and the reason.
https_url parse_https_url(std::string_view text);

/// Resolves a Location header value against the URL it was received for (absolute URL,
/// scheme-relative //host/path, absolute path, query-only or relative path; dot segments
/// removed). A redirect to another scheme (http://) is refused like any non-https URL.
std::optional<https_url> try_resolve_location(const https_url& base, std::string_view location,
                                              std::string& why);

}  // namespace vmrt::io
