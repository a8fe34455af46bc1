#include "image/yaml_emitter.hpp"

#include <array>
#include <optional>
#include <stdexcept>

namespace vmrt::image::yaml {
namespace {

// Decodes the code point at the front of `s` and removes its bytes; nothing if they are not
// well-formed UTF-8 (RFC 3629: shortest form, no surrogates, at most U+10FFFF).
std::optional<char32_t> next_code_point(std::string_view& s) noexcept {
    const auto byte = [&](std::size_t i) {
        return static_cast<unsigned char>(s[i]);
    };
    const unsigned char lead = byte(0);
    std::size_t length;
    char32_t cp;
    if (lead < 0x80) {
        s.remove_prefix(1);
        return lead;
    } else if (lead >= 0xC2 && lead <= 0xDF) {
        length = 2, cp = lead & 0x1F;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
        length = 3, cp = lead & 0x0F;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
        length = 4, cp = lead & 0x07;
    } else {
        return std::nullopt;
    }
    if (s.size() < length) return std::nullopt;
    for (std::size_t i = 1; i < length; ++i) {
        if ((byte(i) & 0xC0) != 0x80) return std::nullopt;
        cp = (cp << 6) | (byte(i) & 0x3F);
    }
    constexpr std::array<char32_t, 5> min_for_length{0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_for_length[length] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return std::nullopt;
    s.remove_prefix(length);
    return cp;
}

void append_hex(std::string& out, char32_t value, int digits) {
    constexpr std::string_view hex = "0123456789ABCDEF";
    for (int shift = (digits - 1) * 4; shift >= 0; shift -= 4) out += hex[(value >> shift) & 0xF];
}

// Characters written as escapes: everything YAML 1.1 (PyYAML, which cloud-init uses) or 1.2 would
// read as a line break (NEL, LS, PS), would refuse in a stream (C0 and C1 controls, DEL, U+FFFE,
// U+FFFF) or might drop (a byte order mark). Tab and newline too, so a scalar stays on one line.
bool needs_escape(char32_t cp) {
    return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F) || cp == 0x2028 || cp == 0x2029 || cp == 0xFEFF ||
           cp == 0xFFFE || cp == 0xFFFF;
}

void append_escape(std::string& out, char32_t cp) {
    switch (cp) {
    case '\0':
        out += "\\0";
        return;
    case '\t':
        out += "\\t";
        return;
    case '\n':
        out += "\\n";
        return;
    case '\r':
        out += "\\r";
        return;
    default:
        break;
    }
    if (cp <= 0xFF) {
        out += "\\x";
        append_hex(out, cp, 2);
    } else {
        out += "\\u";
        append_hex(out, cp, 4);
    }
}

bool is_reserved_word(std::string_view key) {
    // YAML 1.1 resolves these plain scalars to booleans or null (lower-case forms; upper-case
    // letters never reach here as plain keys).
    constexpr std::array<std::string_view, 9> words{"y",   "n",    "yes",   "no",  "on",
                                                    "off", "true", "false", "null"};
    for (auto w : words)
        if (key == w) return true;
    return false;
}

bool is_plain_key(std::string_view key) {
    if (key.empty() || is_reserved_word(key)) return false;
    if (!((key[0] >= 'a' && key[0] <= 'z') || key[0] == '_')) return false;
    for (char c : key)
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) return false;
    return true;
}

// YAML readers refuse implicit keys longer than 1024 characters; longer keys use the explicit
// "? key" form. The limit below counts bytes of the quoted form, so it is conservative.
constexpr std::size_t max_implicit_key = 512;

class writer {
public:
    std::string take() && { return std::move(out_); }

    void root(const node& n) {
        if (const auto* m = std::get_if<mapping>(&n.value); m && !m->empty())
            return write_mapping(*m, 0, false);
        if (const auto* s = std::get_if<sequence>(&n.value); s && !s->empty())
            return write_sequence(*s, 0, false);
        out_ += inline_text(n);
        out_ += '\n';
    }

private:
    // Scalars and empty collections: everything that fits on the current line.
    static std::optional<std::string> try_inline(const node& n) {
        if (const auto* s = std::get_if<std::string>(&n.value)) return double_quoted(*s);
        if (const auto* b = std::get_if<bool>(&n.value)) return *b ? "true" : "false";
        if (const auto* i = std::get_if<std::int64_t>(&n.value)) return std::to_string(*i);
        if (const auto* s = std::get_if<sequence>(&n.value); s && s->empty()) return "[]";
        if (const auto* m = std::get_if<mapping>(&n.value); m && m->empty()) return "{}";
        return std::nullopt;
    }
    static std::string inline_text(const node& n) { return *try_inline(n); }

    void indent(int width) { out_.append(static_cast<std::size_t>(width), ' '); }

    // Writes what follows "key:" or "- ": a scalar on the same line, a collection below, or (for
    // items of a sequence, `compact`) starting on the same line.
    void write_value(const node& n, int child_indent, bool compact) {
        if (auto text = try_inline(n)) {
            out_ += ' ';
            out_ += *text;
            out_ += '\n';
        } else if (const auto* m = std::get_if<mapping>(&n.value)) {
            out_ += compact ? " " : "\n";
            write_mapping(*m, child_indent, compact);
        } else {
            out_ += compact ? " " : "\n";
            write_sequence(std::get<sequence>(n.value), child_indent, compact);
        }
    }

    void write_mapping(const mapping& m, int level, bool first_on_current_line) {
        bool first = true;
        for (const auto& [key, value] : m) {
            if (!(first && first_on_current_line)) indent(level);
            first = false;
            const std::string key_text = is_plain_key(key) ? key : double_quoted(key);
            if (key_text.size() <= max_implicit_key) {
                out_ += key_text;
                out_ += ':';
            } else {
                out_ += "? ";
                out_ += key_text;
                out_ += '\n';
                indent(level);
                out_ += ':';
            }
            write_value(value, level + 2, false);
        }
    }

    void write_sequence(const sequence& s, int level, bool first_on_current_line) {
        bool first = true;
        for (const auto& item : s) {
            if (!(first && first_on_current_line)) indent(level);
            first = false;
            out_ += '-';
            write_value(item, level + 2, true);
        }
    }

    std::string out_;
};

}  // namespace

bool is_valid_utf8(std::string_view s) noexcept {
    while (!s.empty())
        if (!next_code_point(s)) return false;
    return true;
}

std::string double_quoted(std::string_view s) {
    std::string out;
    out.reserve(s.size() + 2);
    out += '"';
    while (!s.empty()) {
        // Runs of printable ASCII other than '"' and '\\' are copied as they are, in one append.
        std::size_t run = 0;
        while (run < s.size() && s[run] >= 0x20 && s[run] < 0x7F && s[run] != '"' && s[run] != '\\') ++run;
        out.append(s.substr(0, run));
        s.remove_prefix(run);
        if (s.empty()) break;
        const std::string_view rest = s;
        const auto cp = next_code_point(s);
        if (!cp) throw std::invalid_argument("YAML scalar is not valid UTF-8");
        if (*cp == '"' || *cp == '\\') {
            out += '\\';
            out += static_cast<char>(*cp);
        } else if (needs_escape(*cp)) {
            append_escape(out, *cp);
        } else {
            out.append(rest.substr(0, rest.size() - s.size()));
        }
    }
    out += '"';
    return out;
}

std::string emit(const node& root) {
    writer w;
    w.root(root);
    return std::move(w).take();
}

}  // namespace vmrt::image::yaml
