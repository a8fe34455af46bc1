#include "io/http1_codec.hpp"

#include <vmrt/error.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>

namespace vmrt::io::http1 {

namespace {

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

// RFC 9110 tchar.
bool is_token_char(char c) {
    if (std::isalnum(static_cast<unsigned char>(c))) return true;
    return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token(std::string_view s) { return !s.empty() && std::all_of(s.begin(), s.end(), is_token_char); }

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

// Field values: visible ASCII, obs-text, space and tab (RFC 9110 field-value).
bool is_field_value(std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char c) {
        auto u = static_cast<unsigned char>(c);
        return u == '\t' || u >= 0x20 ? u != 0x7f : false;
    });
}

[[noreturn]] void refuse_request(const std::string& what) {
    throw vmrt::error(errc::internal, {.message = "HTTP request not encodable: " + what});
}

}  // namespace

const std::string* response::header(std::string_view name) const {
    for (const auto& h : headers)
        if (iequals(h.name, name)) return &h.value;
    return nullptr;
}

std::string encode_request(std::string_view method, std::string_view target,
                           const std::optional<std::string>& json_body) {
    if (!is_token(method)) refuse_request("bad method " + printable_excerpt(method));
    if (target.empty() || target.front() != '/' || std::any_of(target.begin(), target.end(), [](char c) {
            return static_cast<unsigned char>(c) <= 0x20 || c == 0x7f;
        }))
        refuse_request("bad target " + printable_excerpt(target));

    std::string out;
    out.reserve(128 + (json_body ? json_body->size() : 0));
    out.append(method).append(" ").append(target).append(" HTTP/1.1\r\n");
    out.append("Host: localhost\r\nAccept: application/json\r\nConnection: keep-alive\r\n");
    if (json_body) {
        out.append("Content-Type: application/json\r\nContent-Length: ")
            .append(std::to_string(json_body->size()))
            .append("\r\n\r\n")
            .append(*json_body);
    } else if (method != "GET") {
        out.append("Content-Length: 0\r\n\r\n");
    } else {
        out.append("\r\n");
    }
    return out;
}

std::string printable_excerpt(std::string_view bytes, std::size_t max) {
    std::string out;
    for (std::size_t i = 0; i < bytes.size() && i < max; ++i) {
        auto c = static_cast<unsigned char>(bytes[i]);
        if (c == '\r')
            out += "\\r";
        else if (c == '\n')
            out += "\\n";
        else if (c == '\\')
            out += "\\\\";
        else if (c >= 0x20 && c < 0x7f)
            out += static_cast<char>(c);
        else {
            char hex[5];
            std::snprintf(hex, sizeof hex, "\\x%02x", c);
            out += hex;
        }
    }
    if (bytes.size() > max) out += "...";
    return out;
}

response_parser::response_parser(limits l) : limits_(l) {}

void response_parser::feed(std::string_view bytes) { buffer_.append(bytes); }

void response_parser::fail(const std::string& what, std::string_view excerpt) {
    failed_ = true;
    throw vmrt::error(errc::protocol_error, {.message = "malformed HTTP response: " + what + " in \"" +
                                                        printable_excerpt(excerpt) + "\""});
}

void response_parser::fail_header_too_long() {
    // The excerpt is cut from bytes every split has received by now, so the message is the same
    // however the input arrived.
    fail("header block longer than " + std::to_string(limits_.max_header_bytes) + " bytes",
         std::string_view(buffer_).substr(0, std::min<std::size_t>(limits_.max_header_bytes, 60)));
}

std::optional<response> response_parser::next() {
    if (failed_) throw vmrt::error(errc::protocol_error, {.message = "HTTP response parser failed earlier"});
    for (;;) {
        auto r = parse_one();
        if (!r) return std::nullopt;
        if (r->status >= 200) return r;
        // An interim 1xx response (100 Continue): skip it and read the final one.
    }
}

std::optional<response> response_parser::parse_one() {
    // Find the end of the header block. Only buffer_[0, header_end) is ever parsed as headers, so
    // the outcome is the same however the bytes arrived.
    const std::size_t from = scanned_ >= 3 ? scanned_ - 3 : 0;
    const auto end = buffer_.find("\r\n\r\n", from);
    if (end == std::string::npos) {
        scanned_ = buffer_.size();
        if (buffer_.size() >= limits_.max_header_bytes) fail_header_too_long();
        return std::nullopt;
    }
    const std::size_t header_bytes = end + 4;
    if (header_bytes > limits_.max_header_bytes) fail_header_too_long();

    const std::string_view block(buffer_.data(), end);
    response r;

    // Status line: HTTP-version SP 3DIGIT [SP reason-phrase]. The reason may be absent (CH).
    const auto line_end = std::min(block.find("\r\n"), block.size());
    const std::string_view status_line = block.substr(0, line_end);
    if (status_line.size() < 12 || status_line.substr(0, 7) != "HTTP/1." ||
        (status_line[7] != '0' && status_line[7] != '1') || status_line[8] != ' ')
        fail("bad status line", status_line);
    int code = 0;
    const auto digits = status_line.substr(9, 3);
    if (!std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
        fail("bad status code", status_line);
    std::from_chars(digits.data(), digits.data() + 3, code);
    if (code < 100) fail("bad status code", status_line);
    const auto rest = status_line.substr(12);
    if (!rest.empty()) {
        if (rest.front() != ' ' || !is_field_value(rest)) fail("bad reason phrase", status_line);
        r.reason = std::string(trim(rest));
    }
    r.status = code;

    // Header lines: name ":" OWS value OWS. No obs-fold, no bare LF.
    std::size_t at = line_end + 2;
    while (at < block.size()) {
        auto next_break = block.find("\r\n", at);
        if (next_break == std::string_view::npos) next_break = block.size();
        const auto line = block.substr(at, next_break - at);
        at = next_break + 2;
        const auto colon = line.find(':');
        if (colon == std::string_view::npos) fail("header line without a colon", line);
        const auto name = line.substr(0, colon);
        const auto value = line.substr(colon + 1);
        if (!is_token(name)) fail("bad header name", line);
        if (!is_field_value(value)) fail("bad header value", line);
        r.headers.push_back({std::string(name), std::string(trim(value))});
    }

    // Framing: Content-Length only (see the top of the header file).
    std::optional<std::size_t> length;
    for (const auto& h : r.headers) {
        if (iequals(h.name, "Transfer-Encoding")) fail("Transfer-Encoding is not supported", h.value);
        if (!iequals(h.name, "Content-Length")) continue;
        std::size_t n = 0;
        const auto* first = h.value.data();
        const auto* last = first + h.value.size();
        auto [ptr, ec] = std::from_chars(first, last, n);
        if (h.value.empty() || ec != std::errc() || ptr != last ||
            !std::isdigit(static_cast<unsigned char>(*first)))
            fail("bad Content-Length", h.value);
        if (length && *length != n) fail("conflicting Content-Length headers", h.value);
        length = n;
    }
    const bool bodiless = code < 200 || code == 204 || code == 304;
    const std::size_t body_bytes = bodiless ? 0 : length.value_or(0);
    if (body_bytes > limits_.max_body_bytes)
        fail("body of " + std::to_string(body_bytes) + " bytes exceeds the limit of " +
                 std::to_string(limits_.max_body_bytes),
             status_line);
    if (buffer_.size() - header_bytes < body_bytes) return std::nullopt;  // the body is still arriving

    r.body = buffer_.substr(header_bytes, body_bytes);
    buffer_.erase(0, header_bytes + body_bytes);
    scanned_ = 0;
    return r;
}

}  // namespace vmrt::io::http1
