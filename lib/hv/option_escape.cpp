#include "hv/option_escape.hpp"

#include <cstdint>

namespace vmrt::hv {
namespace {

// Characters no option value may contain, whatever the VMM: NUL ends a C string in argv, and a
// newline has no business in a path or a name and corrupts the logs the command line goes to.
std::optional<std::string> common_problem(std::string_view value) {
    if (value.find('\0') != std::string_view::npos) return "contains a NUL character";
    if (value.find_first_of("\n\r") != std::string_view::npos) return "contains a line break";
    return std::nullopt;
}

// Decodes the UTF-8 sequence at value[at], advancing `at`; nullopt if it is malformed
// (truncated, overlong, a surrogate or beyond U+10FFFF).
std::optional<char32_t> decode_utf8(std::string_view value, std::size_t& at) {
    const auto byte = [&](std::size_t i) {
        return static_cast<unsigned char>(value[i]);
    };
    const unsigned char lead = byte(at);
    std::size_t length = lead < 0x80             ? 1
                         : (lead & 0xe0) == 0xc0 ? 2
                         : (lead & 0xf0) == 0xe0 ? 3
                         : (lead & 0xf8) == 0xf0 ? 4
                                                 : 0;
    if (length == 0 || at + length > value.size()) return std::nullopt;
    char32_t cp = length == 1 ? lead : lead & (0x7f >> length);
    for (std::size_t i = 1; i < length; ++i) {
        if ((byte(at + i) & 0xc0) != 0x80) return std::nullopt;
        cp = (cp << 6) | (byte(at + i) & 0x3f);
    }
    static constexpr char32_t min_for_length[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_for_length[length] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return std::nullopt;
    at += length;
    return cp;
}

// Rust's char::is_whitespace (the Unicode White_Space property), which str::trim() uses.
bool is_rust_whitespace(char32_t c) {
    return (c >= 0x09 && c <= 0x0d) || c == 0x20 || c == 0x85 || c == 0xa0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f || c == 0x205f ||
           c == 0x3000;
}

// Cloud Hypervisor takes its arguments as Rust Strings (valid UTF-8 only) and trims every value,
// so the first and last code points must not be whitespace.
std::optional<std::string> ch_text_problem(std::string_view value) {
    std::optional<char32_t> first, last;
    for (std::size_t at = 0; at < value.size();) {
        const auto cp = decode_utf8(value, at);
        if (!cp) return "is not valid UTF-8";
        if (!first) first = cp;
        last = cp;
    }
    if (first && (is_rust_whitespace(*first) || is_rust_whitespace(*last)))
        return "starts or ends with whitespace, which Cloud Hypervisor strips";
    return std::nullopt;
}

// Cloud Hypervisor counts '[' and ']' everywhere (even inside quotes) to protect the commas of
// list values, and rejects the whole option if they do not balance.
std::optional<std::string> ch_bracket_problem(std::string_view value) {
    long depth = 0;
    for (char c : value) {
        if (c == '[') ++depth;
        if (c == ']' && --depth < 0) return "has a ']' without a matching '['";
    }
    if (depth != 0) return "has a '[' without a matching ']'";
    return std::nullopt;
}

// The value as it can be shown in a message: control characters as \xNN.
std::string printable(std::string_view value) {
    static constexpr std::string_view hex = "0123456789abcdef";
    std::string out;
    for (char c : value) {
        const auto byte = static_cast<unsigned char>(c);
        if (byte < 0x20 || byte == 0x7f) {
            out += "\\x";
            out += hex[byte >> 4];
            out += hex[byte & 0x0f];
        } else {
            out += c;
        }
    }
    return out;
}

}  // namespace

std::optional<std::string> qemu_option_value_problem(std::string_view value) { return common_problem(value); }

std::string qemu_option_value(std::string_view value) {
    if (auto problem = qemu_option_value_problem(value)) {
        diagnostics diag;
        diag.message = "cannot pass \"" + printable(value) + "\" to QEMU: it " + *problem;
        throw error(errc::invalid_spec, std::move(diag));
    }
    std::string out;
    out.reserve(value.size());
    for (char c : value) {
        out += c;
        if (c == ',') out += ',';  // QEMU's escape for a literal comma
    }
    return out;
}

std::optional<std::string> ch_option_value_problem(std::string_view value) {
    if (auto problem = common_problem(value)) return problem;
    // The parser toggles "in quotes" at every '"' and drops it, with no escape for a literal one.
    if (value.find('"') != std::string_view::npos)
        return "contains a '\"', which Cloud Hypervisor cannot represent";
    if (auto problem = ch_bracket_problem(value)) return problem;
    return ch_text_problem(value);
}

boost::system::result<std::string> ch_option_value(std::string_view value) {
    if (ch_option_value_problem(value)) return error_code(errc::invalid_spec);
    // '=' would be safe (only the first '=' of an option splits), but quoting it too keeps the
    // rule simple to state and to check in a command line.
    if (value.find_first_of(",=") == std::string_view::npos) return std::string(value);
    return "\"" + std::string(value) + "\"";
}

}  // namespace vmrt::hv
