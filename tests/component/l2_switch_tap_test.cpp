// A TAP port carries frames between the switch and a real network stack: the test creates a
// network namespace, a TAP device inside it (vmrt::net::tap_device),
// gives the device an IPv4 address there, and an ARP request sent from a datagram port must come
// back answered by the namespace's kernel through the switch. Needs root and /dev/net/tun; the
// namespace (and with it the TAP) is deleted even when the test fails.
#include "support/netns_guard.hpp"
#include "support/switch_harness.hpp"

#include <vmrt/net/tap_device.hpp>

#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <thread>

namespace {

using namespace std::chrono_literals;
using vmrt::net::port_kind;
using vmrt::test::broadcast_mac;
using vmrt::test::frame_bytes;
using vmrt::test::netns_guard;
using vmrt::test::switch_harness;
using vmrt::test::test_mac;

/// Opens a new TUN device (IP packets, no Ethernet header) inside the namespace, from a thread
/// that enters it: the switch must refuse it as a TAP port. tap_device only makes TAPs.
vmrt::io::unique_fd open_tun_in(const netns_guard& ns, const std::string& dev) {
    vmrt::io::unique_fd tun;
    std::string failure;
    std::thread([&] {
        vmrt::io::unique_fd nsfd(::open(("/run/netns/" + ns.name()).c_str(), O_RDONLY | O_CLOEXEC));
        if (!nsfd || ::setns(nsfd.get(), CLONE_NEWNET) != 0) {
            failure = std::string("setns: ") + std::strerror(errno);
            return;
        }
        vmrt::io::unique_fd fd(::open("/dev/net/tun", O_RDWR | O_CLOEXEC));
        ifreq ifr{};
        ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
        std::strncpy(ifr.ifr_name, dev.c_str(), IFNAMSIZ - 1);
        if (!fd || ::ioctl(fd.get(), TUNSETIFF, &ifr) != 0) {
            failure = std::string("/dev/net/tun TUNSETIFF: ") + std::strerror(errno);
            return;
        }
        tun = std::move(fd);
    }).join();
    BOOST_REQUIRE_MESSAGE(failure.empty(), failure);
    return tun;
}

frame_bytes arp_request(const vmrt::mac_address& sender, std::array<std::uint8_t, 4> sender_ip,
                        std::array<std::uint8_t, 4> target_ip) {
    frame_bytes f(42);
    auto put = [&](std::size_t at, std::initializer_list<std::uint8_t> bytes) {
        for (auto b : bytes) f[at++] = std::byte(b);
    };
    for (std::size_t i = 0; i < 6; ++i) {
        f[i] = std::byte(0xff);
        f[6 + i] = f[22 + i] = std::byte(sender.octets[i]);
    }
    put(12, {0x08, 0x06});                    // ARP
    put(14, {0, 1, 0x08, 0x00, 6, 4, 0, 1});  // Ethernet/IPv4, request
    for (std::size_t i = 0; i < 4; ++i) {
        f[28 + i] = std::byte(sender_ip[i]);
        f[38 + i] = std::byte(target_ip[i]);
    }
    return f;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(l2_switch_tap_test)

BOOST_AUTO_TEST_CASE(an_arp_request_is_answered_by_a_namespace_behind_a_tap_port) {
    netns_guard ns("vmrt-sw");
    // The switch moves plain Ethernet frames: no virtio-net header. tap_device brings it up.
    auto tap_dev = vmrt::net::tap_device::open({.name = "vmrtsw0", .netns = ns.name(), .vnet_hdr = false});
    BOOST_TEST_REQUIRE(tap_dev.created());
    vmrt::io::unique_fd tap = tap_dev.release_fd();
    ns.ip("addr", "add", "10.199.0.1/24", "dev", "vmrtsw0");

    switch_harness h;
    auto net = h.add_network("lan");
    auto tap_port =
        h.call([&](auto& sw) { return sw.add_port(net, std::move(tap), port_kind::tap, {.name = "tap"}); });
    auto [vm, pvm] = h.add_port(net, port_kind::dgram);
    const auto vm_mac = test_mac(7);
    // The kernel may also send its own frames (IPv6 router solicitations...): look for the reply.
    std::optional<frame_bytes> reply;
    for (int attempt = 0; attempt < 5 && !reply; ++attempt) {
        BOOST_REQUIRE(pvm.send(arp_request(vm_mac, {10, 199, 0, 2}, {10, 199, 0, 1})));
        auto deadline = std::chrono::steady_clock::now() + 1s;
        while (!reply && std::chrono::steady_clock::now() < deadline) {
            auto f = pvm.receive(200ms);
            if (f && f->size() >= 42 && (*f)[12] == std::byte(0x08) && (*f)[13] == std::byte(0x06) &&
                (*f)[21] == std::byte(2))
                reply = f;
        }
    }
    BOOST_TEST_REQUIRE(reply.has_value());
    // Addressed to the VM, from the TAP's address, saying 10.199.0.1 is there.
    for (std::size_t i = 0; i < 6; ++i) BOOST_TEST(std::to_integer<int>((*reply)[i]) == vm_mac.octets[i]);
    BOOST_TEST(std::to_integer<int>((*reply)[28]) == 10);
    BOOST_TEST(std::to_integer<int>((*reply)[31]) == 1);
    BOOST_TEST(std::memcmp(reply->data() + 6, reply->data() + 22, 6) == 0);
    auto c = h.counters(tap_port);
    BOOST_TEST(c.tx_frames >= 1u);  // the request went out through the TAP
    BOOST_TEST(c.rx_frames >= 1u);  // and the reply came in through it
}

BOOST_AUTO_TEST_CASE(a_tun_or_unattached_fd_is_refused_as_a_tap_port) {
    netns_guard ns("vmrt-sw");
    switch_harness h;
    auto net = h.add_network("lan");
    // Opened but not attached to a device: refused.
    vmrt::io::unique_fd bare(::open("/dev/net/tun", O_RDWR | O_CLOEXEC));
    BOOST_REQUIRE(bare);
    BOOST_CHECK_THROW(h.call([&](auto& sw) { return sw.add_port(net, std::move(bare), port_kind::tap); }),
                      vmrt::error);
    // A TUN device (IP packets, no Ethernet header) would mangle every frame: refused. (A TAP
    // without IFF_NO_PI cannot be told apart here: this kernel's TUNGETIFF reports IFF_NO_PI
    // whether or not the fd was opened with it, so that case is not tested.)
    vmrt::io::unique_fd tun = open_tun_in(ns, "vmrtsw1");
    BOOST_CHECK_THROW(h.call([&](auto& sw) { return sw.add_port(net, std::move(tun), port_kind::tap); }),
                      vmrt::error);
    // A TAP with a virtio-net header before every frame (what a VMM wants) is not a switch port.
    auto vnet = vmrt::net::tap_device::open({.name = "vmrtsw2", .netns = ns.name(), .vnet_hdr = true});
    BOOST_CHECK_THROW(h.call([&](auto& sw) { return sw.add_port(net, vnet.release_fd(), port_kind::tap); }),
                      vmrt::error);
}

BOOST_AUTO_TEST_SUITE_END()
