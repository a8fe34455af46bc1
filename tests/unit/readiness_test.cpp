// The console parser against every way vm-rs 0.2.4's ReadyMarkerCache gets a serial console
// wrong: partial lines, addresses taken from the next line, junk accepted as an address, lost
// reboots, unbounded memory.
#include <vmrt/io/readiness.hpp>

#include <boost/test/unit_test.hpp>

#include <cstddef>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace {

using vmrt::io::parse_ready_line;
using vmrt::io::readiness_parser;
using vmrt::io::serial_event;
using kind = serial_event::kind;

std::size_t count(const std::vector<serial_event>& events, kind what) {
    std::size_t n = 0;
    for (const auto& e : events) n += e.what == what ? 1 : 0;
    return n;
}

// Feeds `text` one byte at a time, collecting every event.
std::vector<serial_event> feed_bytewise(readiness_parser& parser, std::string_view text) {
    std::vector<serial_event> all;
    for (char c : text) {
        auto events = parser.feed(std::string_view(&c, 1));
        all.insert(all.end(), events.begin(), events.end());
    }
    return all;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(readiness_test)

BOOST_AUTO_TEST_CASE(partial_marker_waits_for_the_newline) {
    readiness_parser parser;
    BOOST_TEST(parser.feed("VMRS_READY 10.0").empty());
    BOOST_TEST(!parser.is_ready());
    auto events = parser.feed(".2.15\n");
    BOOST_TEST_REQUIRE(events.size() == 1u);
    BOOST_TEST((events[0].what == kind::ready));
    BOOST_TEST(*events[0].ip == "10.0.2.15");
    BOOST_TEST(events[0].line == "VMRS_READY 10.0.2.15");
    BOOST_TEST(*parser.ready_ip() == "10.0.2.15");
}

BOOST_AUTO_TEST_CASE(bare_marker_never_takes_the_next_line) {
    readiness_parser parser;
    BOOST_TEST(parser.feed("VMRS_READY\nfoo bar\n").empty());
    BOOST_TEST(!parser.is_ready());
    BOOST_TEST(!parse_ready_line("VMRS_READY"));
    BOOST_TEST(!parse_ready_line("VMRS_READY   "));
}

BOOST_AUTO_TEST_CASE(invalid_tokens_are_rejected) {
    for (std::string token : {"10.0.0.300", "hello", "1.2.3", "::g", "10.1", "1.2.3.4.5", "1.2.3.", ".1.2.3",
                              "0x0a.0.0.1", "01.2.3.4", "1.2.3.4/24", "fe80::1%eth0", "1..2.3", "--"}) {
        BOOST_TEST_CONTEXT("token " << token) {
            BOOST_TEST(!parse_ready_line("VMRS_READY " + token));
            readiness_parser parser;
            BOOST_TEST(parser.feed("VMRS_READY " + token + "\n").empty());
            BOOST_TEST(!parser.is_ready());
        }
    }
}

BOOST_AUTO_TEST_CASE(ipv6_is_accepted) {
    BOOST_TEST(*parse_ready_line("VMRS_READY fd00::2") == "fd00::2");
    BOOST_TEST(*parse_ready_line("VMRS_READY ::1") == "::1");
    // The address comes back in canonical form, so that it compares as a string.
    BOOST_TEST(*parse_ready_line("VMRS_READY FD00:0::2") == "fd00::2");
    readiness_parser parser;
    auto events = parser.feed("VMRS_READY fd00::2\n");
    BOOST_TEST_REQUIRE(events.size() == 1u);
    BOOST_TEST(*events[0].ip == "fd00::2");
}

BOOST_AUTO_TEST_CASE(dash_means_ready_without_an_address) {
    readiness_parser parser;
    auto events = parser.feed("VMRS_READY -\n");
    BOOST_TEST_REQUIRE(events.size() == 1u);
    BOOST_TEST((events[0].what == kind::ready));
    BOOST_TEST_REQUIRE(events[0].ip.has_value());
    BOOST_TEST(events[0].ip->empty());
    BOOST_TEST(parser.is_ready());
    BOOST_TEST(*parser.ready_ip() == "");
}

BOOST_AUTO_TEST_CASE(extra_tokens_are_rejected) {
    BOOST_TEST(!parse_ready_line("VMRS_READY 10.0.0.2 extra"));
    BOOST_TEST(!parse_ready_line("VMRS_READY 10.0.0.2 10.0.0.3"));
    readiness_parser parser;
    BOOST_TEST(parser.feed("VMRS_READY 10.0.0.2 extra\n").empty());
}

BOOST_AUTO_TEST_CASE(marker_must_start_the_line_and_be_a_whole_word) {
    BOOST_TEST(!parse_ready_line("foo VMRS_READY 10.0.0.2"));
    BOOST_TEST(!parse_ready_line("VMRS_READYX 10.0.0.2"));
    BOOST_TEST(!parse_ready_line("VMRS_READY10.0.0.2"));
    BOOST_TEST(!parse_ready_line("vmrs_ready 10.0.0.2"));
    readiness_parser parser;
    BOOST_TEST(parser.feed("foo VMRS_READY 10.0.0.2\n").empty());
}

BOOST_AUTO_TEST_CASE(blanks_and_crlf_are_tolerated) {
    BOOST_TEST(*parse_ready_line("  VMRS_READY \t 10.0.0.2 \r") == "10.0.0.2");
    readiness_parser parser;
    auto events = parser.feed("VMRS_READY 10.0.0.2\r\n");
    BOOST_TEST_REQUIRE(events.size() == 1u);
    BOOST_TEST(*events[0].ip == "10.0.0.2");
    BOOST_TEST(events[0].line == "VMRS_READY 10.0.0.2");  // the '\r' is not part of the line
    BOOST_TEST(parser.last_lines().back() == "VMRS_READY 10.0.0.2");
}

BOOST_AUTO_TEST_CASE(line_split_byte_by_byte) {
    readiness_parser parser;
    auto events = feed_bytewise(parser, "booting\r\nVMRS_READY fd00::2\r\nlogin:\n");
    BOOST_TEST_REQUIRE(events.size() == 1u);
    BOOST_TEST(*events[0].ip == "fd00::2");
    BOOST_TEST((parser.last_lines() == std::vector<std::string>{"booting", "VMRS_READY fd00::2", "login:"}));
}

BOOST_AUTO_TEST_CASE(several_lines_in_one_feed_keep_their_order) {
    readiness_parser parser;
    auto events = parser.feed("systemd starting\nVMRS_READY 10.0.0.2\nnoise\n"
                              "[   12.5] Kernel panic - not syncing: Attempted to kill init!\n"
                              "VMRS_READY 10.0.0.3\n");
    BOOST_TEST_REQUIRE(events.size() == 3u);
    BOOST_TEST((events[0].what == kind::ready));
    BOOST_TEST(*events[0].ip == "10.0.0.2");
    BOOST_TEST((events[1].what == kind::kernel_panic));
    BOOST_TEST(events[1].line == "[   12.5] Kernel panic - not syncing: Attempted to kill init!");
    BOOST_TEST((events[2].what == kind::ready));
    BOOST_TEST(*parser.ready_ip() == "10.0.0.3");
}

BOOST_AUTO_TEST_CASE(kernel_banner_after_ready_reports_a_reboot) {
    for (std::string banner : {"Linux version 6.1.0-18-amd64 (debian-kernel@lists.debian.org) #1 SMP",
                               "[    0.000000] Linux version 6.1.0-18-amd64 (gcc-12) #1 SMP"}) {
        BOOST_TEST_CONTEXT("banner " << banner) {
            readiness_parser parser;
            parser.feed("VMRS_READY 10.0.0.2\n");
            BOOST_TEST_REQUIRE(parser.is_ready());
            auto events = parser.feed(banner + "\n");
            BOOST_TEST_REQUIRE(events.size() == 1u);
            BOOST_TEST((events[0].what == kind::reboot));
            BOOST_TEST(events[0].line == banner);
            BOOST_TEST(!parser.is_ready());
            // The rebooted guest announces itself again, possibly with another address.
            events = parser.feed("VMRS_READY 10.0.0.9\n");
            BOOST_TEST_REQUIRE(events.size() == 1u);
            BOOST_TEST(*parser.ready_ip() == "10.0.0.9");
        }
    }
}

BOOST_AUTO_TEST_CASE(kernel_banner_before_ready_is_just_the_boot) {
    readiness_parser parser;
    BOOST_TEST(parser.feed("[    0.000000] Linux version 6.1.0 #1 SMP\nLinux version 6.1.0\n").empty());
    auto events = parser.feed("VMRS_READY 10.0.0.2\n");
    BOOST_TEST_REQUIRE(events.size() == 1u);
    BOOST_TEST((events[0].what == kind::ready));
}

BOOST_AUTO_TEST_CASE(banner_lookalikes_are_not_reboots) {
    readiness_parser parser;
    parser.feed("VMRS_READY 10.0.0.2\n");
    BOOST_TEST(parser.feed("$ cat /proc/version: Linux version 6.1\n[ abc] Linux version 6.1\n").empty());
    BOOST_TEST(parser.is_ready());
}

BOOST_AUTO_TEST_CASE(kernel_panic_is_reported) {
    readiness_parser parser;
    auto events =
        parser.feed("Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)\n");
    BOOST_TEST_REQUIRE(events.size() == 1u);
    BOOST_TEST((events[0].what == kind::kernel_panic));
    BOOST_TEST(!events[0].ip);
    BOOST_TEST(events[0].line ==
               "Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)");
}

BOOST_AUTO_TEST_CASE(last_lines_are_kept_in_order) {
    readiness_parser parser(3);
    parser.feed("one\ntwo\nthree\nfour\nfi");
    BOOST_TEST((parser.last_lines() == std::vector<std::string>{"two", "three", "four"}));
    parser.feed("ve\n");
    BOOST_TEST((parser.last_lines() == std::vector<std::string>{"three", "four", "five"}));

    readiness_parser none(0);
    none.feed("a\nb\n");
    BOOST_TEST(none.last_lines().empty());
}

BOOST_AUTO_TEST_CASE(an_endless_line_stays_bounded) {
    constexpr std::size_t bound = 4096;
    readiness_parser parser(20, bound);
    const std::string block(64 * 1024, 'x');
    for (int i = 0; i < 16; ++i) {  // 1 MiB without a newline
        BOOST_TEST_REQUIRE(parser.feed(block).empty());
        BOOST_TEST_REQUIRE(parser.buffered_bytes() <= bound);
    }
    auto events = parser.feed("\nVMRS_READY 10.0.0.2\n");
    BOOST_TEST_REQUIRE(events.size() == 1u);
    BOOST_TEST(*events[0].ip == "10.0.0.2");
    auto lines = parser.last_lines();
    BOOST_TEST_REQUIRE(lines.size() == 2u);
    BOOST_TEST(lines[0].size() == bound);  // the start of the long line, for the diagnostics
    BOOST_TEST(parser.buffered_bytes() == 0u);
}

BOOST_AUTO_TEST_CASE(a_truncated_line_is_never_a_ready_line) {
    readiness_parser parser(20, 32);
    // Valid as a whole (trailing blanks are tolerated) but longer than the bound.
    BOOST_TEST(parser.feed("VMRS_READY 10.0.0.2" + std::string(100, ' ') + "\n").empty());
    BOOST_TEST(!parser.is_ready());
}

BOOST_AUTO_TEST_CASE(reset_forgets_the_partial_line_and_the_readiness) {
    readiness_parser parser;
    parser.feed("VMRS_READY 10.0.0.2\nVMRS_READY 10.0");
    BOOST_TEST(parser.is_ready());
    parser.reset();
    BOOST_TEST(!parser.is_ready());
    BOOST_TEST(parser.buffered_bytes() == 0u);
    BOOST_TEST(parser.feed(".2.15\n").empty());
    BOOST_TEST(parser.last_lines().back() == ".2.15");
}

// Property: wherever the console output is cut between two writes, the ready line among random
// noise is reported exactly once, with its address.
BOOST_AUTO_TEST_CASE(ready_line_is_found_once_at_every_split) {
    std::mt19937 rng(20240611);
    constexpr std::string_view alphabet = "abcXYZ019.: \t\r-[]VMRS_READY";
    auto noise_line = [&] {
        std::uniform_int_distribution<std::size_t> length(0, 40), pick(0, alphabet.size() - 1);
        std::string line;
        do {
            line.clear();
            for (auto n = length(rng); n > 0; --n) line += alphabet[pick(rng)];
        } while (parse_ready_line(line));  // noise must not be a ready line by chance
        return line;
    };
    const std::vector<std::pair<std::string, std::string>> ready_lines = {
        {"VMRS_READY 10.0.2.15", "10.0.2.15"}, {"VMRS_READY fd00::2\r", "fd00::2"}, {"VMRS_READY -", ""}};

    for (int trial = 0; trial < 30; ++trial) {
        const auto& [ready_line, ip] = ready_lines[trial % ready_lines.size()];
        std::string text;
        std::uniform_int_distribution<int> lines(0, 5);
        for (auto n = lines(rng); n > 0; --n) text += noise_line() + "\n";
        text += ready_line + "\n";
        for (auto n = lines(rng); n > 0; --n) text += noise_line() + "\n";
        text += noise_line();  // an unfinished last line

        for (std::size_t split = 0; split <= text.size(); ++split) {
            BOOST_TEST_CONTEXT("trial " << trial << " split " << split) {
                readiness_parser parser;
                auto events = parser.feed(std::string_view(text).substr(0, split));
                auto rest = parser.feed(std::string_view(text).substr(split));
                events.insert(events.end(), rest.begin(), rest.end());
                BOOST_TEST_REQUIRE(count(events, kind::ready) == 1u);
                BOOST_TEST(parser.ready_ip().value_or("<not ready>") == ip);
            }
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()
