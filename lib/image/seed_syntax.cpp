#include "image/seed_syntax.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <string>

namespace vmrt::image::syntax {
namespace {

bool is_lower(char c) { return c >= 'a' && c <= 'z'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alnum(char c) { return is_lower(c) || is_digit(c) || (c >= 'A' && c <= 'Z'); }
bool is_hex(char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

bool is_label(std::string_view label) {
    return !label.empty() && label.size() <= 63 && label.front() != '-' && label.back() != '-' &&
           std::all_of(label.begin(), label.end(), [](char c) { return is_alnum(c) || c == '-'; });
}

// inet_pton for AF_INET or AF_INET6 (a copy: inet_pton needs a NUL-terminated string).
bool parses_as(int family, std::string_view s) {
    unsigned char buffer[16];
    const std::string text(s);
    return text.find('\0') == std::string::npos && ::inet_pton(family, text.c_str(), buffer) == 1;
}

}  // namespace

bool is_host_name(std::string_view s) noexcept {
    if (s.empty() || s.size() > 253) return false;
    while (true) {
        const auto dot = s.find('.');
        if (!is_label(s.substr(0, dot))) return false;
        if (dot == std::string_view::npos) return true;
        s.remove_prefix(dot + 1);
    }
}

bool is_user_name(std::string_view s) noexcept {
    return !s.empty() && s.size() <= 32 && (is_lower(s[0]) || s[0] == '_') &&
           std::all_of(s.begin(), s.end(),
                       [](char c) { return is_lower(c) || is_digit(c) || c == '_' || c == '-'; });
}

bool is_instance_id(std::string_view s) noexcept {
    return !s.empty() && s.size() <= 128 && s != "." && s != ".." &&
           std::all_of(s.begin(), s.end(),
                       [](char c) { return is_alnum(c) || c == '.' || c == '_' || c == ':' || c == '-'; });
}

bool is_ip_address(std::string_view s) noexcept {
    try {
        return parses_as(AF_INET, s) || parses_as(AF_INET6, s);
    } catch (...) {  // std::bad_alloc from the copy
        return false;
    }
}

bool is_ip_prefix(std::string_view s) noexcept {
    const auto slash = s.rfind('/');
    if (slash == std::string_view::npos) return false;
    const auto address = s.substr(0, slash);
    const auto prefix = s.substr(slash + 1);
    if (prefix.empty() || prefix.size() > 3 || !std::all_of(prefix.begin(), prefix.end(), is_digit) ||
        (prefix.size() > 1 && prefix[0] == '0'))
        return false;
    int bits = 0;
    for (char c : prefix) bits = bits * 10 + (c - '0');
    try {
        if (parses_as(AF_INET, address)) return bits <= 32;
        if (parses_as(AF_INET6, address)) return bits <= 128;
    } catch (...) {
    }
    return false;
}

bool is_mac_address(std::string_view s) noexcept {
    if (s.size() != 17) return false;
    for (std::size_t i = 0; i < s.size(); ++i)
        if (i % 3 == 2 ? s[i] != ':' : !is_hex(s[i])) return false;
    return true;
}

bool is_interface_name(std::string_view s) noexcept {
    return !s.empty() && s.size() <= 15 && s != "." && s != ".." &&
           std::all_of(s.begin(), s.end(),
                       [](char c) { return is_alnum(c) || c == '_' || c == '.' || c == '-'; });
}

bool is_single_line(std::string_view s) noexcept {
    return s.find_first_of(std::string_view("\n\r\0", 3)) == std::string_view::npos;
}

}  // namespace vmrt::image::syntax
