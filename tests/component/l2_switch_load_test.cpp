// The L2 switch under load, with real socketpairs: ports removed and added while a sender blasts
// frames, a peer that never reads (its frames are dropped and counted while the others keep
// exchanging at full speed), and a flood of random source addresses that must leave the MAC
// table bounded.
#include "support/switch_harness.hpp"

#include <boost/test/unit_test.hpp>

#include <atomic>
#include <optional>
#include <random>
#include <thread>

namespace {

using namespace std::chrono_literals;
using vmrt::net::drop_reason;
using vmrt::net::port_counters;
using vmrt::net::port_kind;
using vmrt::test::broadcast_mac;
using vmrt::test::make_frame;
using vmrt::test::peer;
using vmrt::test::switch_harness;
using vmrt::test::test_mac;

/// Sends broadcast frames from `p` until told to stop (from its own thread); counts those sent.
class blaster {
public:
    explicit blaster(peer& p)
        : thread_([this, &p] {
              auto f = make_frame(broadcast_mac, test_mac(1), 256);
              while (!stop_) {
                  if (p.try_send(f))
                      ++sent_;
                  else
                      std::this_thread::sleep_for(50us);
              }
          }) {}
    ~blaster() { stop(); }
    std::uint64_t stop() {
        stop_ = true;
        if (thread_.joinable()) thread_.join();
        return sent_;
    }
    std::uint64_t sent() const { return sent_; }

private:
    std::atomic<bool> stop_{false};
    std::atomic<std::uint64_t> sent_{0};
    std::thread thread_;
};

/// Reads everything a peer gets, from its own thread, until told to stop.
class sink {
public:
    explicit sink(peer& p)
        : thread_([this, &p] {
              while (!stop_)
                  if (p.receive(20ms)) ++received_;
          }) {}
    ~sink() { stop(); }
    std::uint64_t received() const { return received_; }
    std::uint64_t stop() {
        stop_ = true;
        if (thread_.joinable()) thread_.join();
        return received_;
    }

private:
    std::atomic<bool> stop_{false};
    std::atomic<std::uint64_t> received_{0};
    std::thread thread_;
};

}  // namespace

BOOST_AUTO_TEST_SUITE(l2_switch_load_test)

BOOST_AUTO_TEST_CASE(ports_come_and_go_while_traffic_flows) {
    switch_harness h;
    auto net = h.add_network("lan");
    auto [src, psrc] = h.add_port(net, port_kind::dgram);
    auto [keep, pkeep] = h.add_port(net, port_kind::stream);
    sink keep_sink(pkeep);
    blaster blast(psrc);
    std::vector<std::pair<vmrt::net::port_id, peer>> churn;
    for (int round = 0; round < 30; ++round) {
        churn.push_back(h.add_port(net, round % 2 ? port_kind::stream : port_kind::dgram));
        std::this_thread::sleep_for(5ms);
        if (churn.size() > 3) {
            auto [id, p] = std::move(churn.front());
            churn.erase(churn.begin());
            h.remove_port(id);
            // (An init-capture: clang 14 cannot capture a structured binding.)
            BOOST_TEST(!h.call([removed = id](auto& sw) { return sw.counters(removed); }).has_value());
            // Nothing reaches a removed port: once what was already in its socket is read, the
            // peer sees the switch's end closed (a stream) or simply nothing more (a datagram).
            auto before = p.drain(20ms).size();
            auto late = p.drain(50ms).size();
            BOOST_TEST(late == 0u, "round " << round << ": " << before << " then " << late);
        }
    }
    auto sent = blast.stop();
    BOOST_TEST(sent > 0u);
    // Everything the sender got through was received by the switch, and each of those frames
    // was either delivered to the port that stayed or, when its slow reader fell behind, dropped
    // and counted: none vanished, none was duplicated.
    BOOST_TEST(h.wait_for(src, [&](const port_counters& c) { return c.rx_frames == sent; }));
    BOOST_TEST(h.wait_for(keep, [&](const port_counters& c) {
        return c.tx_frames + c.dropped(drop_reason::backpressure) == sent;
    }));
    auto kept = h.counters(keep);
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (keep_sink.received() < kept.tx_frames && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(5ms);
    BOOST_TEST(keep_sink.stop() == kept.tx_frames);
    BOOST_TEST_MESSAGE("frames through while ports churned: " << sent << ", delivered to the slow reader: "
                                                              << kept.tx_frames);
    // Tear the switch down with ports still attached and the remaining peers open: the harness
    // checks that every coroutine ended.
}

BOOST_AUTO_TEST_CASE(a_peer_that_never_reads_loses_frames_and_stalls_nobody) {
    switch_harness h({.port_queue_bytes = 256 << 10});
    auto net = h.add_network("lan");
    auto [a, pa] = h.add_port(net, port_kind::dgram);
    auto [b, pb] = h.add_port(net, port_kind::dgram);
    auto [stuck, pstuck] = h.add_port(net, port_kind::dgram);
    // A broadcasts (so the stuck port gets everything too) in windows that B must fully receive
    // before the next: B never loses a frame although the stuck port's queue overflows.
    constexpr std::uint32_t windows = 400, window = 64;
    std::uint32_t tag = 0;
    for (std::uint32_t w = 0; w < windows; ++w) {
        for (std::uint32_t i = 0; i < window; ++i)
            BOOST_REQUIRE(pa.send(make_frame(broadcast_mac, test_mac(1), 1000, tag++)));
        for (std::uint32_t i = 0; i < window; ++i) {
            auto f = pb.receive();
            BOOST_REQUIRE_MESSAGE(f.has_value(), "B lost frames in window " << w);
            BOOST_REQUIRE(vmrt::test::frame_tag(*f) == w * window + i);
        }
        BOOST_REQUIRE(pb.send(make_frame(test_mac(1), test_mac(2), 64, w)));  // and B answers A
        auto reply = pa.receive();
        BOOST_REQUIRE(reply.has_value());
        BOOST_REQUIRE(vmrt::test::frame_tag(*reply) == w);
    }
    auto c = h.counters(stuck);
    BOOST_TEST(c.dropped(drop_reason::backpressure) > 0u);
    // Every frame meant for the stuck port is delivered into its socket, dropped, or still queued.
    BOOST_TEST(c.tx_frames + c.dropped(drop_reason::backpressure) <= windows * window);
    BOOST_TEST(c.tx_frames + c.dropped(drop_reason::backpressure) + (256 << 10) / 1004 >= windows * window);
    BOOST_TEST(h.counters(b).dropped(drop_reason::backpressure) == 0u);
    BOOST_TEST(h.counters(a).dropped(drop_reason::backpressure) == 0u);
    BOOST_TEST_MESSAGE("stuck port: " << c.tx_frames << " delivered, " << c.dropped(drop_reason::backpressure)
                                      << " dropped");
}

BOOST_AUTO_TEST_CASE(a_mac_flood_leaves_the_table_bounded) {
    switch_harness h({.mac_table_capacity = 256});
    auto net = h.add_network("lan");
    auto [a, pa] = h.add_port(net, port_kind::stream);
    auto [b, pb] = h.add_port(net, port_kind::dgram);
    sink b_sink(pb);
    std::mt19937_64 rng(1);
    constexpr std::uint32_t frames = 20000;
    for (std::uint32_t i = 0; i < frames; ++i) {
        auto r = rng();
        vmrt::mac_address src{{static_cast<std::uint8_t>(r & 0xfe), static_cast<std::uint8_t>(r >> 8),
                               static_cast<std::uint8_t>(r >> 16), static_cast<std::uint8_t>(r >> 24),
                               static_cast<std::uint8_t>(r >> 32), static_cast<std::uint8_t>(r >> 40)}};
        BOOST_REQUIRE(pa.send(make_frame(test_mac(200), src, 60, i)));
        if (i % 1000 == 0) BOOST_REQUIRE(h.call([&](auto& sw) { return sw.mac_table_size(net); }) <= 256u);
    }
    BOOST_TEST(h.wait_for(a, [&](const port_counters& c) { return c.rx_frames == frames; }));
    BOOST_TEST(h.call([&](auto& sw) { return sw.mac_table_size(net); }) == 256u);
}

BOOST_AUTO_TEST_CASE(the_switch_can_be_destroyed_while_frames_flow) {
    // The senders outlive the switch: it is torn down under full load, with frames queued and
    // coroutines mid-batch. The harness's destructor fails the test unless every coroutine ends.
    std::optional<peer> src_peer, stream_peer;
    std::optional<blaster> blast, stream_blast;
    {
        switch_harness h({.port_queue_bytes = 64 << 10});
        auto net = h.add_network("lan");
        src_peer.emplace(h.add_port(net, port_kind::dgram).second);
        stream_peer.emplace(h.add_port(net, port_kind::stream).second);
        auto [slow, pslow] = h.add_port(net, port_kind::dgram);  // never read: its queue stays full
        blast.emplace(*src_peer);
        stream_blast.emplace(*stream_peer);
        std::this_thread::sleep_for(300ms);
        BOOST_TEST(h.counters(slow).dropped(drop_reason::backpressure) > 0u);
    }
    BOOST_TEST(blast->stop() > 0u);
    BOOST_TEST(stream_blast->stop() > 0u);
}

BOOST_AUTO_TEST_SUITE_END()
