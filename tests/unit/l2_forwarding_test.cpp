// The switch's forwarding decisions, frame by frame, without any I/O: learning, flooding, no
// hairpin, aging, port removal, and every drop reason the core decides (runt, oversize, spoofed,
// multicast source), plus a MAC flood through the whole decision path.
#include "net/forwarding.hpp"

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <cstdint>
#include <random>
#include <vector>

namespace {

using namespace std::chrono_literals;
using vmrt::mac_address;
using vmrt::net::drop_reason;
using vmrt::net::forwarding;
using vmrt::net::forwarding_config;
using vmrt::net::port_slot;
using vmrt::net::verdict;
using action = verdict::action;
using clock_type = std::chrono::steady_clock;

const clock_type::time_point t0 = clock_type::time_point(1h);

mac_address mac(std::uint8_t last) { return {{0x52, 0x54, 0x00, 0x00, 0x00, last}}; }
const mac_address broadcast{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};
const mac_address ipv6_multicast{{0x33, 0x33, 0x00, 0x00, 0x00, 0x01}};

std::vector<std::byte> frame(const mac_address& dst, const mac_address& src, std::size_t total = 64) {
    std::vector<std::byte> f(total);
    for (std::size_t i = 0; i < 6 && i < total; ++i) f[i] = std::byte(dst.octets[i]);
    for (std::size_t i = 0; i < 6 && i + 6 < total; ++i) f[6 + i] = std::byte(src.octets[i]);
    if (total >= 14) f[12] = std::byte(0x08);  // IPv4
    return f;
}

struct fixture {
    forwarding fw{forwarding_config{.max_frame_bytes = 1514, .mac_table_capacity = 64, .mac_aging = 30s}};
    port_slot a = fw.add_port(), b = fw.add_port(), c = fw.add_port();

    verdict send(port_slot in, const mac_address& dst, const mac_address& src,
                 clock_type::time_point now = t0) {
        return fw.decide(in, frame(dst, src), now);
    }
};

void check_drop(const verdict& v, drop_reason r) {
    BOOST_TEST((v.what == action::drop));
    BOOST_TEST((v.reason == r));
}

}  // namespace

BOOST_AUTO_TEST_SUITE(l2_forwarding_test)

BOOST_FIXTURE_TEST_CASE(unknown_unicast_broadcast_and_multicast_are_flooded, fixture) {
    BOOST_TEST((send(a, mac(2), mac(1)).what == action::flood));
    BOOST_TEST((send(a, broadcast, mac(1)).what == action::flood));
    BOOST_TEST((send(a, ipv6_multicast, mac(1)).what == action::flood));
    BOOST_TEST(fw.members() == (std::vector<port_slot>{a, b, c}), boost::test_tools::per_element());
}

BOOST_FIXTURE_TEST_CASE(a_reply_teaches_the_switch_where_both_stations_are, fixture) {
    BOOST_TEST((send(a, broadcast, mac(1)).what == action::flood));  // A asks (ARP)
    verdict reply = send(b, mac(1), mac(2));                         // B answers A
    BOOST_TEST((reply.what == action::unicast));
    BOOST_TEST(reply.out == a);
    verdict next = send(a, mac(2), mac(1));  // from now on A -> B goes to B only
    BOOST_TEST((next.what == action::unicast));
    BOOST_TEST(next.out == b);
    BOOST_TEST(fw.table().size() == 2u);
}

BOOST_FIXTURE_TEST_CASE(no_frame_goes_back_out_of_its_ingress_port, fixture) {
    send(a, broadcast, mac(1));
    send(a, broadcast, mac(9));  // two stations behind port a (a bridge, a TAP)
    BOOST_TEST((send(a, mac(9), mac(1)).what == action::filter));
}

BOOST_FIXTURE_TEST_CASE(learned_addresses_age_out, fixture) {
    send(b, broadcast, mac(2), t0);
    BOOST_TEST((send(a, mac(2), mac(1), t0 + 29s).what == action::unicast));
    BOOST_TEST((send(a, mac(2), mac(1), t0 + 31s).what == action::flood));
}

BOOST_FIXTURE_TEST_CASE(a_removed_port_is_forgotten_and_its_slot_reused, fixture) {
    send(b, broadcast, mac(2));
    fw.remove_port(b);
    BOOST_TEST(fw.members() == (std::vector<port_slot>{a, c}), boost::test_tools::per_element());
    BOOST_TEST((send(a, mac(2), mac(1)).what == action::flood));
    port_slot d = fw.add_port();
    BOOST_TEST(d == b);
    BOOST_TEST((send(a, mac(2), mac(1)).what == action::flood));  // nothing stale points at d
}

BOOST_FIXTURE_TEST_CASE(runts_are_dropped, fixture) {
    auto f = frame(broadcast, mac(1), 13);
    check_drop(fw.decide(a, f, t0), drop_reason::runt);
    check_drop(fw.decide(a, std::vector<std::byte>{}, t0), drop_reason::runt);
    auto header_only = frame(broadcast, mac(1), 14);
    BOOST_TEST((fw.decide(a, header_only, t0).what == action::flood));
}

BOOST_FIXTURE_TEST_CASE(oversize_and_cut_frames_are_dropped, fixture) {
    auto max = frame(broadcast, mac(1), 1514);
    BOOST_TEST((fw.decide(a, max, t0).what == action::flood));
    auto over = frame(broadcast, mac(1), 1515);
    check_drop(fw.decide(a, over, t0), drop_reason::oversize);
    // A receive buffer that cut a frame short: never forwarded as if it were whole.
    check_drop(fw.decide(a, max, 1600, t0), drop_reason::oversize);
    check_drop(fw.decide(a, std::span(max).first(100), 101, t0), drop_reason::oversize);
}

BOOST_FIXTURE_TEST_CASE(group_source_addresses_are_dropped_and_not_learned, fixture) {
    check_drop(send(a, mac(2), broadcast), drop_reason::bad_source);
    check_drop(send(a, mac(2), ipv6_multicast), drop_reason::bad_source);
    BOOST_TEST(fw.table().size() == 0u);
}

BOOST_AUTO_TEST_CASE(a_pinned_port_accepts_only_its_own_source_address) {
    forwarding fw(forwarding_config{});
    port_slot pinned = fw.add_port(mac(1));
    port_slot other = fw.add_port();
    BOOST_TEST((fw.decide(pinned, frame(broadcast, mac(1)), t0).what == action::flood));
    check_drop(fw.decide(pinned, frame(broadcast, mac(2)), t0), drop_reason::spoofed);
    // The spoofed address was not learned: traffic to it is not hijacked to the spoofer.
    BOOST_TEST((fw.decide(other, frame(mac(2), mac(3)), t0).what == action::flood));
    BOOST_TEST((fw.decide(other, frame(mac(1), mac(3)), t0).out == pinned));
}

BOOST_AUTO_TEST_CASE(a_mac_flood_through_the_switch_stays_bounded) {
    forwarding fw(forwarding_config{.mac_table_capacity = 1024});
    port_slot attacker = fw.add_port(), victim = fw.add_port();
    fw.decide(victim, frame(broadcast, mac(1)), t0);
    std::mt19937_64 rng(7);
    auto f = frame(mac(1), mac(2));
    for (int i = 0; i < 1'000'000; ++i) {
        std::uint64_t r = rng();
        f[6] = std::byte(r & 0xfe);  // unicast source
        for (int k = 1; k < 6; ++k) f[6 + k] = std::byte(r >> (8 * k));
        verdict v = fw.decide(attacker, f, t0 + std::chrono::microseconds(i));
        BOOST_REQUIRE(fw.table().size() <= 1024u);
        // Frames to a known station go to it while its entry lives; once the flood evicts it,
        // they are flooded (like any hardware switch), never sent to the attacker.
        BOOST_REQUIRE((v.what == action::flood || (v.what == action::unicast && v.out == victim)));
    }
    BOOST_TEST(fw.table().size() == 1024u);
}

BOOST_AUTO_TEST_SUITE_END()
