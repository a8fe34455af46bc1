// tap_device against the real kernel: every test makes a network namespace of its own (deleted
// with everything in it, also on failure), opens TAP devices inside it and checks what `ip` sees
// there and in the caller's namespace, that frames pass through the fd in both directions with a
// virtio-net header, and who keeps a created device alive. Needs root and /dev/net/tun.
#include "support/netns_guard.hpp"
#include "support/test_support.hpp"

#include <vmrt/io/process.hpp>
#include <vmrt/net/tap_device.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/test/unit_test.hpp>

#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using vmrt::net::tap_device;
using vmrt::net::tap_options;
using vmrt::test::netns_guard;
using vmrt::test::strings;

ino_t inode_of(const std::string& path) {
    struct stat st {};
    BOOST_REQUIRE_MESSAGE(::stat(path.c_str(), &st) == 0, "stat " << path << ": " << std::strerror(errno));
    return st.st_ino;
}

ino_t my_netns() { return inode_of("/proc/thread-self/ns/net"); }

bool exists_in(const netns_guard& ns, const std::string& dev) {
    return ns.try_ip("link", "show", dev).first == 0;
}

bool exists_in_caller_ns(const std::string& dev) {
    return vmrt::test::run_to_end("ip", strings("link", "show", dev)).first == 0;
}

/// The flags `ip link show` prints between '<' and '>', e.g. "BROADCAST,MULTICAST,UP,LOWER_UP".
std::string link_flags(const netns_guard& ns, const std::string& dev) {
    const std::string out = ns.ip("link", "show", dev);
    const auto open = out.find('<');
    const auto close = out.find('>', open);
    BOOST_REQUIRE(open != std::string::npos && close != std::string::npos);
    return "," + out.substr(open + 1, close - open - 1) + ",";
}

bool is_up(const netns_guard& ns, const std::string& dev) {
    return link_flags(ns, dev).find(",UP,") != std::string::npos;
}

/// Polls `condition` until it holds or `limit` passes; returns how long it took.
template <typename Condition>
std::optional<std::chrono::steady_clock::duration> wait_until(Condition condition,
                                                              std::chrono::milliseconds limit = 3000ms) {
    const auto start = std::chrono::steady_clock::now();
    while (!condition()) {
        if (std::chrono::steady_clock::now() - start > limit) return std::nullopt;
        std::this_thread::sleep_for(5ms);
    }
    return std::chrono::steady_clock::now() - start;
}

/// Runs open() and returns its vmrt::error, failing the test if it succeeds or throws anything else.
vmrt::error open_error(const tap_options& opts) {
    try {
        tap_device::open(opts);
    } catch (const vmrt::error& e) {
        return e;
    }
    BOOST_FAIL("tap_device::open succeeded for " << opts.name);
    throw std::logic_error("unreachable");
}

void check_error(const tap_options& opts, vmrt::error_code expected,
                 std::initializer_list<const char*> words) {
    const ino_t before = my_netns();
    const auto e = open_error(opts);
    BOOST_TEST(e.code() == expected, "code " << e.code().message() << ", expected " << expected.message());
    for (const char* w : words)
        BOOST_TEST(e.diag().message.find(w) != std::string::npos,
                   '"' << w << "\" not in: " << e.diag().message);
    BOOST_TEST(my_netns() == before);
}

vmrt::error_code sys(int err) { return {err, boost::system::system_category()}; }

// The virtio-net header that IFF_VNET_HDR puts before every frame (10 bytes unless
// TUNSETVNETHDRSZ says otherwise; all zero: no checksum offload, no GSO).
constexpr std::size_t vnet_hdr_size = 10;

/// Reads frames from the tap until one satisfies `match` (or 3 s pass); the frame without its
/// virtio-net header.
template <typename Match>
std::optional<std::vector<std::uint8_t>> read_frame(int fd, Match match) {
    const auto deadline = std::chrono::steady_clock::now() + 3s;
    std::array<std::uint8_t, 65536> buffer{};
    while (std::chrono::steady_clock::now() < deadline) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 100) != 1) continue;
        const ssize_t n = ::read(fd, buffer.data(), buffer.size());
        if (n < static_cast<ssize_t>(vnet_hdr_size)) continue;
        std::vector<std::uint8_t> frame(buffer.begin() + vnet_hdr_size, buffer.begin() + n);
        if (match(frame)) return frame;
    }
    return std::nullopt;
}

bool is_arp_request_for(const std::vector<std::uint8_t>& f, std::array<std::uint8_t, 4> target) {
    return f.size() >= 42 && f[12] == 0x08 && f[13] == 0x06 && f[20] == 0 && f[21] == 1 &&
           std::memcmp(f.data() + 38, target.data(), 4) == 0;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(tap_device_test)

BOOST_AUTO_TEST_CASE(creates_an_up_device_in_the_namespace_without_moving_the_caller) {
    netns_guard ns("vmrt-tap");
    const ino_t before = my_netns();
    auto tap = tap_device::open({.name = "vmrttap0", .netns = ns.name()});
    BOOST_TEST(my_netns() == before);
    BOOST_TEST(tap.created());
    BOOST_TEST(tap.fd() >= 0);
    BOOST_TEST(tap.name() == "vmrttap0");
    BOOST_TEST(tap.netns().value_or("") == ns.name());
    BOOST_TEST(exists_in(ns, "vmrttap0"));
    BOOST_TEST(is_up(ns, "vmrttap0"), link_flags(ns, "vmrttap0"));
    BOOST_TEST(!exists_in_caller_ns("vmrttap0"));

    // The fd belongs to the device in that namespace, with the flags asked for, not persistent.
    vmrt::io::unique_fd devns(::ioctl(tap.fd(), TUNGETDEVNETNS));
    BOOST_TEST_REQUIRE(bool(devns));
    struct stat st {};
    BOOST_TEST_REQUIRE(::fstat(devns.get(), &st) == 0);
    BOOST_TEST(st.st_ino == inode_of("/run/netns/" + ns.name()));
    ifreq ifr{};
    BOOST_TEST_REQUIRE(::ioctl(tap.fd(), TUNGETIFF, &ifr) == 0);
    BOOST_TEST(std::string(ifr.ifr_name) == "vmrttap0");
    BOOST_TEST((ifr.ifr_flags & IFF_TAP) != 0);
    BOOST_TEST((ifr.ifr_flags & IFF_VNET_HDR) != 0);
    BOOST_TEST((ifr.ifr_flags & IFF_PERSIST) == 0);
    BOOST_TEST((::fcntl(tap.fd(), F_GETFD) & FD_CLOEXEC) != 0);

    // Nobody else holds it: closing our fd deletes it at once.
    tap = tap_device();
    BOOST_TEST(!exists_in(ns, "vmrttap0"));
}

BOOST_AUTO_TEST_CASE(without_vnet_hdr_the_flag_is_off) {
    netns_guard ns("vmrt-tap");
    auto tap = tap_device::open({.name = "vmrttap0", .netns = ns.name(), .vnet_hdr = false});
    ifreq ifr{};
    BOOST_TEST_REQUIRE(::ioctl(tap.fd(), TUNGETIFF, &ifr) == 0);
    BOOST_TEST((ifr.ifr_flags & IFF_VNET_HDR) == 0);
    BOOST_TEST(!tap.vnet_hdr());
}

BOOST_AUTO_TEST_CASE(frames_pass_through_the_fd_with_a_virtio_net_header) {
    netns_guard ns("vmrt-tap");
    auto tap = tap_device::open({.name = "vmrttap0", .netns = ns.name()});
    ns.ip("addr", "add", "10.201.0.1/24", "dev", "vmrttap0");

    // Kernel -> fd: a datagram to a neighbour on the tap's subnet makes the namespace's kernel ask
    // for its address with an ARP request out of the tap. (bash's /dev/udp: no extra tool needed.)
    auto [code, output] = vmrt::test::run_to_end(
        "ip", strings("netns", "exec", ns.name(), "bash", "-c", "echo x > /dev/udp/10.201.0.2/9"));
    BOOST_TEST_REQUIRE(code == 0, output);
    const auto request = read_frame(tap.fd(), [](const auto& f) {
        return is_arp_request_for(f, {10, 201, 0, 2});
    });
    BOOST_TEST_REQUIRE(request.has_value(), "no ARP request for 10.201.0.2 came out of the tap");

    // fd -> kernel: answer it; the namespace's neighbour table must learn the address.
    const std::array<std::uint8_t, 6> peer{0x02, 0x00, 0x00, 0xaa, 0xbb, 0xcc};
    std::vector<std::uint8_t> reply(vnet_hdr_size + 42, 0);
    std::uint8_t* f = reply.data() + vnet_hdr_size;
    std::memcpy(f, request->data() + 6, 6);  // to the tap's MAC
    std::memcpy(f + 6, peer.data(), 6);
    const std::uint8_t arp_reply_header[] = {0x08, 0x06, 0, 1, 0x08, 0x00, 6, 4, 0, 2};
    std::memcpy(f + 12, arp_reply_header, sizeof arp_reply_header);
    std::memcpy(f + 22, peer.data(), 6);            // sender MAC
    std::memcpy(f + 28, request->data() + 38, 4);   // sender IP: 10.201.0.2
    std::memcpy(f + 32, request->data() + 22, 10);  // target MAC + IP: the requester
    BOOST_TEST_REQUIRE(::write(tap.fd(), reply.data(), reply.size()) == static_cast<ssize_t>(reply.size()));
    const auto learned = wait_until([&] {
        return ns.ip("neigh", "show", "10.201.0.2", "dev", "vmrttap0").find("02:00:00:aa:bb:cc") !=
               std::string::npos;
    });
    BOOST_TEST(learned.has_value(), ns.ip("neigh", "show", "dev", "vmrttap0"));
}

BOOST_AUTO_TEST_CASE(a_dup_held_by_a_child_keeps_a_created_device_until_the_child_exits) {
    netns_guard ns("vmrt-tap");
    boost::asio::io_context ctx;
    vmrt::io::process child;
    {
        auto tap = tap_device::open({.name = "vmrttap0", .netns = ns.name()});
        BOOST_TEST_REQUIRE(tap.created());
        auto vmm_copy = tap.dup_fd();  // what a VMM gets (CH: --net fd=N)
        vmrt::io::process_options opts;
        opts.program = "sleep";
        opts.args = strings("60");
        opts.inherited_fds = {vmm_copy.get()};
        child = vmrt::io::process::spawn(ctx.get_executor(), opts);
    }  // our fd and our copy of the dup are closed here
    // Give a deletion a chance to happen before concluding it did not.
    std::this_thread::sleep_for(200ms);
    BOOST_TEST(exists_in(ns, "vmrttap0"), "the device vanished while the child still held its fd");

    const auto killed_at = std::chrono::steady_clock::now();
    child.kill_and_reap();
    const auto gone = wait_until([&] { return !exists_in(ns, "vmrttap0"); });
    BOOST_TEST_REQUIRE(gone.has_value(), "the device outlived the last holder of its fd");
    using milliseconds = std::chrono::duration<double, std::milli>;
    const double after_ms = milliseconds(std::chrono::steady_clock::now() - killed_at).count();
    BOOST_TEST_MESSAGE("device gone " << after_ms
                                      << " ms after SIGKILL of the holder (polled with `ip link show`)");
}

BOOST_AUTO_TEST_CASE(a_persistent_tap_is_attached_to_and_survives) {
    netns_guard ns("vmrt-tap");
    ns.ip("tuntap", "add", "dev", "vmrtpers0", "mode", "tap");
    {
        auto tap = tap_device::open({.name = "vmrtpers0", .netns = ns.name()});
        BOOST_TEST(!tap.created());
        ifreq ifr{};
        BOOST_TEST_REQUIRE(::ioctl(tap.fd(), TUNGETIFF, &ifr) == 0);
        BOOST_TEST((ifr.ifr_flags & IFF_PERSIST) != 0);
        // Its owner's configuration is left alone: it was created down and stays down.
        BOOST_TEST(!is_up(ns, "vmrtpers0"));
    }
    BOOST_TEST(exists_in(ns, "vmrtpers0"));
    // And it can be attached to again.
    auto again = tap_device::open({.name = "vmrtpers0", .netns = ns.name()});
    BOOST_TEST(!again.created());
}

BOOST_AUTO_TEST_CASE(a_missing_namespace_is_not_found) {
    const std::string absent = "vmrt-tap-absent-" + std::to_string(::getpid());
    check_error({.name = "vmrttap0", .netns = absent}, vmrt::errc::not_found,
                {absent.c_str(), "/run/netns/"});
}

BOOST_AUTO_TEST_CASE(bad_names_are_refused) {
    netns_guard ns("vmrt-tap");
    for (const char* bad : {"", "0123456789abcdef", "a/b", "a b", "a:1", ".", ".."})
        check_error({.name = bad, .netns = ns.name()}, vmrt::errc::invalid_spec, {"invalid TAP device name"});
    for (const char* bad : {"", ".", "..", "../x", "a/b"})
        check_error({.name = "vmrttap0", .netns = std::string(bad)}, vmrt::errc::invalid_spec,
                    {"invalid network namespace name"});
}

BOOST_AUTO_TEST_CASE(an_existing_interface_that_is_not_a_tap_is_refused) {
    netns_guard ns("vmrt-tap");
    ns.ip("link", "add", "vmrtbr0", "type", "bridge");  // no dummy module on this kernel
    ns.ip("tuntap", "add", "dev", "vmrttun0", "mode", "tun");
    for (const char* name : {"lo", "vmrtbr0", "vmrttun0"}) {
        check_error({.name = name, .netns = ns.name()}, sys(EINVAL), {name, ns.name().c_str(), "not a TAP"});
        BOOST_TEST(exists_in(ns, name), name << " was harmed");
    }
}

BOOST_AUTO_TEST_CASE(a_tap_held_by_someone_else_is_busy) {
    netns_guard ns("vmrt-tap");
    auto first = tap_device::open({.name = "vmrttap0", .netns = ns.name()});
    check_error({.name = "vmrttap0", .netns = ns.name()}, sys(EBUSY), {"vmrttap0", "already attached"});
    BOOST_TEST(exists_in(ns, "vmrttap0"));
}

BOOST_AUTO_TEST_CASE(multi_queue_opens_more_queues_in_the_same_namespace) {
    netns_guard ns("vmrt-tap");
    const ino_t before = my_netns();
    auto tap = tap_device::open({.name = "vmrtmq0", .netns = ns.name(), .multi_queue = true});
    BOOST_TEST(tap.created());
    auto second = tap.open_queue();
    BOOST_TEST(my_netns() == before);
    ifreq ifr{};
    BOOST_TEST_REQUIRE(::ioctl(second.get(), TUNGETIFF, &ifr) == 0);
    BOOST_TEST(std::string(ifr.ifr_name) == "vmrtmq0");
    BOOST_TEST((ifr.ifr_flags & IFF_MULTI_QUEUE) != 0);
    // The device lives while any queue is open.
    tap = tap_device();
    BOOST_TEST(exists_in(ns, "vmrtmq0"));
    second.reset();
    BOOST_TEST(wait_until([&] { return !exists_in(ns, "vmrtmq0"); }).has_value());

    auto single = tap_device::open({.name = "vmrtsq0", .netns = ns.name()});
    try {
        single.open_queue();
        BOOST_FAIL("open_queue on a single-queue device succeeded");
    } catch (const vmrt::error& e) {
        BOOST_TEST((e.code() == vmrt::errc::invalid_state));
    }
}

BOOST_AUTO_TEST_SUITE_END()
