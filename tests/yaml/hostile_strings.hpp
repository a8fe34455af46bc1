// Generators of strings meant to break YAML: fragments with YAML syntax (": ", " #", "- ", "&a",
// "*a", "!!int", "{", "[", "|", ">", "%", "@", "`", "---", "..."), line breaks of every kind
// (including NEL, LS, PS), quotes and backslashes, control characters, non-ASCII text, and whole
// values that YAML 1.1 resolves to other types ("yes", "Off", "~", "null", "0x1F", "1e3",
// "12:30:00", "2001-12-14", ".inf"). Deterministic for a given seed.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace vmrt::test::yaml {

/// Plain-looking tokens that YAML 1.1 (PyYAML, cloud-init) resolves to booleans, null, numbers,
/// dates or merge keys; many are also valid host, user, interface names or instance ids.
inline const std::vector<std::string>& retypable_tokens() {
    static const std::vector<std::string> tokens{"yes",
                                                 "no",
                                                 "y",
                                                 "n",
                                                 "Y",
                                                 "N",
                                                 "on",
                                                 "off",
                                                 "On",
                                                 "OFF",
                                                 "true",
                                                 "false",
                                                 "True",
                                                 "FALSE",
                                                 "null",
                                                 "Null",
                                                 "NULL",
                                                 "~",
                                                 "0",
                                                 "1",
                                                 "-1",
                                                 "+1",
                                                 "007",
                                                 "012",
                                                 "0o17",
                                                 "0x1F",
                                                 "0b101",
                                                 "1_000",
                                                 "1e3",
                                                 "1.5",
                                                 "-.5",
                                                 ".inf",
                                                 "-.Inf",
                                                 ".nan",
                                                 ".NaN",
                                                 "12:30:00",
                                                 "190:20:30",
                                                 "1:30",
                                                 "2001-12-14",
                                                 "2001-12-14t21:59:43.10-05:00",
                                                 "<<",
                                                 "=",
                                                 "10:20:30:40:50:00",
                                                 "0.0",
                                                 "1.",
                                                 "123456789012345678901234567890"};
    return tokens;
}

class hostile_generator {
public:
    explicit hostile_generator(std::uint64_t seed) : rng_(seed) {}

    std::size_t below(std::size_t n) { return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng_); }
    bool chance(double p) { return std::bernoulli_distribution(p)(rng_); }
    std::mt19937_64& rng() { return rng_; }

    /// Any valid UTF-8 string (NUL included), often empty, whitespace-only or a retypable token.
    std::string text() {
        switch (below(10)) {
        case 0:
            return whole_values()[below(whole_values().size())];
        case 1:
            return retypable_tokens()[below(retypable_tokens().size())];
        default:
            break;
        }
        std::string s;
        if (chance(0.3)) s += leaders()[below(leaders().size())];
        const std::size_t parts = 1 + below(8);
        for (std::size_t i = 0; i < parts; ++i) s += chance(0.15) ? random_code_point() : fragment();
        return s;
    }

    /// text() without NUL (argv elements, paths).
    std::string text_without_nul() { return remove_chars(text(), std::string(1, '\0')); }

    /// text() without line feed, carriage return or NUL, and not empty (authorized_keys lines,
    /// sudoers rules, package names).
    std::string line() {
        auto s = remove_chars(text(), std::string("\n\r\0", 3));
        return s.empty() ? ": #" : s;
    }

    /// Bytes that are not valid UTF-8 (for file contents).
    std::string invalid_utf8() {
        static const std::vector<std::string> bad{"\xFF",     "\xC0\x80", "\xED\xA0\x80", "\xF4\x90\x80\x80",
                                                  "\xE2\x82", "\x80",     "\xFE\xFF"};
        auto s = text();
        s.insert(below(s.size() + 1), bad[below(bad.size())]);
        return s;
    }

    /// A token from retypable_tokens() that satisfies `accept`, or `fallback` if none is drawn.
    template <class Predicate>
    std::string token(Predicate accept, const std::string& fallback) {
        for (int attempt = 0; attempt < 20; ++attempt) {
            const auto& t = retypable_tokens()[below(retypable_tokens().size())];
            if (accept(t)) return t;
        }
        return fallback;
    }

private:
    static const std::vector<std::string>& fragments() {
        static const std::vector<std::string> f{": ",
                                                ":",
                                                " #",
                                                "#",
                                                "# comment",
                                                "\n",
                                                "\r\n",
                                                "\r",
                                                "\n\n",
                                                "\"",
                                                "'",
                                                "''",
                                                "\\",
                                                "\\n",
                                                "\\\"",
                                                "- ",
                                                "-",
                                                "* ",
                                                "*a",
                                                "&a ",
                                                "&",
                                                "!",
                                                "!!str ",
                                                "!!int ",
                                                "!<tag:yaml.org,2002:int> ",
                                                "{",
                                                "}",
                                                "{a: b}",
                                                "[",
                                                "]",
                                                "[1, 2]",
                                                "|",
                                                "|-",
                                                ">",
                                                ">+",
                                                "%",
                                                "%YAML 1.1",
                                                "@",
                                                "`",
                                                "\t",
                                                " ",
                                                "   ",
                                                "---",
                                                "...",
                                                "--- ",
                                                ",",
                                                "?",
                                                "? ",
                                                "=",
                                                "<<: *a",
                                                "a",
                                                "key: value",
                                                "x",
                                                "0",
                                                "yes",
                                                "null",
                                                "~",
                                                "\xC3\xA9",
                                                "\xE2\x82\xAC",
                                                "\xF0\x9F\x98\x80",
                                                "\xC2\x85",
                                                "\xE2\x80\xA8",
                                                "\xE2\x80\xA9",
                                                "\xEF\xBB\xBF",
                                                "\xC2\xA0",
                                                std::string(1, '\0'),
                                                "\x01",
                                                "\x1b[31m",
                                                "\x7f",
                                                "\xEF\xBF\xBE",
                                                "$(reboot)",
                                                "; rm -rf /",
                                                "${HOME}",
                                                "%{x}"};
        return f;
    }
    // Characters that start a YAML node when they come first in a plain scalar.
    static const std::vector<std::string>& leaders() {
        static const std::vector<std::string> l{"-", "*", "&", "!", "{", "[",  "|", ">",  "%",   "@",  "`",
                                                "?", ":", "#", ",", "'", "\"", " ", "\t", "---", "..."};
        return l;
    }
    static const std::vector<std::string>& whole_values() {
        static const std::vector<std::string> w{"",  " ",  "  ", "\t", "\n", " \n ", "---", "...",
                                                "-", "- ", "?",  ":",  "#",  "&",    "*",   "!",
                                                "|", ">",  "{}", "[]", "''", "\"\""};
        return w;
    }

    std::string fragment() { return fragments()[below(fragments().size())]; }

    // A random Unicode scalar value (no surrogates), UTF-8 encoded, biased towards the edges.
    std::string random_code_point() {
        static const std::vector<std::pair<char32_t, char32_t>> ranges{{0x00, 0x7F},     {0x80, 0x9F},
                                                                       {0xA0, 0x7FF},    {0x800, 0xD7FF},
                                                                       {0xE000, 0xFFFF}, {0x10000, 0x10FFFF}};
        const auto [lo, hi] = ranges[below(ranges.size())];
        const char32_t cp = lo + static_cast<char32_t>(below(hi - lo + 1));
        std::string out;
        if (cp < 0x80) {
            out += static_cast<char>(cp);
        } else if (cp < 0x800) {
            out += static_cast<char>(0xC0 | (cp >> 6));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            out += static_cast<char>(0xE0 | (cp >> 12));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        } else {
            out += static_cast<char>(0xF0 | (cp >> 18));
            out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        }
        return out;
    }

    static std::string remove_chars(std::string s, const std::string& chars) {
        std::string out;
        for (char c : s)
            if (chars.find(c) == std::string::npos) out += c;
        return out;
    }

    std::mt19937_64 rng_;
};

}  // namespace vmrt::test::yaml
