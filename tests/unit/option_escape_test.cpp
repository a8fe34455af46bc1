// Escaping of values in VMM option strings. Besides fixed expectations, each escaper is checked
// against a small model of the VMM's own option splitter: the escaped value, embedded between
// other options, must come back out unchanged.
//
#include "hv/option_escape.hpp"

#include <vmrt/error.hpp>

#include <boost/test/unit_test.hpp>

#include <map>
#include <string>
#include <vector>

namespace {

using namespace std::string_literals;
using options = std::map<std::string, std::string>;

// QEMU's QemuOpts: options are separated by ',', and ",," stands for a literal ','.
options qemu_split(std::string_view text) {
    options out;
    std::string current;
    const auto flush = [&] {
        const auto eq = current.find('=');
        out[current.substr(0, eq)] = eq == std::string::npos ? "" : current.substr(eq + 1);
        current.clear();
    };
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == ',' && i + 1 < text.size() && text[i + 1] == ',') {
            current += ',';
            ++i;
        } else if (text[i] == ',') {
            flush();
        } else {
            current += text[i];
        }
    }
    flush();
    return out;
}

// Cloud Hypervisor's option parser as documented by its behaviour: '"' toggles quoting and is
// dropped, '[' ']' nest and must balance, ',' splits only outside both, the first '=' separates
// key and value, and values are trimmed.
std::optional<options> ch_split(std::string_view text) {
    std::vector<std::string> parts(1);
    bool quoted = false;
    int depth = 0;
    for (char c : text) {
        if (c == '"') {
            quoted = !quoted;
            continue;
        }
        if (c == '[') ++depth;
        if (c == ']' && --depth < 0) return std::nullopt;
        if (c == ',' && !quoted && depth == 0)
            parts.emplace_back();
        else
            parts.back() += c;
    }
    if (quoted || depth != 0) return std::nullopt;
    options out;
    for (const auto& part : parts) {
        const auto eq = part.find('=');
        if (eq == std::string::npos) return std::nullopt;
        std::string value = part.substr(eq + 1);
        value.erase(0, value.find_first_not_of(" \t"));
        value.erase(value.find_last_not_of(" \t") + 1);
        out[part.substr(0, eq)] = value;
    }
    return out;
}

const std::vector<std::string> awkward_values{
    "/var/lib/vm/disk.img",
    "/a,b/c.img",
    ",",
    ",,",
    "a,,b,",
    "/x=y/z",
    "key=value,other=thing",
    "/path with spaces/d.img",
    "/list/[1,2]/d.img",
    "/nested/[a[b]c]/d",
    "caf\xc3\xa9/\xe2\x82\xac.img",
    "",
};

}  // namespace

BOOST_AUTO_TEST_SUITE(option_escape_test)

BOOST_AUTO_TEST_CASE(qemu_doubles_commas) {
    BOOST_TEST(vmrt::hv::qemu_option_value("/var/lib/vm/disk.img") == "/var/lib/vm/disk.img");
    BOOST_TEST(vmrt::hv::qemu_option_value("/a,b.img") == "/a,,b.img");
    BOOST_TEST(vmrt::hv::qemu_option_value(",,") == ",,,,");
    BOOST_TEST(vmrt::hv::qemu_option_value("a=b \"c\" [d]") == "a=b \"c\" [d]");
    BOOST_TEST(vmrt::hv::qemu_option_value("") == "");
}

BOOST_AUTO_TEST_CASE(qemu_values_survive_its_splitter) {
    for (const auto& value : awkward_values) {
        const auto parsed = qemu_split("file=" + vmrt::hv::qemu_option_value(value) + ",format=raw");
        BOOST_TEST(parsed.size() == 2u, value);
        BOOST_TEST(parsed.at("file") == value);
        BOOST_TEST(parsed.at("format") == "raw");
    }
}

BOOST_AUTO_TEST_CASE(qemu_rejects_nul_and_newlines) {
    for (const auto& bad : {"a\0b"s, "a\nb"s, "\r"s}) {
        BOOST_TEST(vmrt::hv::qemu_option_value_problem(bad).has_value());
        try {
            (void)vmrt::hv::qemu_option_value(bad);
            BOOST_FAIL("no exception");
        } catch (const vmrt::error& e) {
            BOOST_TEST((e.code() == vmrt::errc::invalid_spec));
            BOOST_TEST(e.diag().message.find("QEMU") != std::string::npos);
            BOOST_TEST(e.diag().message.find('\0') == std::string::npos);  // shown as \x00
            BOOST_TEST(e.diag().message.find('\n') == std::string::npos);
        }
    }
    BOOST_TEST(!vmrt::hv::qemu_option_value_problem("/ok,path").has_value());
}

BOOST_AUTO_TEST_CASE(ch_quotes_commas_and_equals) {
    BOOST_TEST(vmrt::hv::ch_option_value("/var/lib/vm/disk.img").value() == "/var/lib/vm/disk.img");
    BOOST_TEST(vmrt::hv::ch_option_value("/a,b.img").value() == "\"/a,b.img\"");
    BOOST_TEST(vmrt::hv::ch_option_value("/x=y").value() == "\"/x=y\"");
    BOOST_TEST(vmrt::hv::ch_option_value("/with space").value() == "/with space");
    BOOST_TEST(vmrt::hv::ch_option_value("/[balanced]").value() == "/[balanced]");
    BOOST_TEST(vmrt::hv::ch_option_value("").value() == "");
}

BOOST_AUTO_TEST_CASE(ch_values_survive_its_splitter) {
    for (const auto& value : awkward_values) {
        const auto escaped = vmrt::hv::ch_option_value(value);
        BOOST_TEST_REQUIRE(escaped.has_value(), value);
        const auto parsed = ch_split("path=" + *escaped + ",readonly=on");
        BOOST_TEST_REQUIRE(parsed.has_value(), *escaped);
        BOOST_TEST(parsed->size() == 2u, value);
        BOOST_TEST(parsed->at("path") == value);
        BOOST_TEST(parsed->at("readonly") == "on");
    }
}

BOOST_AUTO_TEST_CASE(ch_rejects_what_it_cannot_represent) {
    const std::vector<std::pair<std::string, std::string>> cases{
        {"/a\"b", "'\"'"},
        {"\"", "'\"'"},
        {"a\0b"s, "NUL"},
        {"a\nb", "line break"},
        {"/a]b[", "']' without"},
        {"/a[b", "'[' without"},
        {" /lead", "whitespace"},
        {"/trail\t", "whitespace"},
        {"/nbsp\xc2\xa0", "whitespace"},             // U+00A0: Rust's trim() strips it too
        {"\xe3\x80\x80/ideographic", "whitespace"},  // U+3000
        {"/bad\xff", "UTF-8"},
        {"/overlong\xc0\xaf", "UTF-8"},
        {"/surrogate\xed\xa0\x80", "UTF-8"},
        {"/truncated\xe2\x82", "UTF-8"},
    };
    for (const auto& [value, fragment] : cases) {
        const auto escaped = vmrt::hv::ch_option_value(value);
        BOOST_TEST_REQUIRE(escaped.has_error(), "accepted " << value);
        BOOST_TEST((escaped.error() == vmrt::errc::invalid_spec));
        const auto problem = vmrt::hv::ch_option_value_problem(value);
        BOOST_TEST_REQUIRE(problem.has_value());
        BOOST_TEST(problem->find(fragment) != std::string::npos, *problem << " lacks " << fragment);
    }
    BOOST_TEST(!vmrt::hv::ch_option_value_problem("caf\xc3\xa9 \xf0\x9f\x98\x80").has_value());
}

BOOST_AUTO_TEST_SUITE_END()
