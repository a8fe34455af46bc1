// Real guests, one QEMU device each: a data disk (read-write and read-only), a virtiofs share
// with its virtiofsd sidecar, a TAP NIC in a network namespace, and the memory balloon. Every
// case boots the default guest through vm_manager and checks what the guest reports on its
// console (the vmrs.* probes of /init) against what the host sees afterwards.
//
// Nothing may outlive a case, even a failing one: the VMs die with the manager, the namespace
// (and the TAP device in it) with its guard, files with the temp dir. Members are destroyed in
// reverse order, so the manager (and QEMU with it) goes before the namespace it ran in.
#include "guest_fixture.hpp"
#include "support/test_support.hpp"

#include <vmrt/image/guest_image.hpp>
#include <vmrt/io/process.hpp>
#include <vmrt/vm_manager.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/test/unit_test.hpp>

#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <optional>
#include <random>
#include <sstream>

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using vmrt::test::console_lines;
using vmrt::test::contains;
using vmrt::test::debugfs_cat;
using vmrt::test::has_line;
using vmrt::test::lines_starting;
using vmrt::test::run_coro;
using vmrt::test::run_tool;
using vmrt::test::tool_result;

namespace {

constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);

std::string random_hex() {
    std::random_device rd;
    std::ostringstream s;
    s << std::hex << rd() << rd();
    return s.str();
}

// The same, for the places that cannot await (constructors and destructors of guards).
tool_result run_tool_now(std::string program, std::vector<std::string> args, fs::path log) {
    tool_result r;
    run_coro([&]() -> asio::awaitable<void> { r = co_await run_tool(program, args, log); }, 30s);
    return r;
}

// A 64 MiB sparse raw image with an empty ext4 file system, as a user would hand to a VM.
asio::awaitable<void> make_ext4_disk(fs::path file) {
    { std::ofstream create(file, std::ios::binary); }
    fs::resize_file(file, 64 << 20);
    auto r = co_await run_tool("mkfs.ext4", vmrt::test::strings("-q", "-F", file.string()),
                               file.string() + ".mkfs.log");
    BOOST_TEST_REQUIRE(r.status.success(), "mkfs.ext4: " << r.status.to_string() << "\n" << r.output);
}

// PIDs of the live processes whose command line has both words (e.g. "virtiofsd" and a path).
std::vector<pid_t> processes_mentioning(const std::string& a, const std::string& b) {
    std::vector<pid_t> found;
    for (auto& entry : fs::directory_iterator("/proc")) {
        const auto name = entry.path().filename().string();
        if (name.find_first_not_of("0123456789") != std::string::npos) continue;
        auto cmdline =
            vmrt::test::read_file(entry.path() / "cmdline");  // empty for zombies and kernel threads
        if (contains(cmdline, a) && contains(cmdline, b)) found.push_back(std::stoi(name));
    }
    return found;
}

// A network namespace of the test's own, with the TAP device tap0 (10.77.0.254/24) in it; both
// are gone after remove() or the destructor, whichever comes first. Everything the guest sends
// stays in here: nothing is routed, bridged or NATed to the host's namespace.
class test_netns {
public:
    explicit test_netns(fs::path log) : name_("vmrt-t" + random_hex()), log_(std::move(log)) {
        ip(vmrt::test::strings("netns", "add", name_));
        added_ = true;
        try {
            ip(vmrt::test::strings("-n", name_, "link", "set", "lo", "up"));
            ip(vmrt::test::strings("-n", name_, "tuntap", "add", "dev", "tap0", "mode", "tap"));
            ip(vmrt::test::strings("-n", name_, "addr", "add", "10.77.0.254/24", "dev", "tap0"));
            ip(vmrt::test::strings("-n", name_, "link", "set", "tap0", "up"));
        } catch (...) {
            remove();  // a throwing constructor gets no destructor call
            throw;
        }
    }
    test_netns(const test_netns&) = delete;
    test_netns& operator=(const test_netns&) = delete;
    ~test_netns() {
        try {
            remove();
        } catch (const std::exception& e) {
            BOOST_TEST_MESSAGE("cannot remove netns " << name_ << ": " << e.what());
        }
    }

    const std::string& name() const noexcept { return name_; }
    fs::path path() const { return "/run/netns/" + name_; }

    // The TAP device first: it is persistent (ip tuntap), and deleting it does not depend on
    // the kernel's handling of devices left in a dying namespace.
    void remove() {
        if (!added_) return;
        added_ = false;
        run_tool_now("ip", vmrt::test::strings("-n", name_, "link", "del", "tap0"), log_);
        ip(vmrt::test::strings("netns", "del", name_));
    }

private:
    void ip(std::vector<std::string> args) {
        auto r = run_tool_now("ip", args, log_);
        if (!r.status.success()) {
            std::string line = "ip";
            for (auto& a : args) line += " " + a;
            throw std::runtime_error(line + ": " + r.status.to_string() + "\n" + r.output);
        }
    }

    std::string name_;
    fs::path log_;
    bool added_ = false;
};

// A base of its own, listed first, so that it is destroyed last: a QEMU running inside the
// test's namespace (owned by the manager and the io_context) ends before the namespace goes.
struct netns_holder {
    std::optional<test_netns> netns;
};

struct fixture : netns_holder, vmrt::test::guest_fixture {};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(qemu_devices_test, fixture)

BOOST_AUTO_TEST_CASE(data_disk_written_by_the_guest_is_read_on_the_host) {
    const auto disk = dir / "data.img";
    const std::string token = "vmrt-token-" + random_hex();
    auto s = spec("disk", "vmrs.datadisk=/dev/vda vmrs.datawrite=" + token);
    s.data_disks.push_back({.path = disk});
    run_coro(
        ctx,
        [&]() -> asio::awaitable<void> {
            co_await make_ext4_disk(disk);
            co_await boot(s);
            auto text = console("disk");
            BOOST_TEST_MESSAGE("disk:" << lines_starting(text, "vmrs: /dev/vda")
                                       << lines_starting(text, "VMRS_DATA"));
            BOOST_TEST(has_line(text, "vmrs: /dev/vda mounted on /mnt/data (rw)"), text);
            BOOST_TEST_REQUIRE(has_line(text, "VMRS_DATAWRITE ok"), text);
            co_await stop_clean("disk");

            // QEMU is gone: the image is the host's again.
            auto r = co_await debugfs_cat(disk, "/hello.txt");
            BOOST_TEST(r.status.success(), r.status.to_string());
            BOOST_TEST(contains(r.output, token + "\n"), r.output);
        },
        120s);
}

BOOST_AUTO_TEST_CASE(read_only_disk_refuses_writes) {
    const auto disk = dir / "data.img";
    const std::string token = "vmrt-token-" + random_hex();
    auto s = spec("rodisk", "vmrs.datadisk=/dev/vda vmrs.datawrite=" + token);
    s.data_disks.push_back({.path = disk, .read_only = true});
    run_coro(
        ctx,
        [&]() -> asio::awaitable<void> {
            co_await make_ext4_disk(disk);
            const auto before = vmrt::test::read_file(disk);
            co_await boot(s);
            auto text = console("rodisk");
            BOOST_TEST_MESSAGE("rodisk:" << lines_starting(text, "vmrs: /dev/vda")
                                         << lines_starting(text, "VMRS_DATA"));
            // Mounted (read-only), so the failure is the refused write, not a missing disk.
            BOOST_TEST(has_line(text, "vmrs: /dev/vda mounted on /mnt/data (ro)"), text);
            BOOST_TEST(contains(text, "VMRS_DATAWRITE failed: "), text);
            BOOST_TEST(contains(text, "Read-only file system"), text);
            BOOST_TEST(!contains(text, "VMRS_DATAWRITE ok"), text);
            co_await stop_clean("rodisk");

            BOOST_TEST((vmrt::test::read_file(disk) == before), "the read-only image changed");
            auto r = co_await debugfs_cat(disk, "/hello.txt");
            BOOST_TEST(contains(r.output, "File not found"), r.output);
            BOOST_TEST(!contains(r.output, token), r.output);
        },
        120s);
}

BOOST_AUTO_TEST_CASE(virtiofs_share_reads_and_writes_host_files) {
    const auto share = dir / "share";
    fs::create_directory(share);
    const std::string greeting = "hello from the host " + random_hex();
    vmrt::test::write_file(share / "hello.txt", greeting + "\n");
    auto s = spec("fs", "vmrs.virtiofs=share0 vmrs.virtiofs_probe=share0");
    s.shared_dirs.push_back({.host_path = share, .tag = "share0"});
    run_coro(
        ctx,
        [&]() -> asio::awaitable<void> {
            co_await boot(s);
            // The sidecar runs for this share (which also shows that the scan below can see it).
            BOOST_TEST(!processes_mentioning("virtiofsd", share.string()).empty());
            auto text = console("fs");
            BOOST_TEST_MESSAGE("fs:" << lines_starting(text, "VMRS_VIRTIOFS"));
            BOOST_TEST(has_line(text, "VMRS_VIRTIOFS_READ " + greeting), text);
            BOOST_TEST(has_line(text, "VMRS_VIRTIOFS_WROTE ok"), text);
            BOOST_TEST(vmrt::test::read_file(share / "from-guest.txt") == "written by the guest\n");
            co_await stop_clean("fs");
            BOOST_TEST(processes_mentioning("virtiofsd", share.string()).empty(),
                       "virtiofsd outlived its VM");
        },
        120s);
}

BOOST_AUTO_TEST_CASE(tap_in_a_test_namespace_reaches_the_guest) {
    netns.emplace(dir / "ip.log");
    const std::string ns = netns->name();
    const std::string guest_ip = "10.77.0.1";
    auto s = spec("tap", "vmrs.ip=" + guest_ip + "/24");
    s.netns = ns;
    s.networks.push_back({.kind = vmrt::nic_kind::tap, .tap_name = "tap0"});
    // busybox's ping: the host has busybox-static for the guest anyway, but no iputils-ping.
    const auto ping =
        vmrt::test::strings("netns", "exec", ns, "busybox", "ping", "-c", "3", "-W", "2", guest_ip);
    run_coro(
        ctx,
        [&]() -> asio::awaitable<void> {
            co_await boot(s);
            const auto info = *manager->info("tap");
            auto* ready = std::get_if<vmrt::state::ready>(&info.state);
            BOOST_TEST_REQUIRE(ready);
            BOOST_TEST(ready->ip.value_or(std::string{}) == guest_ip);
            // QEMU itself runs in the test's namespace (same inode as the name's bind mount).
            struct stat vmm_ns = {};
            struct stat test_ns = {};
            const auto vmm_ns_path = "/proc/" + std::to_string(info.vmm->pid) + "/ns/net";
            BOOST_TEST_REQUIRE(::stat(vmm_ns_path.c_str(), &vmm_ns) == 0);
            BOOST_TEST_REQUIRE(::stat(netns->path().c_str(), &test_ns) == 0);
            BOOST_TEST(vmm_ns.st_ino == test_ns.st_ino);

            auto r = co_await run_tool("ip", ping, dir / "ping.log");
            BOOST_TEST(r.status.success(), r.status.to_string() << "\n" << r.output << console("tap"));
            BOOST_TEST(contains(r.output, " 0% packet loss"), r.output);
            BOOST_TEST_MESSAGE("ping from the namespace:" << lines_starting(r.output, "3 packets")
                                                          << lines_starting(r.output, "round-trip"));
            co_await stop_clean("tap");
        },
        120s);
    netns->remove();
    BOOST_TEST(!fs::exists(netns->path()));
}

BOOST_AUTO_TEST_CASE(balloon_device_is_seen_by_the_guest) {
    // The same guest without a balloon is the control: the marker must tell the two apart.
    auto with = spec("balloon", "vmrs.lsdev=1");
    with.balloon = vmrt::balloon_spec{};
    std::vector<vmrt::vm_spec> both{with, spec("noballoon", "vmrs.lsdev=1")};
    run_coro(
        ctx,
        [&]() -> asio::awaitable<void> {
            co_await boot(both);
            auto text = console("balloon");
            auto control = console("noballoon");
            BOOST_TEST_MESSAGE("balloon:" << lines_starting(text, "VMRS_DEV")
                                          << "\nnoballoon:" << lines_starting(control, "VMRS_DEV"));
            BOOST_TEST(contains(text, "VMRS_DEV virtio_balloon virtio"), text);
            // virtio-rng is always attached: the listing works in both guests.
            BOOST_TEST(contains(control, "VMRS_DEV virtio_rng virtio"), control);
            BOOST_TEST(!contains(control, "VMRS_DEV virtio_balloon"), control);
            co_await manager->async_kill("balloon", tuple_awaitable);
            co_await manager->async_kill("noballoon", tuple_awaitable);
        },
        120s);
}

// The last MemTotal (kB) the guest printed, or 0.
std::uint64_t last_memtotal(const std::string& text) {
    std::uint64_t kb = 0;
    for (auto& line : console_lines(text))
        if (line.rfind("VMRS_MEMTOTAL ", 0) == 0) kb = std::stoull(line.substr(14));
    return kb;
}

BOOST_AUTO_TEST_CASE(balloon_resize_is_seen_by_the_guest) {
    // Without deflate-on-oom the guest driver takes inflated pages out of MemTotal, which the
    // guest prints (vmrs.meminfo=1) whenever it changes.
    auto s = spec("squeeze", "vmrs.meminfo=1");
    s.balloon = vmrt::balloon_spec{.deflate_on_oom = false};
    run_coro(
        ctx,
        [&]() -> asio::awaitable<void> {
            co_await boot(s);
            asio::steady_timer tick(ctx);
            // The meminfo loop starts with READY: wait for its first line.
            for (int i = 0; i < 40 && last_memtotal(console("squeeze")) == 0; ++i) {
                tick.expires_after(250ms);
                co_await tick.async_wait(tuple_awaitable);
            }
            const auto before = last_memtotal(console("squeeze"));
            BOOST_TEST_REQUIRE(before > 0u, console("squeeze"));
            auto [ec, actual] = co_await manager->async_resize_balloon("squeeze", 160, tuple_awaitable);
            BOOST_TEST_REQUIRE(!ec, ec.message());
            BOOST_TEST(actual == 160u);
            // The guest's own view follows: MemTotal drops by about the 96 MiB taken.
            std::uint64_t after = before;
            for (int i = 0; i < 40 && before - std::min(before, after) < 90 * 1024; ++i) {
                tick.expires_after(250ms);
                co_await tick.async_wait(tuple_awaitable);
                after = last_memtotal(console("squeeze"));
            }
            BOOST_TEST_MESSAGE("guest MemTotal " << before << " kB -> " << after << " kB");
            BOOST_TEST(before - std::min(before, after) >= 90u * 1024, before << " -> " << after);
            // Out of range and no-balloon requests are refused by name, not sent to QEMU.
            auto [bad, v] = co_await manager->async_resize_balloon("squeeze", 100000, tuple_awaitable);
            BOOST_TEST((bad == vmrt::errc::invalid_spec));
            co_await manager->async_kill("squeeze", tuple_awaitable);
        },
        120s);
}

BOOST_AUTO_TEST_SUITE_END()
