#include <vmrt/error.hpp>
#include <vmrt/io/url.hpp>

#include <boost/asio/ip/address_v4.hpp>
#include <boost/asio/ip/address_v6.hpp>

#include <algorithm>
#include <charconv>
#include <vector>

namespace vmrt::io {
namespace {

constexpr std::size_t max_url_bytes = 8192;
constexpr std::size_t max_host_bytes = 253;  // longest DNS name

char lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool is_alpha(char c) noexcept { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

/// Bytes allowed in a request target without percent-encoding: visible ASCII except the ones
/// that are never valid there ('#' is cut off before, '\\' is a Windows-ism some servers map to '/').
bool valid_target_byte(char c) noexcept {
    auto u = static_cast<unsigned char>(c);
    return u > 0x20 && u < 0x7f && c != '\\' && c != '"' && c != '<' && c != '>' && c != '`' && c != '{' &&
           c != '}' && c != '|' && c != '^';
}

/// DNS name characters ('_' is tolerated: it appears in real host names, though not in RFC 952).
bool valid_name_byte(char c) noexcept {
    return is_alpha(c) || is_digit(c) || c == '-' || c == '.' || c == '_';
}

/// `scheme:` at the start of `text` (RFC 3986 §3.1), without the colon; empty if there is none.
std::string_view scheme_of(std::string_view text) noexcept {
    if (text.empty() || !is_alpha(text[0])) return {};
    for (std::size_t i = 1; i < text.size(); ++i) {
        char c = text[i];
        if (c == ':') return text.substr(0, i);
        if (!is_alpha(c) && !is_digit(c) && c != '+' && c != '-' && c != '.') return {};
    }
    return {};
}

bool is_hex(char c) noexcept { return is_digit(c) || (lower(c) >= 'a' && lower(c) <= 'f'); }

bool check_target(std::string_view target, std::string& why) {
    for (std::size_t i = 0; i < target.size(); ++i) {
        if (!valid_target_byte(target[i])) {
            why = "the path or query contains a byte that must be percent-encoded";
            return false;
        }
        if (target[i] == '%' &&
            (i + 2 >= target.size() || !is_hex(target[i + 1]) || !is_hex(target[i + 2]))) {
            why = "a '%' in the path or query does not start a percent-encoded byte (%XX)";
            return false;
        }
    }
    return true;
}

bool parse_host(std::string_view host, https_url& out, std::string& why) {
    if (host.empty()) {
        why = "no host";
        return false;
    }
    if (host.front() == '[') {
        if (host.back() != ']') {
            why = "unterminated IPv6 address";
            return false;
        }
        std::string inner(host.substr(1, host.size() - 2));
        boost::system::error_code ec;
        auto addr = boost::asio::ip::make_address_v6(inner, ec);
        if (ec || addr.scope_id() != 0 || inner.find('%') != std::string::npos) {
            why = "invalid IPv6 address";
            return false;
        }
        out.host = addr.to_string();
        out.ip_literal = true;
        return true;
    }
    if (host.size() > max_host_bytes) {
        why = "host name too long";
        return false;
    }
    if (!std::all_of(host.begin(), host.end(), valid_name_byte)) {
        why = "invalid character in host name";
        return false;
    }
    out.host.clear();
    std::transform(host.begin(), host.end(), std::back_inserter(out.host), lower);
    // A name of digits and dots is an IPv4 address and must be a valid one (no "1.2.3.999").
    if (std::all_of(host.begin(), host.end(), [](char c) { return is_digit(c) || c == '.'; })) {
        boost::system::error_code ec;
        auto addr = boost::asio::ip::make_address_v4(out.host, ec);
        if (ec || addr.to_string() != out.host) {
            why = "invalid IPv4 address";
            return false;
        }
        out.ip_literal = true;
    }
    return true;
}

bool parse_port(std::string_view digits, https_url& out, std::string& why) {
    if (digits.empty()) return true;  // "host:" means the default port (RFC 3986 §3.2.3)
    unsigned value = 0;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
    if (ec != std::errc{} || end != digits.data() + digits.size() || value == 0 || value > 65535 ||
        !is_digit(digits.front())) {
        why = "invalid port";
        return false;
    }
    out.port = static_cast<std::uint16_t>(value);
    return true;
}

/// RFC 3986 §5.2.4, on the path only.
std::string remove_dot_segments(std::string_view path) {
    std::vector<std::string_view> kept;
    bool trailing_slash = false;
    std::size_t pos = 1;  // path starts with '/'
    while (pos <= path.size()) {
        auto next = path.find('/', pos);
        if (next == std::string_view::npos) next = path.size();
        std::string_view seg = path.substr(pos, next - pos);
        bool last = next == path.size();
        if (seg == ".") {
            trailing_slash = last;
        } else if (seg == "..") {
            if (!kept.empty()) kept.pop_back();
            trailing_slash = last;
        } else {
            kept.push_back(seg);
            trailing_slash = false;
        }
        pos = next + 1;
    }
    std::string out;
    for (auto seg : kept) {
        out += '/';
        out += seg;
    }
    if (trailing_slash || out.empty()) out += '/';
    return out;
}

/// Replaces the target of `base` by `target` (an absolute path with optional query).
bool with_target(https_url& base, std::string_view target, std::string& why) {
    if (!check_target(target, why)) return false;
    auto q = target.find('?');
    std::string path = remove_dot_segments(target.substr(0, q));
    if (q != std::string_view::npos) path += target.substr(q);
    base.target = std::move(path);
    return true;
}

}  // namespace

std::string https_url::authority() const {
    std::string a = host.find(':') != std::string::npos ? "[" + host + "]" : host;
    if (port != 443) a += ":" + std::to_string(port);
    return a;
}

std::string https_url::origin() const { return "https://" + authority(); }

std::string https_url::str() const { return origin() + target; }

std::optional<https_url> try_parse_https_url(std::string_view text, std::string& why) {
    if (text.size() > max_url_bytes) {
        why = "longer than " + std::to_string(max_url_bytes) + " bytes";
        return std::nullopt;
    }
    auto scheme = scheme_of(text);
    std::string lowered;
    std::transform(scheme.begin(), scheme.end(), std::back_inserter(lowered), lower);
    if (scheme.empty()) {
        why = "not an absolute URL (no scheme)";
        return std::nullopt;
    }
    if (lowered != "https") {
        why = "only https:// URLs are supported (scheme \"" + lowered + "\")";
        return std::nullopt;
    }
    std::string_view rest = text.substr(scheme.size() + 1);
    if (rest.substr(0, 2) != "//") {
        why = "no \"//\" after the scheme";
        return std::nullopt;
    }
    rest.remove_prefix(2);
    rest = rest.substr(0, rest.find('#'));
    auto auth_end = rest.find_first_of("/?");
    std::string_view authority = rest.substr(0, auth_end);
    std::string_view target = auth_end == std::string_view::npos ? std::string_view{} : rest.substr(auth_end);
    if (authority.find('@') != std::string_view::npos) {
        why = "credentials in the URL (user@host) are not accepted; pass them as a header";
        return std::nullopt;
    }
    // The port follows the last ':' outside an IPv6 literal.
    auto bracket = authority.rfind(']');
    auto colon = authority.rfind(':');
    std::string_view host = authority;
    std::string_view port;
    if (colon != std::string_view::npos && (bracket == std::string_view::npos || colon > bracket)) {
        host = authority.substr(0, colon);
        port = authority.substr(colon + 1);
    }
    https_url url;
    if (!parse_host(host, url, why) || !parse_port(port, url, why)) return std::nullopt;
    std::string full_target =
        target.empty() || target.front() == '?' ? "/" + std::string(target) : std::string(target);
    if (!with_target(url, full_target, why)) return std::nullopt;
    return url;
}

https_url parse_https_url(std::string_view text) {
    std::string why;
    auto url = try_parse_https_url(text, why);
    if (!url) {
        throw vmrt::error(make_error_code(boost::system::errc::invalid_argument),
                          {.message = "invalid URL \"" + std::string(text.substr(0, 200)) + "\": " + why});
    }
    return *url;
}

std::optional<https_url> try_resolve_location(const https_url& base, std::string_view location,
                                              std::string& why) {
    location = location.substr(0, location.find('#'));
    if (location.empty()) {
        why = "empty Location";
        return std::nullopt;
    }
    if (!scheme_of(location).empty()) return try_parse_https_url(location, why);
    if (location.substr(0, 2) == "//") return try_parse_https_url("https:" + std::string(location), why);
    https_url out = base;
    if (location.front() == '/') {
        if (!with_target(out, location, why)) return std::nullopt;
        return out;
    }
    std::string_view base_path = std::string_view(base.target).substr(0, base.target.find('?'));
    std::string merged;
    if (location.front() == '?')
        merged = std::string(base_path) + std::string(location);
    else
        merged = std::string(base_path.substr(0, base_path.rfind('/') + 1)) + std::string(location);
    if (!with_target(out, merged, why)) return std::nullopt;
    return out;
}

}  // namespace vmrt::io
