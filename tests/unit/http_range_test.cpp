// Content-Range parsing (lib/io/http_range.cpp): a resume is only trusted on an exact,
// consistent range, so everything else must be refused.
#include <vmrt/io/http_range.hpp>

#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <random>
#include <string>

namespace {

using vmrt::io::content_range;
using vmrt::io::parse_content_range;

}  // namespace

BOOST_AUTO_TEST_SUITE(http_range_test)

BOOST_AUTO_TEST_CASE(valid_forms) {
    auto full = parse_content_range("bytes 100-999/1000");
    BOOST_TEST_REQUIRE(full.has_value());
    BOOST_TEST(*full->first == 100u);
    BOOST_TEST(*full->last == 999u);
    BOOST_TEST(*full->complete_length == 1000u);

    auto unknown_total = parse_content_range("bytes 0-0/*");
    BOOST_TEST_REQUIRE(unknown_total.has_value());
    BOOST_TEST(!unknown_total->complete_length.has_value());

    auto unsatisfied = parse_content_range("bytes */4096");
    BOOST_TEST_REQUIRE(unsatisfied.has_value());
    BOOST_TEST(!unsatisfied->first.has_value());
    BOOST_TEST(*unsatisfied->complete_length == 4096u);

    BOOST_TEST(parse_content_range("  Bytes 5-9/10\t").has_value());
    BOOST_TEST(
        parse_content_range("bytes 9223372036854775806-9223372036854775806/9223372036854775807").has_value());
}

BOOST_AUTO_TEST_CASE(refused_forms) {
    for (const char* bad : {"",
                            "bytes",
                            "bytes ",
                            "bytes 1-2",
                            "bytes 1-2/",
                            "bytes 2-1/10",
                            "bytes 5-10/10",
                            "bytes 0-9/0",
                            "bytes */*",
                            "bytes -1-2/10",
                            "bytes 1--2/10",
                            "bytes +1-2/10",
                            "bytes 1-2/10 extra",
                            "items 1-2/10",
                            "bytes=1-2/10",
                            "bytes 1-2/1x",
                            "bytes 0-1/99999999999999999999",
                            "bytes 0-1/9223372036854775808",
                            "bytes  1-2/10",
                            "bytes 1 -2/10"})
        BOOST_TEST(!parse_content_range(bad).has_value(), "accepted \"" << bad << "\"");
}

BOOST_AUTO_TEST_CASE(range_header) { BOOST_TEST(vmrt::io::range_from(12345) == "bytes=12345-"); }

// Generated valid headers parse back to their numbers; any single-byte mutation of them either
// is refused or still yields a consistent range.
BOOST_AUTO_TEST_CASE(generated_ranges) {
    std::mt19937_64 rng(42);
    const std::string alphabet = "0123456789-/* bytesBYTES\t,;x";
    for (int i = 0; i < 20000; ++i) {
        std::uint64_t total = 1 + rng() % 1000000;
        std::uint64_t first = rng() % total;
        std::uint64_t last = first + rng() % (total - first);
        std::string text =
            "bytes " + std::to_string(first) + "-" + std::to_string(last) + "/" + std::to_string(total);
        auto r = parse_content_range(text);
        BOOST_TEST_REQUIRE(r.has_value(), text);
        BOOST_TEST((*r == content_range{first, last, total}), text);

        std::string mutated = text;
        mutated[rng() % mutated.size()] = alphabet[rng() % alphabet.size()];
        if (auto m = parse_content_range(mutated)) {
            BOOST_TEST((m->first.has_value() == m->last.has_value()), mutated);
            if (m->first) BOOST_TEST(*m->first <= *m->last, mutated);
            if (m->last && m->complete_length) BOOST_TEST(*m->last < *m->complete_length, mutated);
            BOOST_TEST((m->first || m->complete_length), mutated);
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()
