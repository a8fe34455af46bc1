// Small text helpers shared by the OCI parsers (private to lib/image).
#pragma once

#include <vmrt/error.hpp>

#include <string>
#include <string_view>

namespace vmrt::image::detail {

/// `text` in double quotes, fit for a diagnostic: control and non-ASCII bytes as \xNN, quotes
/// and backslashes escaped, cut after `max` bytes with "..." so hostile input cannot flood logs.
std::string quoted(std::string_view text, std::size_t max = 160);

/// Throws vmrt::error(code) with `message` as its diagnostics message.
[[noreturn]] void fail(errc code, std::string message, std::string field = {});

inline char ascii_lower(char c) noexcept {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}
std::string ascii_lowercase(std::string_view text);
bool iequals(std::string_view a, std::string_view b) noexcept;

inline bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }
inline bool is_lower_alnum(char c) noexcept { return is_digit(c) || (c >= 'a' && c <= 'z'); }
inline bool is_alpha(char c) noexcept { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
inline bool is_alnum(char c) noexcept { return is_digit(c) || is_alpha(c); }

}  // namespace vmrt::image::detail
