// The Cloud Hypervisor backend through the manager, against vmrt-fake-cloud-hypervisor (a
// protocol double: CH cannot run on this machine). Both launch modes, the lifecycle (power-button
// stop and its escalation), pause/resume, snapshot/restore, resizes, hotplug, counters, the
// socket race, a VMM that dies mid-call, and the refusals of what CH cannot do.
#include "hv/ch_api.hpp"
#include "hv/ch_driver.hpp"
#include "io/unix_listener.hpp"
#include "support/netns_guard.hpp"
#include "support/test_support.hpp"

#include <vmrt/vm_manager.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/test/unit_test.hpp>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <thread>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using vmrt::test::run_coro;

namespace {

constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);

bool contains(const std::string& text, const std::string& what) {
    return text.find(what) != std::string::npos;
}

// Sets an environment variable of this process (inherited by the double) for one test.
struct scoped_env {
    std::string name;
    scoped_env(std::string n, const std::string& value) : name(std::move(n)) {
        ::setenv(name.c_str(), value.c_str(), 1);
    }
    ~scoped_env() { ::unsetenv(name.c_str()); }
};

struct fixture {
    vmrt::test::temp_dir dir;
    asio::io_context ctx;
    std::unique_ptr<vmrt::vm_manager> manager;
    std::vector<vmrt::vm_event> events;

    explicit fixture(vmrt::hv::ch_launch_mode mode = vmrt::hv::ch_launch_mode::command_line) {
        vmrt::test::write_file(dir / "vmlinux", "not a kernel: the double never reads it");
        vmrt::test::write_file(dir / "root.img", std::string(1 << 16, '\0'));
        vmrt::manager_options o;
        o.state_dir = dir / "state";
        o.term_grace = 2s;
        o.kill_grace = 2s;
        manager = std::make_unique<vmrt::vm_manager>(ctx.get_executor(), o);
        use_mode(mode);
    }

    void use_mode(vmrt::hv::ch_launch_mode mode, std::filesystem::path binary = {}) {
        vmrt::hv::ch_options c;
        c.binary = binary.empty() ? vmrt::test::helper_program("VMRT_FAKE_CLOUD_HYPERVISOR") : binary;
        c.mode = mode;
        c.request_timeout = 5s;
        c.boot_timeout = 10s;
        manager->set_driver(vmrt::backend_kind::cloud_hypervisor, vmrt::hv::make_cloud_hypervisor_driver(c));
    }

    vmrt::vm_spec spec(const std::string& name) {
        vmrt::vm_spec s;
        s.name = name;
        s.backend = vmrt::backend_kind::cloud_hypervisor;
        s.kernel = dir / "vmlinux";
        s.root_disk = vmrt::disk_spec{.path = dir / "root.img"};
        s.serial_log = dir / (name + ".serial");
        return s;
    }

    // Keeps every event from now on (read with drain()).
    vmrt::io::subscription<vmrt::vm_event> watch() { return manager->subscribe(); }

    static asio::awaitable<std::vector<std::string>> notes_until(vmrt::io::subscription<vmrt::vm_event>& sub,
                                                                 const std::string& vm, auto done) {
        std::vector<std::string> seen;
        for (;;) {
            auto [ec, ev] = co_await sub.async_next(tuple_awaitable);
            if (ec) co_return seen;
            if (ev.vm != vm) continue;
            seen.push_back(ev.reason);
            if (done(ev)) co_return seen;
        }
    }

    asio::awaitable<vmrt::vm_info> start_ready(vmrt::vm_spec s) {
        const auto name = s.name;
        auto [ec, info] = co_await manager->async_start(std::move(s), tuple_awaitable);
        BOOST_TEST_REQUIRE(!ec, ec.message()
                                    << ": " << info.diag.message << " " << info.diag.vmm_stderr_tail);
        auto names = vmrt::test::strings(name);
        auto [rec, ready] = co_await manager->async_wait_ready(names, 10s, tuple_awaitable);
        BOOST_TEST_REQUIRE(!rec, "wait_ready: " << rec.message());
        co_return ready.front();
    }
};

bool any_of(const std::vector<std::string>& notes, const std::string& what) {
    return std::any_of(notes.begin(), notes.end(), [&](const std::string& n) { return contains(n, what); });
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(ch_driver_test, fixture)

BOOST_AUTO_TEST_CASE(command_line_mode_boots_to_ready_and_stops_through_the_power_button) {
    // A path with ',' and '=' must reach CH as one value (quoted), or CH would read more options.
    vmrt::test::write_file(dir / "data,id=evil.img", std::string(4096, '\0'));
    auto s = spec("cli");
    s.data_disks.push_back({.path = dir / "data,id=evil.img", .read_only = true});
    s.cpus = 2;
    s.max_cpus = 4;
    s.memory_mib = 512;
    s.max_memory_mib = 1024;
    s.balloon = vmrt::balloon_spec{.initial_mib = 64};
    run_coro(ctx, [&]() -> asio::awaitable<void> {
        auto sub = watch();
        auto info = co_await start_ready(s);
        BOOST_TEST(info.backend == "cloud-hypervisor");
        BOOST_TEST(std::holds_alternative<vmrt::state::ready>(info.state));
        BOOST_TEST(std::get<vmrt::state::ready>(info.state).ip.value_or("") == "192.168.64.2");

        const auto cmdline = vmrt::test::read_file(info.run_dir / "vmm.cmdline");
        BOOST_TEST_MESSAGE(cmdline);
        BOOST_TEST(contains(cmdline, "--api-socket fd="));
        BOOST_TEST(contains(cmdline, "--event-monitor fd="));
        BOOST_TEST(contains(cmdline, "--disk path=\"" + (dir / "data,id=evil.img").string() +
                                         "\",readonly=on,id=disk1"));
        BOOST_TEST(contains(cmdline, "--cpus boot=2,max=4"));
        BOOST_TEST(contains(cmdline, "--memory size=512M,hotplug_size=512M"));
        BOOST_TEST(contains(cmdline, "--serial file=" + s.serial_log.string()));
        BOOST_TEST(contains(cmdline, "--console off"));
        BOOST_TEST(std::filesystem::exists(info.run_dir / "ch-api.sock"));

        // The double parsed the quoted path back as one disk with the right id.
        auto [cec, counters] = co_await manager->async_counters("cli", tuple_awaitable);
        BOOST_TEST_REQUIRE(!cec, cec.message());
        BOOST_TEST(counters.count("disk0") == 1u);
        BOOST_TEST(counters.count("disk1") == 1u);
        BOOST_TEST(counters["disk0"]["read_bytes"] > 0u);

        auto [sec, outcome] = co_await manager->async_stop("cli", 5s, tuple_awaitable);
        BOOST_TEST_REQUIRE(!sec, sec.message());
        BOOST_TEST((outcome == vmrt::stop_outcome::clean), vmrt::to_string(outcome));
        auto notes = co_await notes_until(
            sub, "cli", [](const vmrt::vm_event& ev) { return vmrt::is_terminal(ev.state); });
        // CH's own events reached the manager's stream, from the event monitor (not from polling).
        BOOST_TEST(any_of(notes, "cloud-hypervisor event vm/booted"));
        BOOST_TEST(any_of(notes, "cloud-hypervisor event virtio-device/activated id=disk0"));
        BOOST_TEST(any_of(notes, "cloud-hypervisor event vm/shutdown"));
        BOOST_TEST(!std::filesystem::exists(info.run_dir / "ch-api.sock"));
    });
}

BOOST_AUTO_TEST_CASE(api_mode_creates_boots_pauses_resizes_snapshots_and_restores) {
    use_mode(vmrt::hv::ch_launch_mode::api);
    auto s = spec("api");
    s.cpus = 1;
    s.max_cpus = 2;
    s.max_memory_mib = 768;
    s.balloon = vmrt::balloon_spec{.initial_mib = 0};
    run_coro(ctx, [&]() -> asio::awaitable<void> {
        auto info = co_await start_ready(s);
        BOOST_TEST(contains(vmrt::test::read_file(info.run_dir / "vmm.cmdline"), "--api-socket fd="));
        BOOST_TEST(!contains(vmrt::test::read_file(info.run_dir / "vmm.cmdline"), "--kernel"));

        auto [pec, paused] = co_await manager->async_pause("api", tuple_awaitable);
        BOOST_TEST_REQUIRE(!pec, pec.message());
        BOOST_TEST(std::holds_alternative<vmrt::state::paused>(paused));
        auto [p2, ignored] = co_await manager->async_pause("api", tuple_awaitable);
        BOOST_TEST((p2 == vmrt::errc::invalid_state), p2.message());
        auto [rec, resumed] = co_await manager->async_resume("api", tuple_awaitable);
        BOOST_TEST_REQUIRE(!rec, rec.message());
        BOOST_TEST(std::holds_alternative<vmrt::state::ready>(resumed));  // readiness survives a pause

        auto [vec, vcpus] = co_await manager->async_resize_vcpus("api", 2, tuple_awaitable);
        BOOST_TEST_REQUIRE(!vec, vec.message());
        BOOST_TEST(vcpus == 2u);
        auto [mec, ram] = co_await manager->async_resize_memory("api", 640, tuple_awaitable);
        BOOST_TEST_REQUIRE(!mec, mec.message());
        BOOST_TEST(ram == 640u);
        auto [bad_mem, ram2] = co_await manager->async_resize_memory("api", 4096, tuple_awaitable);
        BOOST_TEST((bad_mem == vmrt::errc::invalid_spec), bad_mem.message());
        auto [bec, kept] = co_await manager->async_resize_balloon("api", 256, tuple_awaitable);
        BOOST_TEST_REQUIRE(!bec, bec.message());
        BOOST_TEST(kept == 256u);

        const auto snap = dir / "snap";
        auto [sec, after] = co_await manager->async_snapshot("api", snap, tuple_awaitable);
        BOOST_TEST_REQUIRE(!sec, sec.message());
        BOOST_TEST(std::holds_alternative<vmrt::state::paused>(after));
        for (auto f : {"config.json", "state.json", "memory-ranges", "vm.json"})
            BOOST_TEST(std::filesystem::exists(snap / f), f);
        // The saved config carries what was resized: CH keeps it in its VmConfig (§6).
        BOOST_TEST(contains(vmrt::test::read_file(snap / "config.json"), "\"boot_vcpus\":2"));

        auto [kec, killed] = co_await manager->async_kill("api", tuple_awaitable);
        BOOST_TEST_REQUIRE(!kec, kec.message());
        BOOST_TEST(manager->remove("api") == vmrt::error_code{});

        auto [rsec, restored] = co_await manager->async_restore(snap, tuple_awaitable);
        BOOST_TEST_REQUIRE(!rsec, rsec.message() << ": " << restored.diag.message);
        BOOST_TEST(std::holds_alternative<vmrt::state::ready>(restored.state),
                   vmrt::to_string(restored.state));
        BOOST_TEST(contains(vmrt::test::read_file(restored.run_dir / "vmm.cmdline"),
                            "--restore source_url=file://" + snap.string() + ",resume=true"));
        auto [stec, outcome] = co_await manager->async_stop("api", 5s, tuple_awaitable);
        BOOST_TEST_REQUIRE(!stec, stec.message());
        BOOST_TEST((outcome == vmrt::stop_outcome::clean), vmrt::to_string(outcome));
    });
}

BOOST_AUTO_TEST_CASE(disks_are_hot_plugged_and_removed_with_chs_errors_mapped) {
    vmrt::test::write_file(dir / "extra.img", std::string(4096, '\0'));
    run_coro(ctx, [&]() -> asio::awaitable<void> {
        co_await start_ready(spec("hot"));
        vmrt::disk_spec extra{.path = dir / "extra.img"};
        auto [aec, dev] = co_await manager->async_add_disk("hot", extra, tuple_awaitable);
        BOOST_TEST_REQUIRE(!aec, aec.message());
        BOOST_TEST(dev.id == "hotdisk0");
        BOOST_TEST(dev.bus_address.starts_with("0000:00:"), dev.bus_address);
        auto [cec, counters] = co_await manager->async_counters("hot", tuple_awaitable);
        BOOST_TEST(counters.count("hotdisk0") == 1u);

        // The same image twice: refused by vmrt, naming the field, before CH would answer 409 (the
        // 409 mapping itself is checked against the double in ch_api_test).
        auto [dup, d2] = co_await manager->async_add_disk("hot", extra, tuple_awaitable);
        BOOST_TEST((dup == vmrt::errc::invalid_spec), dup.message());
        // A missing file is refused before CH is asked, naming the field.
        vmrt::disk_spec missing{.path = dir / "nope.img"};
        auto [mec, d3] = co_await manager->async_add_disk("hot", missing, tuple_awaitable);
        BOOST_TEST((mec == vmrt::errc::invalid_spec), mec.message());
        vmrt::test::write_file(dir / "nvme.img", std::string(4096, '\0'));
        vmrt::disk_spec nvme{.path = dir / "nvme.img", .interface = vmrt::disk_interface::nvme};
        auto [nec, d4] = co_await manager->async_add_disk("hot", nvme, tuple_awaitable);
        BOOST_TEST((nec == vmrt::errc::unsupported), nec.message());

        auto [rec, removed] = co_await manager->async_remove_device("hot", dev.id, tuple_awaitable);
        BOOST_TEST_REQUIRE(!rec, rec.message());
        BOOST_TEST(removed == "hotdisk0");
        auto [r2, again] = co_await manager->async_remove_device("hot", dev.id, tuple_awaitable);
        BOOST_TEST((r2 == vmrt::errc::not_found), r2.message());

        auto [kec, outcome] = co_await manager->async_kill("hot", tuple_awaitable);
        BOOST_TEST(!kec);
        auto [late, d5] = co_await manager->async_add_disk("hot", extra, tuple_awaitable);
        BOOST_TEST((late == vmrt::errc::invalid_state), late.message());
    });
}

// TAP NICs: created in the spec's netns through an fd vmrt opens (CH never sees the namespace),
// inherited on CH's command line, or passed by SCM_RIGHTS in API mode and for hotplug; gone
// with the VM because vmrt created them; a TAP that existed before is left in place.
void tap_nics_in_a_netns(fixture& f, vmrt::hv::ch_launch_mode mode, const std::string& vm) {
    vmrt::test::netns_guard ns("vmrt-ch");
    f.use_mode(mode);
    ns.ip("tuntap", "add", "dev", "kept0", "mode", "tap");  // the user's own, persistent TAP
    auto s = f.spec(vm);
    s.netns = ns.name();
    s.networks.push_back({.kind = vmrt::nic_kind::tap, .tap_name = "made0"});
    s.networks.push_back({.kind = vmrt::nic_kind::tap, .tap_name = "kept0"});
    run_coro(f.ctx, [&]() -> asio::awaitable<void> {
        auto info = co_await f.start_ready(s);
        BOOST_TEST(ns.try_ip("link", "show", "made0").first == 0);
        BOOST_TEST(vmrt::test::run_to_end("ip", vmrt::test::strings("link", "show", "made0")).first != 0,
                   "the TAP must not appear in the root namespace");
        const auto log = vmrt::test::read_file(info.run_dir / "vmm.log");
        BOOST_TEST_MESSAGE(log);
        if (mode == vmrt::hv::ch_launch_mode::command_line) {
            BOOST_TEST(contains(log, "--net: inherited fd"));
            BOOST_TEST(contains(log, "on TAP made0"));
            BOOST_TEST(
                contains(vmrt::test::read_file(info.run_dir / "vmm.cmdline"), ",num_queues=2,id=net0"));
        } else {
            BOOST_TEST(contains(log, "vm.add-net: 1 fd(s) by SCM_RIGHTS, TAP made0"));
            BOOST_TEST(contains(log, "vm.add-net: 1 fd(s) by SCM_RIGHTS, TAP kept0"));
        }
        // Hotplug: a third TAP, passed by SCM_RIGHTS.
        vmrt::nic_spec extra{.kind = vmrt::nic_kind::tap, .tap_name = "hot0"};
        auto [aec, dev] = co_await f.manager->async_add_network(vm, extra, tuple_awaitable);
        BOOST_TEST_REQUIRE(!aec, aec.message());
        BOOST_TEST(ns.try_ip("link", "show", "hot0").first == 0);
        BOOST_TEST(contains(vmrt::test::read_file(info.run_dir / "vmm.log"), "SCM_RIGHTS, TAP hot0"));

        auto [sec, outcome] = co_await f.manager->async_stop(vm, 5s, tuple_awaitable);
        BOOST_TEST_REQUIRE(!sec, sec.message());
    });
    BOOST_TEST(ns.try_ip("link", "show", "made0").first != 0, "a TAP vmrt created must go with the VM");
    BOOST_TEST(ns.try_ip("link", "show", "hot0").first != 0, "a hot-plugged TAP must go with the VM");
    BOOST_TEST(ns.try_ip("link", "show", "kept0").first == 0, "the user's TAP must stay");
}

BOOST_AUTO_TEST_CASE(tap_nics_live_in_the_specs_netns_on_the_command_line) {
    tap_nics_in_a_netns(*this, vmrt::hv::ch_launch_mode::command_line, "tapcli");
}

BOOST_AUTO_TEST_CASE(tap_nics_are_passed_by_scm_rights_in_api_mode) {
    tap_nics_in_a_netns(*this, vmrt::hv::ch_launch_mode::api, "tapapi");
}

// Whether a process whose command line contains `what` runs.
bool process_running(const std::string& what) {
    for (auto& entry : std::filesystem::directory_iterator("/proc")) {
        auto cmdline = vmrt::test::read_file(entry.path() / "cmdline");
        std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
        if (contains(cmdline, what)) return true;
    }
    return false;
}

// A stopped virtiofsd's pid-namespace child dies asynchronously after the daemon is reaped (see
// virtiofsd_sidecar_test): wait for it, with a bound.
bool process_still_running_after_exit(const std::string& what) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (process_running(what) && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return process_running(what);
}

BOOST_AUTO_TEST_CASE(shares_are_served_by_a_real_virtiofsd_restarted_across_guest_reboots) {
    std::filesystem::create_directories(dir / "share");
    auto s = spec("fs");
    s.shared_dirs.push_back({.host_path = dir / "share", .tag = "share"});
    run_coro(ctx, [&]() -> asio::awaitable<void> {
        auto sub = watch();
        auto info = co_await start_ready(s);
        const auto socket = info.run_dir / "virtiofs-0.sock";
        BOOST_TEST(contains(vmrt::test::read_file(info.run_dir / "vmm.cmdline"),
                            "--memory size=512M,shared=on"));  // vhost-user needs shared memory
        BOOST_TEST(process_running("source=" + (dir / "share").string()));

        // A guest reboot ends virtiofsd (it serves one connection); the sidecar starts a new one
        // on the same socket, and CH's reconnect (with a vhost-user GET_FEATURES exchange in the
        // double) succeeds: vm.reboot answers only once the backend is back.
        auto connected = vmrt::io::connect_unix(info.run_dir / "ch-api.sock");
        BOOST_TEST_REQUIRE(connected.has_value());
        vmrt::hv::ch::api_client api(vmrt::io::http_unix_client(vmrt::io::http_unix_client::socket_type(
            ctx, asio::local::stream_protocol(), connected->release())));
        co_await api.vm_reboot();
        auto notes = co_await notes_until(
            sub, "fs", [](const vmrt::vm_event& ev) { return contains(ev.reason, "restarted as pid"); });
        BOOST_TEST(any_of(notes, "virtiofsd for share 'share' started as pid"));
        BOOST_TEST(any_of(notes, "cloud-hypervisor event vm/rebooting"));
        // The rebooted guest printed a new banner and ready line: Ready again.
        auto names = vmrt::test::strings("fs");
        auto [rec, ready] = co_await manager->async_wait_ready(names, 10s, tuple_awaitable);
        BOOST_TEST(!rec, rec.message());

        // Hotplug a second share: a new virtiofsd, which CH (the double) reaches at vm.add-fs;
        // removing the device ends that virtiofsd.
        std::filesystem::create_directories(dir / "more");
        vmrt::shared_dir_spec more{.host_path = dir / "more", .tag = "more"};
        auto [aec, dev] = co_await manager->async_add_shared_dir("fs", more, tuple_awaitable);
        BOOST_TEST_REQUIRE(!aec, aec.message());
        BOOST_TEST(process_running("source=" + (dir / "more").string()));
        vmrt::shared_dir_spec taken{.host_path = dir / "more", .tag = "share"};
        auto [dup, dev2] = co_await manager->async_add_shared_dir("fs", taken, tuple_awaitable);
        BOOST_TEST((dup == vmrt::errc::invalid_spec), "the tag is the boot share's: " << dup.message());
        vmrt::shared_dir_spec again{.host_path = dir / "share", .tag = "more"};
        auto [dup2, dev3] = co_await manager->async_add_shared_dir("fs", again, tuple_awaitable);
        BOOST_TEST((dup2 == vmrt::errc::invalid_spec),
                   "the tag is the hot-plugged share's: " << dup2.message());
        auto [rmec, removed] = co_await manager->async_remove_device("fs", dev.id, tuple_awaitable);
        BOOST_TEST_REQUIRE(!rmec, rmec.message());
        BOOST_TEST(!process_still_running_after_exit("source=" + (dir / "more").string()),
                   "the hot-plugged share's virtiofsd stayed");

        auto [sec, outcome] = co_await manager->async_stop("fs", 5s, tuple_awaitable);
        BOOST_TEST_REQUIRE(!sec, sec.message());
        BOOST_TEST((outcome == vmrt::stop_outcome::clean), vmrt::to_string(outcome));
        BOOST_TEST(!process_still_running_after_exit("source=" + (dir / "share").string()),
                   "virtiofsd outlived its VM");
        BOOST_TEST(!std::filesystem::exists(socket));
    });
}

BOOST_AUTO_TEST_CASE(vsock_streams_connect_to_the_guest_and_the_guest_connects_back) {
    scoped_env listen("VMRT_FAKE_CH_VSOCK_LISTEN", "1234");
    scoped_env guest("VMRT_FAKE_CH_VSOCK_GUEST_CONNECT",
                     "5000:hello from the guest;5001:hello, neutral listener");
    auto s = spec("vs");
    s.vsock = vmrt::vsock_spec{.cid = 3, .socket = dir / "vs.vsock"};
    run_coro(ctx, [&]() -> asio::awaitable<void> {
        co_await start_ready(s);
        // Guest -> host: the VMM connects to <socket>_5000, where vmrt listens.
        auto listener = manager->vsock_listen("vs", 5000);
        BOOST_TEST(listener.path() == dir / "vs.vsock_5000");
        auto from_guest = co_await listener.accept();
        std::string greeting(20, '\0');
        co_await asio::async_read(from_guest, asio::buffer(greeting), asio::use_awaitable);
        BOOST_TEST(greeting == "hello from the guest");
        // The backend-neutral listener (vm_manager::async_vsock_listen) over the same hybrid vsock.
        auto [lec, neutral] = co_await manager->async_vsock_listen("vs", 5001, tuple_awaitable);
        BOOST_TEST_REQUIRE(!lec, lec.message());
        BOOST_TEST(neutral.port() == 5001u);
        auto second = co_await neutral.accept();
        std::string text(23, '\0');
        co_await asio::async_read(second, asio::buffer(text), asio::use_awaitable);
        BOOST_TEST(text == "hello, neutral listener");

        // Host -> guest: CONNECT 1234 / OK <port>, then the stream (an echo service in the guest).
        auto [ec, stream] = co_await manager->async_vsock_connect("vs", 1234, tuple_awaitable);
        BOOST_TEST_REQUIRE(!ec, ec.message());
        co_await asio::async_write(stream, asio::buffer(std::string("ping")), asio::use_awaitable);
        std::string echo(4, '\0');
        co_await asio::async_read(stream, asio::buffer(echo), asio::use_awaitable);
        BOOST_TEST(echo == "ping");

        auto [kec, outcome] = co_await manager->async_stop("vs", 5s, tuple_awaitable);
        BOOST_TEST(!kec);
        BOOST_TEST(!std::filesystem::exists(dir / "vs.vsock"));  // CH removes it at shutdown (§3 --vsock)
    });
}

BOOST_AUTO_TEST_CASE(a_bad_vsock_handshake_reply_is_a_protocol_error) {
    scoped_env listen("VMRT_FAKE_CH_VSOCK_LISTEN", "1234");
    scoped_env bad("VMRT_FAKE_CH_FAULTS", "vsock-bad-reply");
    auto s = spec("vsbad");
    s.vsock = vmrt::vsock_spec{.cid = 3, .socket = dir / "vsbad.vsock"};
    auto plain = spec("novsock");
    run_coro(ctx, [&]() -> asio::awaitable<void> {
        co_await start_ready(s);
        auto [ec, stream] = co_await manager->async_vsock_connect("vsbad", 1234, tuple_awaitable);
        BOOST_TEST((ec == vmrt::errc::protocol_error), ec.message());
        co_await start_ready(plain);
        auto [nec, none] = co_await manager->async_vsock_connect("novsock", 1234, tuple_awaitable);
        BOOST_TEST((nec == vmrt::errc::unsupported), nec.message());
        auto [uec, unknown] = co_await manager->async_vsock_connect("nobody", 1234, tuple_awaitable);
        BOOST_TEST((uec == vmrt::errc::not_found), uec.message());
        co_await manager->async_kill("vsbad", tuple_awaitable);
        co_await manager->async_kill("novsock", tuple_awaitable);
    });
}

BOOST_AUTO_TEST_CASE(a_guest_that_ignores_the_power_button_is_ended_by_vmm_shutdown) {
    scoped_env never("VMRT_FAKE_CH_POWER_OFF_MS", "never");
    run_coro(ctx, [&]() -> asio::awaitable<void> {
        co_await start_ready(spec("deaf"));
        auto sub = watch();
        auto [ec, outcome] = co_await manager->async_stop("deaf", 300ms, tuple_awaitable);
        BOOST_TEST_REQUIRE(!ec, ec.message());
        BOOST_TEST((outcome == vmrt::stop_outcome::forced), vmrt::to_string(outcome));
        auto notes = co_await notes_until(
            sub, "deaf", [](const vmrt::vm_event& ev) { return vmrt::is_terminal(ev.state); });
        BOOST_TEST(any_of(notes, "asking Cloud Hypervisor to end the VM (vmm.shutdown)"));
        BOOST_TEST(!any_of(notes, "SIGTERM"));  // vmm.shutdown sufficed
        auto state = *manager->state("deaf");
        BOOST_TEST_REQUIRE(std::holds_alternative<vmrt::state::stopped>(state));
        BOOST_TEST(std::get<vmrt::state::stopped>(state).status->to_string() == "exit code 0");
    });
}

BOOST_AUTO_TEST_CASE(a_slow_api_start_is_no_race_with_a_pre_bound_socket) {
    // CH takes 700 ms to start accepting: vmrt connected at once (the socket existed before CH
    // ran) and its first request simply waits in the backlog; no polling, no connect retries.
    scoped_env slow("VMRT_FAKE_CH_FAULTS", "late-socket=700");
    run_coro(ctx, [&]() -> asio::awaitable<void> {
        auto t0 = std::chrono::steady_clock::now();
        auto info = co_await start_ready(spec("late"));
        BOOST_TEST((std::chrono::steady_clock::now() - t0 >= 700ms));
        // The socket was handed over bound (no path for CH to create, nothing to poll for).
        BOOST_TEST(contains(vmrt::test::read_file(info.run_dir / "vmm.cmdline"), "--api-socket fd="));
        BOOST_TEST(vmrt::is_running(info.state));
        auto [ec, o] = co_await manager->async_kill("late", tuple_awaitable);
        BOOST_TEST(!ec);
    });
}

BOOST_AUTO_TEST_CASE(a_vmm_that_dies_mid_call_fails_the_call_and_the_vm) {
    scoped_env crash("VMRT_FAKE_CH_FAULTS", "crash-on=vm.pause");
    run_coro(ctx, [&]() -> asio::awaitable<void> {
        auto info = co_await start_ready(spec("crash"));
        const pid_t pid = info.vmm->pid;
        auto sub = watch();
        auto [ec, state] = co_await manager->async_pause("crash", tuple_awaitable);
        BOOST_TEST((ec == vmrt::errc::vmm_crashed), ec.message());
        co_await notes_until(sub, "crash",
                             [](const vmrt::vm_event& ev) { return vmrt::is_terminal(ev.state); });
        auto final_state = *manager->state("crash");
        BOOST_TEST_REQUIRE(std::holds_alternative<vmrt::state::failed>(final_state));
        const auto& failed = std::get<vmrt::state::failed>(final_state);
        BOOST_TEST(failed.status->to_string() == "exit code 3");
        BOOST_TEST(contains(failed.reason, "VMM exited unexpectedly"), failed.reason);
        BOOST_TEST((::kill(pid, 0) != 0 && errno == ESRCH), "the dead VMM was not reaped");
    });
}

BOOST_AUTO_TEST_CASE(a_vmm_that_dies_during_start_up_fails_the_start_with_its_status) {
    scoped_env crash("VMRT_FAKE_CH_FAULTS", "crash-on=vm.info");
    std::filesystem::create_directories(dir / "early-share");
    auto s = spec("early");
    s.shared_dirs.push_back({.host_path = dir / "early-share", .tag = "share"});
    run_coro(ctx, [&]() -> asio::awaitable<void> {
        auto [ec, info] = co_await manager->async_start(s, tuple_awaitable);
        // The virtiofsd started for the VM went with the failed start.
        BOOST_TEST(!process_still_running_after_exit("source=" + (dir / "early-share").string()));
        BOOST_TEST((ec == vmrt::errc::vmm_start_failed), ec.message());
        BOOST_TEST(contains(info.diag.message, "exit code 3"), info.diag.message);
        BOOST_TEST(!std::filesystem::exists(dir / "state" / "default" / "early" / "ch-api.sock"));
    });
}

BOOST_AUTO_TEST_CASE(what_cloud_hypervisor_cannot_do_is_refused_by_field) {
    auto refused = [&](vmrt::vm_spec s, const std::string& field) {
        run_coro(ctx, [&]() -> asio::awaitable<void> {
            auto [ec, info] = co_await manager->async_start(s, tuple_awaitable);
            const bool was_refused = ec == vmrt::errc::unsupported || ec == vmrt::errc::invalid_spec;
            BOOST_TEST(was_refused, ec.message());
            BOOST_TEST(info.diag.field == field, info.diag.field << ": " << info.diag.message);
            BOOST_TEST_MESSAGE(field << ": " << info.diag.message);
        });
    };
    auto nvme = spec("nvme");
    nvme.root_disk->interface = vmrt::disk_interface::nvme;
    refused(nvme, "root_disk.interface");
    auto control = spec("control");
    control.control_channel = true;
    refused(control, "control_channel");
    auto user = spec("user");
    user.networks.push_back({.kind = vmrt::nic_kind::user});
    refused(user, "networks[0]");
    auto quote = spec("quote");
    vmrt::test::write_file(dir / "a\"b.img", "x");
    quote.data_disks.push_back({.path = dir / "a\"b.img"});
    refused(quote, "disks[1].path");
    auto hotmem = spec("hotmem");
    hotmem.max_memory_mib = 600;
    refused(hotmem, "max_memory_mib");
}

BOOST_AUTO_TEST_CASE(a_missing_binary_is_a_clear_start_failure) {
    use_mode(vmrt::hv::ch_launch_mode::command_line, "/nonexistent/cloud-hypervisor");
    run_coro(ctx, [&]() -> asio::awaitable<void> {
        auto [ec, info] = co_await manager->async_start(spec("absent"), tuple_awaitable);
        BOOST_TEST((ec == vmrt::errc::vmm_start_failed), ec.message());
        BOOST_TEST(contains(info.diag.message, "not installed"), info.diag.message);
    });
}

BOOST_AUTO_TEST_SUITE_END()
