// Byte ranges for resumed downloads (sans-I/O): the Range header we send and the Content-Range
// header a server answers with (RFC 9110 §14.4), parsed strictly. A resume is only trusted when
// the server's range starts exactly where our partial file ends, so every field is checked.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace vmrt::io {

/// A parsed Content-Range. "bytes 0-99/1000" sets all three; "bytes 0-99/*" leaves the complete
/// length unknown; "bytes */1000" (sent with 416 Range Not Satisfiable) sets only complete_length.
struct content_range {
    std::optional<std::uint64_t> first;  ///< first byte position (inclusive)
    std::optional<std::uint64_t> last;   ///< last byte position (inclusive)
    std::optional<std::uint64_t> complete_length;
    friend bool operator==(const content_range&, const content_range&) = default;
};

/// Parses a Content-Range value; nothing if it is malformed or inconsistent (last < first,
/// last >= complete length, numbers beyond 2^63, another unit than "bytes", "*/*").
std::optional<content_range> parse_content_range(std::string_view value);

/// The Range value asking for everything from `offset` on: "bytes=OFFSET-".
std::string range_from(std::uint64_t offset);

}  // namespace vmrt::io
