// A small YAML emitter for documents that vmrt generates (cloud-init seeds): a value tree written
// in block style, where no string can change the document's structure.
//
// The rules that make it safe:
//  * every string scalar is double-quoted, with \" \\ and every character a YAML 1.1 or 1.2
//    reader might treat as a line break, or refuse raw (C0/C1 controls, DEL, U+2028, U+2029,
//    U+FEFF, U+FFFE, U+FFFF) written as an escape. Inside double quotes, ": ", " #", "- ", "&", "*",
//    "!", "{", "[", "---" and friends are plain characters, and "yes", "null", "0x1F" or "1e3"
//    stay strings (a quoted scalar is never resolved to another type);
//  * booleans and integers are separate node types, written as `true`/`false` and decimal digits;
//  * mapping keys are written plain only when they are lower-case identifiers
//    ([a-z_][a-z0-9_-]*) that no YAML 1.1 reader takes for a boolean or null (y, n, yes, no, on,
//    off, true, false, null); any other key is double-quoted like a value.
// Strings must be valid UTF-8 (a YAML stream is Unicode text): emit() throws
// std::invalid_argument otherwise. Callers validate earlier and report the offending field.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace vmrt::image::yaml {

struct node;
using sequence = std::vector<node>;
using mapping = std::vector<std::pair<std::string, node>>;  // in emission order

struct node {
    std::variant<std::string, bool, std::int64_t, sequence, mapping> value;

    node(std::string s) : value(std::move(s)) {}
    node(const char* s) : value(std::string(s)) {}
    node(bool b) : value(b) {}
    node(std::int64_t i) : value(i) {}
    node(sequence s) : value(std::move(s)) {}
    node(mapping m) : value(std::move(m)) {}
};

/// True if `s` is well-formed UTF-8 (no overlong forms, no surrogates, nothing above U+10FFFF).
bool is_valid_utf8(std::string_view s) noexcept;

/// `s` as a double-quoted YAML scalar (with the quotes). Throws std::invalid_argument if `s` is
/// not valid UTF-8.
std::string double_quoted(std::string_view s);

/// The document in block style, ending with a newline. An empty mapping or sequence is written
/// in flow style ("{}", "[]").
std::string emit(const node& root);

}  // namespace vmrt::image::yaml
