#include <vmrt/io/http_range.hpp>

#include <charconv>
#include <limits>

namespace vmrt::io {
namespace {

/// Consumes a run of decimal digits from the front of `text`; nothing if there is none, or if
/// the number does not fit in 63 bits (file offsets are signed).
std::optional<std::uint64_t> take_number(std::string_view& text) {
    std::size_t n = 0;
    while (n < text.size() && text[n] >= '0' && text[n] <= '9') ++n;
    if (n == 0) return std::nullopt;
    std::uint64_t value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + n, value);
    if (ec != std::errc{} || end != text.data() + n ||
        value > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
        return std::nullopt;
    text.remove_prefix(n);
    return value;
}

bool take(std::string_view& text, char c) {
    if (text.empty() || text.front() != c) return false;
    text.remove_prefix(1);
    return true;
}

bool iequals_bytes(std::string_view unit) {
    constexpr std::string_view bytes = "bytes";
    if (unit.size() != bytes.size()) return false;
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        char c = unit[i];
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
        if (c != bytes[i]) return false;
    }
    return true;
}

}  // namespace

std::optional<content_range> parse_content_range(std::string_view value) {
    // Optional whitespace around the field value is not part of it (RFC 9110 §5.5).
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
    auto space = value.find(' ');
    if (space == std::string_view::npos || !iequals_bytes(value.substr(0, space))) return std::nullopt;
    value.remove_prefix(space + 1);

    content_range out;
    if (!take(value, '*')) {
        out.first = take_number(value);
        if (!out.first || !take(value, '-')) return std::nullopt;
        out.last = take_number(value);
        if (!out.last || *out.last < *out.first) return std::nullopt;
    }
    if (!take(value, '/')) return std::nullopt;
    if (!take(value, '*')) {
        out.complete_length = take_number(value);
        if (!out.complete_length) return std::nullopt;
        if (out.last && *out.last >= *out.complete_length) return std::nullopt;
    } else if (!out.first) {
        return std::nullopt;  // "*/*" says nothing at all
    }
    if (!value.empty()) return std::nullopt;
    return out;
}

std::string range_from(std::uint64_t offset) { return "bytes=" + std::to_string(offset) + "-"; }

}  // namespace vmrt::io
