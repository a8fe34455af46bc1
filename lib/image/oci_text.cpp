// Text helpers shared by the OCI parsers: quoting untrusted input for diagnostics.
#include "image/oci_text.hpp"

#include <cstdio>

namespace vmrt::image::detail {

std::string quoted(std::string_view text, std::size_t max) {
    std::string out = "\"";
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (i == max) {
            out += "...";
            break;
        }
        const auto c = static_cast<unsigned char>(text[i]);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c < 0x20 || c >= 0x7f) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", c);
            out += buf;
        } else {
            out += static_cast<char>(c);
        }
    }
    out += '"';
    return out;
}

void fail(errc code, std::string message, std::string field) {
    diagnostics diag;
    diag.message = std::move(message);
    diag.field = std::move(field);
    throw error(make_error_code(code), std::move(diag));
}

std::string ascii_lowercase(std::string_view text) {
    std::string out(text);
    for (char& c : out) c = ascii_lower(c);
    return out;
}

bool iequals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
    return true;
}

}  // namespace vmrt::image::detail
