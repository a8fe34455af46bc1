// HTTP/1.1 for talking to a local REST server (Cloud Hypervisor's API socket), as a sans-I/O
// layer: encode_request() builds the bytes of one request, response_parser turns the bytes read
// back into responses, whatever way the reads split them.
//
// What the parser accepts follows what CH's server (micro_http) sends and what ch-remote reads
// (shared/reference/cloud-hypervisor.md §2.2, §2.4, §2.6):
//  * the status line `HTTP/1.x NNN`, with or without a space and a reason phrase (CH sends
//    `HTTP/1.1 204 ` + CRLF: a space and no reason);
//  * header names are case-insensitive; a header line without a colon is malformed;
//  * the body length comes only from Content-Length. Without it the response has no body (CH
//    leaves it out on 204 and 100; ch-remote stops at the headers too). 1xx, 204 and 304 never
//    have a body. Transfer-Encoding is refused: CH never sends it and it cannot be framed here;
//  * interim 1xx responses are skipped (CH sends `HTTP/1.1 100` only after `Expect:`).
//
// Every malformed input is a vmrt::error with errc::protocol_error and a printable excerpt of the
// offending bytes; after one the parser stays failed. The verdict does not depend on the split:
// headers are parsed only once the whole header block has arrived, and the size limits are
// checked on the same totals.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vmrt::io::http1 {

struct header_field {
    std::string name;   ///< as received
    std::string value;  ///< without surrounding whitespace
};

struct response {
    int status = 0;
    std::string reason;  ///< may be empty (CH sends none)
    std::vector<header_field> headers;
    std::string body;

    /// The first header of that name (case-insensitive), or nullptr.
    const std::string* header(std::string_view name) const;
};

struct limits {
    std::size_t max_header_bytes = 16 * 1024;      ///< status line + headers + the blank line
    std::size_t max_body_bytes = 8 * 1024 * 1024;  ///< CH's own request limit is 4 MiB; replies are smaller
};

/// The bytes of one request. `json_body` set: `Content-Type: application/json` and its
/// Content-Length. Without a body a PUT carries `Content-Length: 0` (CH reads it as "no body",
/// §2.1) and a GET no Content-Length. Always `Host: localhost` and `Connection: keep-alive`.
/// A method that is not a token or a target that does not start with '/' or contains
/// whitespace/control bytes is refused (errc::internal: callers pass constants).
std::string encode_request(std::string_view method, std::string_view target,
                           const std::optional<std::string>& json_body = std::nullopt);

/// Up to `max` bytes of `bytes`, with anything not printable ASCII written as \xNN (\r \n as
/// \r \n): safe to put in an error message.
std::string printable_excerpt(std::string_view bytes, std::size_t max = 120);

class response_parser {
public:
    explicit response_parser(limits l = {});

    /// Buffers `bytes` (parsing happens in next()).
    void feed(std::string_view bytes);
    /// The next complete final response, if one has arrived; throws if the buffered bytes are
    /// malformed. Bytes after it stay buffered for the next call.
    std::optional<response> next();
    /// Bytes received and not yet part of a returned response.
    std::size_t buffered() const noexcept { return buffer_.size(); }
    /// True once a malformed input was seen.
    bool failed() const noexcept { return failed_; }

private:
    [[noreturn]] void fail(const std::string& what, std::string_view excerpt);
    [[noreturn]] void fail_header_too_long();
    std::optional<response> parse_one();

    limits limits_;
    std::string buffer_;
    std::size_t scanned_ = 0;  ///< bytes of buffer_ already searched for the header terminator
    bool failed_ = false;
};

}  // namespace vmrt::io::http1
