// The L2 switch with real socketpairs: learning, aging, flooding, no hairpin, isolation between
// networks, re-framing between stream and datagram ports, oversize and broken frames, MAC
// pinning, pcap capture, and the errors of its API. The test thread plays the VMs.
#include "support/switch_harness.hpp"
#include "support/test_support.hpp"

#include <vmrt/error.hpp>

#include <boost/test/unit_test.hpp>

#include <sys/socket.h>
#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>

namespace {

using namespace std::chrono_literals;
using vmrt::net::drop_reason;
using vmrt::net::port_counters;
using vmrt::net::port_kind;
using vmrt::test::broadcast_mac;
using vmrt::test::frame_bytes;
using vmrt::test::make_frame;
using vmrt::test::switch_harness;
using vmrt::test::test_mac;

constexpr auto quiet = 150ms;

vmrt::errc code_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const vmrt::error& e) {
        return static_cast<vmrt::errc>(e.code().value());
    }
    return vmrt::errc::ok;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(l2_switch_test)

BOOST_AUTO_TEST_CASE(learns_from_replies_and_then_stops_flooding) {
    switch_harness h;
    auto net = h.add_network("lan");
    auto [a, pa] = h.add_port(net, port_kind::dgram);
    auto [b, pb] = h.add_port(net, port_kind::dgram);
    auto [c, pc] = h.add_port(net, port_kind::dgram);
    // A to B, unknown yet: flooded to B and C, never back to A.
    auto hello = make_frame(test_mac(2), test_mac(1), 60, 1);
    BOOST_REQUIRE(pa.send(hello));
    BOOST_TEST((pb.receive() == hello));
    BOOST_TEST((pc.receive() == hello));
    BOOST_TEST(!pa.receive(quiet));
    // B answers: A is known, so only A gets it.
    auto reply = make_frame(test_mac(1), test_mac(2), 60, 2);
    BOOST_REQUIRE(pb.send(reply));
    BOOST_TEST((pa.receive() == reply));
    BOOST_TEST(!pc.receive(quiet));
    // Both known now: A to B reaches B alone.
    auto again = make_frame(test_mac(2), test_mac(1), 60, 3);
    BOOST_REQUIRE(pa.send(again));
    BOOST_TEST((pb.receive() == again));
    BOOST_TEST(!pc.receive(quiet));
    BOOST_TEST(h.call([&](auto& sw) { return sw.mac_table_size(net); }) == 2u);
    port_counters ca = h.counters(a), cb = h.counters(b), cc = h.counters(c);
    BOOST_TEST(ca.rx_frames == 2u);
    BOOST_TEST(ca.rx_bytes == 120u);
    BOOST_TEST(ca.tx_frames == 1u);
    BOOST_TEST(cb.tx_frames == 2u);
    BOOST_TEST(cb.rx_frames == 1u);
    BOOST_TEST(cc.tx_frames == 1u);
    BOOST_TEST(cc.tx_bytes == 60u);
}

BOOST_AUTO_TEST_CASE(learned_addresses_age_out) {
    switch_harness h({.mac_aging = 200ms});
    auto net = h.add_network("lan");
    auto [a, pa] = h.add_port(net, port_kind::dgram);
    auto [b, pb] = h.add_port(net, port_kind::dgram);
    auto [c, pc] = h.add_port(net, port_kind::dgram);
    BOOST_REQUIRE(pb.send(make_frame(broadcast_mac, test_mac(2))));
    BOOST_TEST(pa.receive().has_value());
    BOOST_TEST(pc.receive().has_value());
    BOOST_REQUIRE(pa.send(make_frame(test_mac(2), test_mac(1))));
    BOOST_TEST(pb.receive().has_value());
    BOOST_TEST(!pc.receive(quiet));  // known: unicast
    std::this_thread::sleep_for(300ms);
    BOOST_TEST(h.call([&](auto& sw) { return sw.mac_table_size(net); }) == 0u);
    BOOST_REQUIRE(pa.send(make_frame(test_mac(2), test_mac(1))));
    BOOST_TEST(pb.receive().has_value());
    BOOST_TEST(pc.receive().has_value());  // forgotten: flooded again
}

BOOST_AUTO_TEST_CASE(broadcast_and_multicast_reach_every_other_port_only) {
    switch_harness h;
    auto net = h.add_network("lan");
    std::vector<vmrt::test::peer> peers;
    for (int i = 0; i < 4; ++i)
        peers.push_back(h.add_port(net, i % 2 ? port_kind::stream : port_kind::dgram).second);
    const vmrt::mac_address multicast{{0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb}};  // mDNS
    for (auto dst : {broadcast_mac, multicast}) {
        auto f = make_frame(dst, test_mac(1), 342);
        BOOST_REQUIRE(peers[0].send(f));
        for (int i = 1; i < 4; ++i) BOOST_TEST((peers[i].receive() == f));
        BOOST_TEST(!peers[0].receive(quiet));  // no hairpin
    }
}

BOOST_AUTO_TEST_CASE(unicast_to_a_station_behind_the_ingress_port_goes_nowhere) {
    switch_harness h;
    auto net = h.add_network("lan");
    auto [a, pa] = h.add_port(net, port_kind::dgram);
    auto [b, pb] = h.add_port(net, port_kind::dgram);
    BOOST_REQUIRE(pa.send(make_frame(broadcast_mac, test_mac(1))));
    BOOST_REQUIRE(pa.send(make_frame(broadcast_mac, test_mac(9))));
    BOOST_TEST(pb.drain().size() == 2u);
    BOOST_REQUIRE(pa.send(make_frame(test_mac(9), test_mac(1))));
    BOOST_TEST(!pa.receive(quiet));
    BOOST_TEST(!pb.receive(quiet));
    BOOST_TEST(h.counters(a).rx_frames == 3u);
}

BOOST_AUTO_TEST_CASE(networks_are_isolated) {
    switch_harness h;
    auto red = h.add_network("red"), blue = h.add_network("blue");
    auto [r1, pr1] = h.add_port(red, port_kind::dgram);
    auto [r2, pr2] = h.add_port(red, port_kind::stream);
    auto [b1, pb1] = h.add_port(blue, port_kind::dgram);
    auto [b2, pb2] = h.add_port(blue, port_kind::stream);
    BOOST_REQUIRE(pr1.send(make_frame(broadcast_mac, test_mac(1))));
    BOOST_TEST(pr2.receive().has_value());
    // Blue learns test_mac(2) on b2; a red frame to that address still stays in red.
    BOOST_REQUIRE(pb2.send(make_frame(broadcast_mac, test_mac(2))));
    BOOST_TEST(pb1.receive().has_value());
    BOOST_REQUIRE(pr1.send(make_frame(test_mac(2), test_mac(1))));
    BOOST_TEST(pr2.receive().has_value());
    BOOST_TEST(!pb1.receive(quiet));
    BOOST_TEST(!pb2.receive(quiet));
    BOOST_TEST(h.counters(b1).tx_frames == 1u);  // blue's own broadcast only
    BOOST_TEST(h.counters(b2).tx_frames == 0u);
    // Removing a network closes its ports and leaves the other alone.
    h.call([&](auto& sw) { sw.remove_network(red); });
    BOOST_TEST(pr2.hung_up());
    BOOST_REQUIRE(pb1.send(make_frame(broadcast_mac, test_mac(3))));
    BOOST_TEST(pb2.receive().has_value());
}

BOOST_AUTO_TEST_CASE(frames_are_reframed_byte_for_byte_between_stream_and_datagram_ports) {
    switch_harness h({.max_frame_bytes = 9014});
    auto net = h.add_network("lan");
    auto [s, ps] = h.add_port(net, port_kind::stream);
    auto [d, pd] = h.add_port(net, port_kind::dgram);
    for (std::size_t size : {14u, 60u, 1514u, 9014u}) {
        auto from_stream = make_frame(broadcast_mac, test_mac(1), size, static_cast<std::uint32_t>(size));
        BOOST_REQUIRE(ps.send(from_stream));
        BOOST_TEST((pd.receive() == from_stream));
        auto from_dgram = make_frame(test_mac(1), test_mac(2), size, static_cast<std::uint32_t>(size + 1));
        BOOST_REQUIRE(pd.send(from_dgram));
        BOOST_TEST((ps.receive() == from_dgram));
    }
    // Many frames in one stream write come out as as many datagrams, in order.
    frame_bytes burst;
    std::vector<frame_bytes> frames;
    for (std::uint32_t i = 0; i < 100; ++i) {
        frames.push_back(make_frame(test_mac(2), test_mac(1), 60 + i * 13, i));
        auto& f = frames.back();
        for (int k = 24; k >= 0; k -= 8) burst.push_back(std::byte(f.size() >> k));
        burst.insert(burst.end(), f.begin(), f.end());
    }
    ps.send_raw(burst);
    for (auto& f : frames) BOOST_TEST((pd.receive() == f));
}

BOOST_AUTO_TEST_CASE(oversize_and_runt_frames_are_counted_and_dropped) {
    switch_harness h;  // 1514 bytes max
    auto net = h.add_network("lan");
    auto [d, pd] = h.add_port(net, port_kind::dgram);
    auto [s, ps] = h.add_port(net, port_kind::stream);
    auto [o, po] = h.add_port(net, port_kind::dgram);
    // Datagram port: one byte too many is dropped whole, never truncated to 1514.
    BOOST_REQUIRE(pd.send(make_frame(broadcast_mac, test_mac(1), 1515)));
    BOOST_REQUIRE(pd.send(make_frame(broadcast_mac, test_mac(1), 60000)));
    BOOST_REQUIRE(pd.send(make_frame(broadcast_mac, test_mac(1), 13)));
    auto ok = make_frame(broadcast_mac, test_mac(1), 1514, 7);
    BOOST_REQUIRE(pd.send(ok));
    BOOST_TEST((po.receive() == ok));
    BOOST_TEST(!po.receive(quiet));
    auto cd = h.counters(d);
    BOOST_TEST(cd.dropped(drop_reason::oversize) == 2u);
    BOOST_TEST(cd.dropped(drop_reason::runt) == 1u);
    BOOST_TEST(cd.rx_frames == 4u);
    // Stream port: an oversize frame is skipped and the stream stays usable.
    BOOST_REQUIRE(ps.send(make_frame(broadcast_mac, test_mac(2), 9014)));
    auto after = make_frame(broadcast_mac, test_mac(2), 100, 8);
    BOOST_REQUIRE(ps.send(after));
    BOOST_TEST((po.receive() == after));
    BOOST_TEST(!po.receive(quiet));
    BOOST_TEST(h.counters(s).dropped(drop_reason::oversize) == 1u);
}

BOOST_AUTO_TEST_CASE(broken_stream_framing_closes_the_port) {
    switch_harness h;
    auto net = h.add_network("lan");
    auto [s, ps] = h.add_port(net, port_kind::stream);
    auto [o, po] = h.add_port(net, port_kind::dgram);
    auto good = make_frame(broadcast_mac, test_mac(1), 64, 1);
    BOOST_REQUIRE(ps.send(good));
    ps.send_raw(frame_bytes(4, std::byte{0}));  // a zero length prefix
    BOOST_TEST((po.receive() == good));
    BOOST_TEST(ps.hung_up());
    BOOST_TEST(h.counters(s).dropped(drop_reason::malformed) == 1u);
    // The rest of the network carries on; the closed port gets nothing.
    auto [t, pt] = h.add_port(net, port_kind::dgram);
    BOOST_REQUIRE(po.send(make_frame(broadcast_mac, test_mac(2))));
    BOOST_TEST(pt.receive().has_value());
    BOOST_TEST(h.counters(s).tx_frames == 0u);
}

BOOST_AUTO_TEST_CASE(a_pinned_port_cannot_spoof_another_address) {
    switch_harness h;
    auto net = h.add_network("lan");
    auto [p, pp] = h.add_port(net, port_kind::dgram, {.name = "vm1", .pinned_mac = test_mac(1)});
    auto [o, po] = h.add_port(net, port_kind::dgram);
    BOOST_REQUIRE(pp.send(make_frame(broadcast_mac, test_mac(66))));
    BOOST_REQUIRE(pp.send(make_frame(broadcast_mac, vmrt::mac_address{{0x01, 0, 0x5e, 0, 0, 1}})));
    auto legit = make_frame(broadcast_mac, test_mac(1), 64, 5);
    BOOST_REQUIRE(pp.send(legit));
    BOOST_TEST((po.receive() == legit));
    BOOST_TEST(!po.receive(quiet));
    auto c = h.counters(p);
    BOOST_TEST(c.dropped(drop_reason::spoofed) == 2u);  // a group source is not the pinned one either
    BOOST_TEST(c.rx_frames == 3u);
}

BOOST_AUTO_TEST_CASE(a_port_can_write_a_pcap_file) {
    vmrt::test::temp_dir dir;
    auto file = dir / "port.pcap";
    {
        switch_harness h;
        auto net = h.add_network("lan");
        auto [p, pp] = h.add_port(net, port_kind::stream, {.name = "cap", .pcap = file});
        auto [o, po] = h.add_port(net, port_kind::dgram);
        for (std::uint32_t i = 0; i < 3; ++i)
            BOOST_REQUIRE(pp.send(make_frame(broadcast_mac, test_mac(1), 100, i)));
        BOOST_REQUIRE(po.send(make_frame(test_mac(1), test_mac(2), 200, 9)));
        BOOST_TEST(pp.receive().has_value());
        BOOST_TEST(po.drain().size() == 3u);
        h.remove_port(p);
    }
    std::ifstream in(file, std::ios::binary);
    std::string data((std::istreambuf_iterator<char>(in)), {});
    BOOST_TEST_REQUIRE(data.size() == 24u + 4 * 16 + 3 * 100 + 200);
    BOOST_TEST(data.substr(0, 4) == std::string("\xd4\xc3\xb2\xa1", 4));  // little-endian magic
    BOOST_TEST(data[20] == 1);                                            // LINKTYPE_ETHERNET
    // tcpdump (a test-only package, tools/setup) must read it and see the four frames, in order.
    std::string cmd = "tcpdump -nn -r " + file.string() + " 2>&1";
    FILE* out = ::popen(cmd.c_str(), "r");
    BOOST_TEST_REQUIRE(out != nullptr);
    std::string text;
    char buf[4096];
    for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, out)) > 0;) text.append(buf, n);
    int status = ::pclose(out);
    BOOST_TEST(WIFEXITED(status));
    BOOST_TEST(WEXITSTATUS(status) == 0);
    BOOST_TEST_MESSAGE(text);
    auto count = [&](const std::string& needle) {
        std::size_t n = 0;
        for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
        return n;
    };
    BOOST_TEST(count("link-type EN10MB (Ethernet)") == 1u);
    BOOST_TEST(count("52:54:00:5e:00:01 > ff:ff:ff:ff:ff:ff, ethertype Unknown (0x88b5), length 100") == 3u);
    BOOST_TEST(count("52:54:00:5e:00:02 > 52:54:00:5e:00:01, ethertype Unknown (0x88b5), length 200") == 1u);
}

BOOST_AUTO_TEST_CASE(bad_calls_are_refused_with_clear_errors) {
    switch_harness h;
    auto net = h.add_network("lan");
    BOOST_TEST((code_of([&] { h.add_network("lan"); }) == vmrt::errc::already_exists));
    BOOST_TEST((code_of([&] { h.add_network(""); }) == vmrt::errc::invalid_spec));
    BOOST_TEST((code_of([&] { h.add_port(99, port_kind::dgram); }) == vmrt::errc::not_found));
    BOOST_TEST((code_of([&] { h.add_port(net, port_kind::tap); }) == vmrt::errc::invalid_spec));
    BOOST_TEST((code_of([&] { h.remove_port(12345); }) == vmrt::errc::not_found));
    BOOST_TEST((code_of([&] { h.call([](auto& sw) { sw.remove_network(77); }); }) == vmrt::errc::not_found));
    // The fd must match the kind: a stream socket is no datagram port, a socket is no TAP.
    for (auto [type, kind] :
         {std::pair{SOCK_STREAM, port_kind::dgram}, std::pair{SOCK_DGRAM, port_kind::stream},
          std::pair{SOCK_DGRAM, port_kind::tap}}) {
        int fds[2];
        BOOST_REQUIRE(::socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, fds) == 0);
        vmrt::io::unique_fd keep(fds[1]);
        auto k = kind;
        BOOST_TEST((code_of([&] {
                        h.call([&](auto& sw) { return sw.add_port(net, vmrt::io::unique_fd(fds[0]), k); });
                    }) == vmrt::errc::invalid_spec));
    }
    auto pinned_to_group = vmrt::net::port_options{.pinned_mac = broadcast_mac};
    BOOST_TEST(
        (code_of([&] { h.add_port(net, port_kind::dgram, pinned_to_group); }) == vmrt::errc::invalid_spec));
    BOOST_TEST(!h.call([](auto& sw) { return sw.counters(4242); }).has_value());
    BOOST_TEST((code_of([] {
                    boost::asio::io_context ctx;
                    vmrt::net::l2_switch sw(ctx.get_executor(), {.max_frame_bytes = 70000});
                }) == vmrt::errc::invalid_spec));
}

BOOST_AUTO_TEST_SUITE_END()
