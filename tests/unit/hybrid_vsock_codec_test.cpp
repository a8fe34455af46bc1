// The hybrid-vsock handshake codec (net/hybrid_vsock_codec.hpp): the CONNECT command and the
// `OK <port>\n` reply line CH answers with (shared/reference/cloud-hypervisor.md §4).
#include "net/hybrid_vsock_codec.hpp"

#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <string>

namespace {

namespace hv = vmrt::net::hybrid_vsock;
using status = hv::reply_parser::status;

}  // namespace

BOOST_AUTO_TEST_SUITE(hybrid_vsock_codec_test)

BOOST_AUTO_TEST_CASE(connect_command_always_ends_with_a_newline_and_fits_32_bytes) {
    BOOST_TEST(hv::connect_command(0) == "CONNECT 0\n");
    BOOST_TEST(hv::connect_command(1234) == "CONNECT 1234\n");
    BOOST_TEST(hv::connect_command(UINT32_MAX) == "CONNECT 4294967295\n");
    BOOST_TEST(hv::connect_command(UINT32_MAX).size() <= hv::max_line_bytes);
}

BOOST_AUTO_TEST_CASE(ok_line_gives_the_host_port) {
    auto p = hv::parse_reply_line("OK 1073741824\n");
    BOOST_TEST((p.state() == status::ok));
    BOOST_TEST(p.host_port() == 1073741824u);
    BOOST_TEST(p.line() == "OK 1073741824\n");
    BOOST_TEST(p.error().empty());
    BOOST_TEST(hv::parse_reply_line("OK 0\n").host_port() == 0u);
    BOOST_TEST(hv::parse_reply_line("OK 4294967295\n").host_port() == UINT32_MAX);
}

BOOST_AUTO_TEST_CASE(parser_stops_at_the_newline_so_stream_data_is_never_consumed) {
    hv::reply_parser p;
    const std::string bytes = "OK 1073741825\nhello from the guest";
    std::size_t consumed = 0;
    for (char c : bytes) {
        ++consumed;
        if (p.feed(c) != status::incomplete) break;
    }
    BOOST_TEST(consumed == 14u);
    BOOST_TEST((p.state() == status::ok));
    BOOST_TEST((p.feed('x') == status::ok));  // a verdict is final and takes no more bytes
    BOOST_TEST(p.line() == "OK 1073741825\n");
}

BOOST_AUTO_TEST_CASE(an_incomplete_line_asks_for_more) {
    hv::reply_parser p;
    for (char c : std::string("OK 12")) BOOST_TEST((p.feed(c) == status::incomplete));
    BOOST_TEST((p.state() == status::incomplete));
}

BOOST_AUTO_TEST_CASE(malformed_replies_are_refused_at_the_first_wrong_byte) {
    struct bad_case {
        const char* line;
        std::size_t consumed;  // bytes read before the verdict
        const char* why;
    };
    const bad_case cases[] = {
        {"NOPE\n", 1, "does not start"},
        {"ok 12\n", 1, "does not start"},  // CH writes upper case; only the command is case-insensitive
        {"OK\n", 3, "does not start"},
        {"OK \n", 4, "no port number"},
        {"OK  12\n", 4, "non-digit"},
        {"OK 12 \n", 6, "non-digit"},
        {"OK 12\r\n", 6, "non-digit"},
        {"OK -1\n", 4, "non-digit"},
        {"OK 4294967296\n", 13, "exceeds 32 bits"},
        {"OK 99999999999\n", 13, "exceeds 32 bits"},
    };
    for (const auto& c : cases) {
        BOOST_TEST_CONTEXT(c.line) {
            auto p = hv::parse_reply_line(c.line);
            BOOST_TEST((p.state() == status::malformed));
            BOOST_TEST(p.line().size() == c.consumed);
            BOOST_TEST(p.error().find(c.why) != std::string::npos, p.error());
        }
    }
}

BOOST_AUTO_TEST_CASE(a_line_longer_than_32_bytes_is_refused_without_reading_further) {
    // Leading zeros keep the value in range, so only the length limit can refuse it.
    const std::string line = "OK " + std::string(40, '0') + "\n";
    auto p = hv::parse_reply_line(line);
    BOOST_TEST((p.state() == status::malformed));
    BOOST_TEST(p.line().size() == hv::max_line_bytes);
    BOOST_TEST(p.error().find("longer than 32") != std::string::npos);
    // Exactly 32 bytes with the newline is still fine.
    auto at_limit = hv::parse_reply_line("OK " + std::string(27, '0') + "7\n");
    BOOST_TEST((at_limit.state() == status::ok));
    BOOST_TEST(at_limit.host_port() == 7u);
}

BOOST_AUTO_TEST_CASE(printable_escapes_control_bytes_and_cuts_long_text) {
    BOOST_TEST(hv::printable("NOPE\n") == "NOPE\\n");
    BOOST_TEST(hv::printable(std::string("a\0b\x7f\\", 5)) == "a\\x00b\\x7f\\x5c");
    BOOST_TEST(hv::printable(std::string(100, 'x'), 10) == std::string(10, 'x') + "...");
}

BOOST_AUTO_TEST_SUITE_END()
