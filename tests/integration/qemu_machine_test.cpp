// Real guests: the machine a spec describes, as the guest sees it (vCPUs, memory, disks on two
// buses, MAC addresses, firmware), changed at runtime (vCPU hotplug), reached without a network
// (the control channel) and wired to each other through socketpair NICs. Every check reads what
// the default guest reports on its console (vmrs.report=1, VMRS_CPUS, VMRS_PING) or answers on its
// control channel.
#include "guest_fixture.hpp"
#include "support/test_support.hpp"

#include <vmrt/vm_manager.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/test/unit_test.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <fstream>

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using vmrt::test::contains;
using vmrt::test::has_line;
using vmrt::test::lines_starting;
using vmrt::test::run_coro;

namespace {

constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);

// A sparse raw disk of `mib` MiB (its content does not matter: the guest only lists it).
fs::path raw_disk(const fs::path& file, std::uintmax_t mib) {
    { std::ofstream create(file, std::ios::binary); }
    fs::resize_file(file, mib << 20);
    return file;
}

// Both ends of a socketpair, closed with the test: each VM's QEMU inherits its own copy.
struct socket_pair {
    int fds[2] = {-1, -1};
    explicit socket_pair(int type) {
        BOOST_TEST_REQUIRE(::socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, fds) == 0);
    }
    ~socket_pair() {
        for (int fd : fds)
            if (fd >= 0) ::close(fd);
    }
};

struct fixture : vmrt::test::guest_fixture {
    // Waits (up to `limit`) until the console of `vm` has the line `wanted`.
    asio::awaitable<bool> console_shows(std::string vm, std::string wanted, std::chrono::seconds limit) {
        asio::steady_timer tick(co_await asio::this_coro::executor);
        for (auto until = std::chrono::steady_clock::now() + limit;
             std::chrono::steady_clock::now() < until;) {
            if (has_line(console(vm), wanted)) co_return true;
            tick.expires_after(200ms);
            co_await tick.async_wait(tuple_awaitable);
        }
        co_return has_line(console(vm), wanted);
    }

    // Two guests joined by one socketpair NIC each (nothing else on that wire); the second pings
    // the first.
    void ping_over_socketpair(int type, vmrt::nic_kind kind, const std::string& prefix) {
        socket_pair wire(type);
        auto a = spec(prefix + "-a", "vmrs.ip=10.0.5.1/24");
        auto b = spec(prefix + "-b", "vmrs.ip=10.0.5.2/24 vmrs.ping=10.0.5.1");
        a.networks.push_back({.kind = kind, .fd = wire.fds[0]});
        b.networks.push_back({.kind = kind, .fd = wire.fds[1]});
        std::vector<vmrt::vm_spec> both;
        both.push_back(a);
        both.push_back(b);
        run_coro(
            ctx,
            [&]() -> asio::awaitable<void> {
                co_await boot(both);
                // The ping runs after READY (it waits for its peer): give it time.
                asio::steady_timer tick(ctx);
                for (int i = 0; i < 150 && !contains(console(b.name), "VMRS_PING"); ++i) {
                    tick.expires_after(200ms);
                    co_await tick.async_wait(tuple_awaitable);
                }
                auto text = console(b.name);
                BOOST_TEST_MESSAGE(prefix << ":" << lines_starting(text, "VMRS_PING"));
                BOOST_TEST(contains(text, "VMRS_PING 10.0.5.1: 3 packets transmitted, 3 packets received"),
                           text);
                co_await manager->async_kill(a.name, tuple_awaitable);
                co_await manager->async_kill(b.name, tuple_awaitable);
            },
            150s);
    }
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(qemu_machine_test, fixture)

BOOST_AUTO_TEST_CASE(the_guest_gets_the_machine_its_spec_describes) {
    auto s = spec("shape", "vmrs.report=1 vmrs.ip=10.0.2.15/24");
    s.cpus = 2;
    s.memory_mib = 384;
    s.root_disk = vmrt::disk_spec{.path = raw_disk(dir / "root.img", 4), .cache = vmrt::disk_cache::none};
    s.data_disks.push_back({.path = raw_disk(dir / "fast.img", 16), .interface = vmrt::disk_interface::nvme});
    s.data_disks.push_back({.path = raw_disk(dir / "frozen.img", 8),
                            .read_only = true,
                            .cache = vmrt::disk_cache::writethrough});
    s.networks.push_back(
        {.kind = vmrt::nic_kind::user, .mac = vmrt::mac_address::parse("52:54:00:ab:cd:01")});
    s.networks[0].isolated = true;
    run_coro(
        ctx,
        [&]() -> asio::awaitable<void> {
            co_await boot(s);
            auto text = console("shape");
            BOOST_TEST_MESSAGE("shape:" << lines_starting(text, "VMRS_"));
            BOOST_TEST(has_line(text, "VMRS_CPUS 2"), text);
            BOOST_TEST(has_line(text, "VMRS_FIRMWARE bios"), text);
            BOOST_TEST(has_line(text, "VMRS_MAC eth0 52:54:00:ab:cd:01"), text);
            BOOST_TEST(has_line(text, "VMRS_BLOCK nvme0n1 32768 ro=0"), text);  // 16 MiB in sectors
            BOOST_TEST(has_line(text, "VMRS_BLOCK vda 8192 ro=0"), text);       // the root disk: first
            BOOST_TEST(has_line(text, "VMRS_BLOCK vdb 16384 ro=1"), text);      // 8 MiB, read-only
            // MemTotal is RAM less what the kernel keeps for itself: most of the 384 MiB.
            auto memtotal = lines_starting(text, "VMRS_MEMTOTAL ");
            BOOST_TEST_REQUIRE(!memtotal.empty(), text);
            const auto kb = std::stoull(memtotal.substr(memtotal.rfind(' ') + 1));
            BOOST_TEST(kb > 300u * 1024, kb);
            BOOST_TEST(kb <= 384u * 1024, kb);

            // The manager's view while it runs, and after: listed, then forgotten with its files.
            auto listed = manager->list();
            BOOST_TEST_REQUIRE(listed.size() == 1u);
            BOOST_TEST(std::holds_alternative<vmrt::state::ready>(listed[0].state));
            BOOST_TEST((std::get<vmrt::state::ready>(listed[0].state).ip ==
                        std::optional<std::string>("10.0.2.15")));
            const auto run_dir = listed[0].run_dir;
            BOOST_TEST((manager->remove("shape") == vmrt::errc::invalid_state));
            co_await stop_clean("shape");
            BOOST_TEST(!manager->remove("shape").failed());
            BOOST_TEST(!manager->state("shape").has_value());
            BOOST_TEST(!fs::exists(run_dir), run_dir);
        },
        120s);
}

BOOST_AUTO_TEST_CASE(vcpus_are_hot_added_and_removed) {
    auto s = spec("elastic");
    s.cpus = 1;
    s.max_cpus = 2;
    run_coro(
        ctx,
        [&]() -> asio::awaitable<void> {
            co_await boot(s);
            auto [ec, now] = co_await manager->async_resize_vcpus("elastic", 2, tuple_awaitable);
            BOOST_TEST_REQUIRE(!ec, ec.message());
            BOOST_TEST(now == 2u);
            // The guest brings the new vCPU online itself and says so.
            BOOST_TEST(co_await console_shows("elastic", "VMRS_CPUS 2", 30s), console("elastic"));

            // Unplug: completes once the guest has released the vCPU.
            auto [ec2, now2] = co_await manager->async_resize_vcpus("elastic", 1, tuple_awaitable);
            BOOST_TEST_REQUIRE(!ec2, ec2.message());
            BOOST_TEST(now2 == 1u);
            BOOST_TEST(co_await console_shows("elastic", "VMRS_CPUS 1", 30s), console("elastic"));
            BOOST_TEST_MESSAGE("elastic:" << lines_starting(console("elastic"), "VMRS_CPUS"));

            // Beyond max_cpus: refused before QEMU is asked.
            auto [bad, ignored] = co_await manager->async_resize_vcpus("elastic", 3, tuple_awaitable);
            BOOST_TEST((bad == vmrt::errc::invalid_spec), bad.message());
            co_await stop_clean("elastic");
        },
        150s);
}

BOOST_AUTO_TEST_CASE(uefi_boot_with_debian_ovmf_keeps_its_variable_store) {
    // No firmware named: the backend's default (Debian's OVMF). The store does not exist yet: it
    // is created from OVMF's template and kept for the next boot.
    auto s = spec("firmware", "vmrs.report=1");
    s.boot = vmrt::boot_mode::uefi;
    s.efi_variable_store = dir / "vars.fd";
    run_coro(
        ctx,
        [&]() -> asio::awaitable<void> {
            const auto t0 = std::chrono::steady_clock::now();
            co_await boot(s);
            BOOST_TEST_MESSAGE("UEFI boot to Ready: "
                               << std::chrono::duration_cast<std::chrono::milliseconds>(
                                      std::chrono::steady_clock::now() - t0)
                                      .count()
                               << " ms");
            BOOST_TEST(has_line(console("firmware"), "VMRS_FIRMWARE efi"), console("firmware"));
            BOOST_TEST(fs::is_regular_file(dir / "vars.fd"));
            BOOST_TEST(fs::file_size(dir / "vars.fd") == fs::file_size("/usr/share/OVMF/OVMF_VARS_4M.fd"));
            co_await stop_clean("firmware");
            BOOST_TEST(fs::is_regular_file(dir / "vars.fd"), "the variable store must outlive the VM");
        },
        180s);
}

BOOST_AUTO_TEST_CASE(the_control_channel_answers_the_host) {
    auto s = spec("talk", "vmrs.ip=10.0.9.9/24 vmrs.hostname=talker");
    s.control_channel = true;
    // Built outside the coroutine: GCC 12 rejects braced lists of literals inside one.
    std::vector<std::pair<std::string, std::string>> exchanges{{"ping", "pong"},
                                                               {"ready", "ready 10.0.9.9"},
                                                               {"hostname", "hostname talker"},
                                                               {"cpus", "cpus 1"},
                                                               {"reboot", "error unknown request"}};
    run_coro(
        ctx,
        [&]() -> asio::awaitable<void> {
            co_await boot(s);
            const auto path = manager->info("talk")->control_socket;
            BOOST_TEST_REQUIRE(!path.empty());
            asio::local::stream_protocol::socket sock(ctx);
            auto [cec] = co_await sock.async_connect(path.string(), tuple_awaitable);
            BOOST_TEST_REQUIRE(!cec, cec.message() << " " << path);
            asio::streambuf in;
            for (auto& [request, expected] : exchanges) {
                const std::string line = request + "\n";
                auto [wec, wn] = co_await asio::async_write(sock, asio::buffer(line), tuple_awaitable);
                BOOST_TEST_REQUIRE(!wec, wec.message());
                // The guest polls for a host connection once a second: allow for it, and no more.
                asio::steady_timer limit(ctx, 10s);
                limit.async_wait([&](auto e) {
                    if (!e) sock.cancel();
                });
                auto [rec, rn] = co_await asio::async_read_until(sock, in, '\n', tuple_awaitable);
                limit.cancel();
                BOOST_TEST_REQUIRE(!rec, request << ": " << rec.message());
                std::string answer(asio::buffers_begin(in.data()), asio::buffers_begin(in.data()) + rn - 1);
                in.consume(rn);
                BOOST_TEST(answer == expected, request);
            }
            sock.close();
            co_await stop_clean("talk");
            BOOST_TEST(!fs::exists(path), "the control socket must go with the VM");
        },
        120s);
}

BOOST_AUTO_TEST_CASE(two_guests_on_a_stream_socketpair_ping_each_other) {
    ping_over_socketpair(SOCK_STREAM, vmrt::nic_kind::fd_stream, "stream");
}

BOOST_AUTO_TEST_CASE(two_guests_on_a_datagram_socketpair_ping_each_other) {
    ping_over_socketpair(SOCK_DGRAM, vmrt::nic_kind::fd_dgram, "dgram");
}

BOOST_AUTO_TEST_SUITE_END()
