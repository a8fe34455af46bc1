// The YAML emitter of cloud-init seeds: exact output for scalars (quoting and escapes), block
// layout of nested collections, key quoting, and refusal of invalid UTF-8. The round trip through
// a real YAML parser is tests/yaml/yaml_roundtrip_test.cpp.
#include "image/yaml_emitter.hpp"

#include <boost/test/unit_test.hpp>

#include <stdexcept>
#include <string>

namespace {

using namespace vmrt::image::yaml;
using namespace std::string_literals;

BOOST_AUTO_TEST_SUITE(yaml_emitter_test)

BOOST_AUTO_TEST_CASE(plain_strings_are_double_quoted) {
    BOOST_TEST(double_quoted("abc") == "\"abc\"");
    BOOST_TEST(double_quoted("") == "\"\"");
    BOOST_TEST(double_quoted("yes") == "\"yes\"");
    BOOST_TEST(double_quoted("a: b #c - [d] {e} &f *g !h |i >j %k @l `m") ==
               "\"a: b #c - [d] {e} &f *g !h |i >j %k @l `m\"");
    BOOST_TEST(double_quoted("  lead and trail  ") == "\"  lead and trail  \"");
}

BOOST_AUTO_TEST_CASE(quotes_backslashes_and_line_breaks_are_escaped) {
    BOOST_TEST(double_quoted("say \"hi\"") == R"("say \"hi\"")");
    BOOST_TEST(double_quoted("C:\\dir\\") == R"("C:\\dir\\")");
    BOOST_TEST(double_quoted("a\nb\r\nc\td") == R"("a\nb\r\nc\td")");
    BOOST_TEST(double_quoted("nul\0!"s) == R"("nul\0!")");
    BOOST_TEST(double_quoted("\x01\x1f\x7f") == R"("\x01\x1F\x7F")");
}

BOOST_AUTO_TEST_CASE(unicode_line_breaks_and_non_printables_are_escaped) {
    BOOST_TEST(double_quoted("next\xC2\x85line") == R"("next\x85line")");  // U+0085 NEL
    BOOST_TEST(double_quoted("c1\xC2\x9F") == R"("c1\x9F")");              // U+009F
    BOOST_TEST(double_quoted("ls\xE2\x80\xA8ps\xE2\x80\xA9") == R"("ls\u2028ps\u2029")");
    BOOST_TEST(double_quoted("\xEF\xBB\xBF"
                             "bom") == R"("\uFEFFbom")");
    BOOST_TEST(double_quoted("\xEF\xBF\xBE\xEF\xBF\xBF") == R"("\uFFFE\uFFFF")");
}

BOOST_AUTO_TEST_CASE(printable_unicode_is_kept_as_utf8) {
    BOOST_TEST(double_quoted("h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x98\x80") ==
               "\"h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x98\x80\"");
    BOOST_TEST(double_quoted("\xC2\xA0nbsp") == "\"\xC2\xA0nbsp\"");
}

BOOST_AUTO_TEST_CASE(invalid_utf8_is_refused) {
    for (const std::string& bad :
         {"\xFF"s, "\xC0\x80"s, "\xE0\x80\xAF"s, "\xED\xA0\x80"s, "\xF4\x90\x80\x80"s, "\xE2\x82"s, "ok\x80"s,
          "\xC3"s, "\xF8\x88\x80\x80\x80"s}) {
        BOOST_TEST(!is_valid_utf8(bad));
        BOOST_CHECK_THROW(double_quoted(bad), std::invalid_argument);
    }
    BOOST_TEST(is_valid_utf8(""));
    BOOST_TEST(is_valid_utf8("\xF4\x8F\xBF\xBF"));  // U+10FFFF
    BOOST_TEST(is_valid_utf8("\xEE\x80\x80"));      // U+E000
    BOOST_TEST(is_valid_utf8("nul\0"s));
}

BOOST_AUTO_TEST_CASE(scalars_at_the_root) {
    BOOST_TEST(emit(node("x")) == "\"x\"\n");
    BOOST_TEST(emit(node(true)) == "true\n");
    BOOST_TEST(emit(node(std::int64_t{-42})) == "-42\n");
    BOOST_TEST(emit(node(mapping{})) == "{}\n");
    BOOST_TEST(emit(node(sequence{})) == "[]\n");
}

BOOST_AUTO_TEST_CASE(nested_collections_in_block_style) {
    const node doc = mapping{
        {"name", "vm"},
        {"enabled", false},
        {"count", std::int64_t{3}},
        {"list",
         sequence{"a", std::int64_t{1}, mapping{{"k", "v"}, {"k2", sequence{"x"}}}, sequence{"p", "q"}}},
        {"empty_list", sequence{}},
        {"empty_map", mapping{}},
        {"nested", mapping{{"inner", mapping{{"leaf", "z"}}}}},
        {"argv", sequence{sequence{"echo", "hi"}, sequence{sequence{"deep"}}, sequence{}}},
    };
    const std::string expected = R"(name: "vm"
enabled: false
count: 3
list:
  - "a"
  - 1
  - k: "v"
    k2:
      - "x"
  - - "p"
    - "q"
empty_list: []
empty_map: {}
nested:
  inner:
    leaf: "z"
argv:
  - - "echo"
    - "hi"
  - - - "deep"
  - []
)";
    BOOST_TEST(emit(doc) == expected);
}

BOOST_AUTO_TEST_CASE(keys_are_plain_only_when_they_cannot_be_retyped) {
    const node doc = mapping{{"local-hostname", "a"}, {"_x1", "b"}, {"yes", "c"}, {"on", "d"}, {"null", "e"},
                             {"Eth0", "f"},           {"1", "g"},   {"a b", "h"}, {"", "i"},   {"k: v", "j"}};
    const std::string expected = R"(local-hostname: "a"
_x1: "b"
"yes": "c"
"on": "d"
"null": "e"
"Eth0": "f"
"1": "g"
"a b": "h"
"": "i"
"k: v": "j"
)";
    BOOST_TEST(emit(doc) == expected);
}

BOOST_AUTO_TEST_CASE(long_keys_use_the_explicit_form) {
    // YAML readers refuse implicit keys over 1024 characters.
    const std::string key(2000, 'K');  // upper case: quoted
    BOOST_TEST(emit(mapping{{key, "v"}}) == "? \"" + key + "\"\n: \"v\"\n");
    BOOST_TEST(emit(sequence{mapping{{key, sequence{"v"}}}}) == "- ? \"" + key + "\"\n  :\n    - \"v\"\n");
}

BOOST_AUTO_TEST_CASE(emit_refuses_invalid_utf8_in_keys_and_values) {
    BOOST_CHECK_THROW(emit(mapping{{"k", "\xFF"}}), std::invalid_argument);
    BOOST_CHECK_THROW(emit(mapping{{"\xFF", "v"}}), std::invalid_argument);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
