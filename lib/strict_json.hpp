// Strict JSON parsing for documents people write by hand (VM specs).
#pragma once

#include <boost/json/value.hpp>
#include <boost/system/result.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace vmrt::detail {

/// Parses RFC 8259 JSON (no comments, valid UTF-8, nothing after the document). On error, the
/// message says where: "invalid JSON at line 3, column 13 (byte 27): syntax error".
boost::system::result<boost::json::value, std::string> parse_json_strictly(std::string_view text);

/// The path ("networks[0].mac") of the first key repeated within one object of a valid document.
std::optional<std::string> first_duplicate_key(std::string_view text);

/// Paths as used in error messages: child_path("a", "b") == "a.b", element_path("a", 2) == "a[2]".
std::string child_path(const std::string& parent, std::string_view key);
std::string element_path(const std::string& parent, std::size_t index);

}  // namespace vmrt::detail
