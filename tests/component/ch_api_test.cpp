// The typed Cloud Hypervisor client (hv/ch_api.hpp) against vmrt-fake-cloud-hypervisor, the
// project's protocol double of CH (real CH cannot run here: not packaged for Debian 12, needs
// KVM). The double runs as a child process and is handed a pre-bound listening socket
// (`--api-socket fd=N`) and an event-monitor pipe (`--event-monitor fd=N`), as the driver will do.
// Malformed framing is tested against a raw in-test peer instead (the double only sends what CH
// sends).
#include "hv/ch_api.hpp"
#include "hv/virtiofsd_sidecar.hpp"
#include "io/http_unix_client.hpp"
#include "support/test_support.hpp"

#include <vmrt/io/process.hpp>
#include <vmrt/io/with_timeout.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/local/connect_pair.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/json.hpp>
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace asio = boost::asio;
namespace json = boost::json;
namespace ch = vmrt::hv::ch;
using namespace std::chrono_literals;
using socket_type = asio::local::stream_protocol::socket;
using vmrt::errc;
using vmrt::test::run_coro;

namespace {

// An fd closed by its destructor.
struct owned_fd {
    int fd = -1;
    explicit owned_fd(int f = -1) : fd(f) {}
    owned_fd(const owned_fd&) = delete;
    owned_fd& operator=(const owned_fd&) = delete;
    ~owned_fd() {
        if (fd >= 0) ::close(fd);
    }
};

// vmrt-fake-cloud-hypervisor with a pre-bound API socket and an event pipe. The process is
// killed and reaped by io::process's destructor if a test fails half-way.
class fake_ch_process {
public:
    fake_ch_process(asio::any_io_executor ex, std::string faults = "", std::vector<std::string> extra = {})
        : socket_path_(dir_ / "api.sock") {
        listen_.fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::memcpy(addr.sun_path, socket_path_.c_str(), socket_path_.string().size());
        BOOST_TEST_REQUIRE(::bind(listen_.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
        BOOST_TEST_REQUIRE(::listen(listen_.fd, 16) == 0);
        int pipe_fds[2];
        BOOST_TEST_REQUIRE(::pipe2(pipe_fds, O_CLOEXEC | O_NONBLOCK) == 0);
        events_.fd = pipe_fds[0];
        owned_fd write_end(pipe_fds[1]);

        vmrt::io::process_options opts;
        opts.program = vmrt::test::helper_program("VMRT_FAKE_CLOUD_HYPERVISOR");
        opts.args = vmrt::test::strings("--api-socket", "fd=" + std::to_string(listen_.fd), "--event-monitor",
                                        "fd=" + std::to_string(write_end.fd));
        for (auto& e : extra) opts.args.push_back(e);
        opts.inherited_fds = {listen_.fd, write_end.fd};
        opts.log_file = dir_ / "ch.log";
        if (!faults.empty()) opts.env_overrides.emplace_back("VMRT_FAKE_CH_FAULTS", faults);
        proc_ = vmrt::io::process::spawn(ex, opts);
    }

    // A client over a fresh connection: connect() succeeds at once because the socket was
    // listening before the double started (no start-up race).
    ch::api_client client(asio::any_io_executor ex, std::chrono::milliseconds timeout = 5000ms) {
        socket_type s(ex);
        s.connect(asio::local::stream_protocol::endpoint(socket_path_.string()));
        vmrt::io::http_unix_client::options o;
        o.request_timeout = timeout;
        return ch::api_client(vmrt::io::http_unix_client(std::move(s), o));
    }

    // "source/event" of every event written so far (pretty JSON objects separated by a blank line).
    std::vector<std::string> events() {
        char buf[4096];
        for (ssize_t n; (n = ::read(events_.fd, buf, sizeof buf)) > 0;)
            pending_.append(buf, static_cast<std::size_t>(n));
        for (std::size_t end; (end = pending_.find("\n}\n\n")) != std::string::npos;) {
            auto v = json::parse(pending_.substr(0, end + 2));
            pending_.erase(0, end + 4);
            const auto& o = v.as_object();
            BOOST_TEST(o.at("timestamp").as_object().contains("nanos"));
            std::string e =
                std::string(o.at("source").as_string()) + "/" + std::string(o.at("event").as_string());
            if (o.at("properties").is_object())
                e += "(" + std::string(o.at("properties").at("id").as_string()) + ")";
            seen_.push_back(e);
        }
        return seen_;
    }

    vmrt::io::process& process() { return proc_; }
    const std::filesystem::path& dir() const { return dir_.path(); }
    const std::filesystem::path& socket_path() const { return socket_path_; }

private:
    vmrt::test::temp_dir dir_;
    std::filesystem::path socket_path_;
    owned_fd listen_;
    owned_fd events_;
    std::string pending_;
    std::vector<std::string> seen_;
    vmrt::io::process proc_;
};

ch::vm_config small_vm() {
    ch::vm_config c;
    c.cpus.boot_vcpus = 1;
    c.cpus.max_vcpus = 4;
    c.memory.size = 256ull << 20;
    c.payload.kernel = "/boot/vmlinuz-fake";
    c.payload.cmdline = "console=ttyS0 root=/dev/vda";
    c.disks.push_back({.path = "/images/root,with comma.img", .readonly = false});
    c.net.push_back({std::string("tap0"), std::string("52:54:00:12:34:56"), std::nullopt});
    c.serial = ch::console_config{"File", std::string("/tmp/serial.log"), std::nullopt};
    c.console = ch::console_config{"Off", std::nullopt, std::nullopt};
    return c;
}

bool contains(const std::vector<std::string>& v, const std::string& item) {
    return std::find(v.begin(), v.end(), item) != v.end();
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// Runs `call` and returns the api_error it throws (fails the test if it does not throw one).
template <typename Call>
asio::awaitable<std::optional<ch::api_error>> expect_api_error(Call call) {
    try {
        co_await call();
    } catch (const ch::api_error& e) {
        co_return e;
    }
    BOOST_ERROR("expected an api_error");
    co_return std::nullopt;
}

template <typename Call>
asio::awaitable<vmrt::error_code> error_of(Call call) {
    try {
        co_await call();
    } catch (const vmrt::error& e) {
        co_return e.code();
    }
    co_return vmrt::error_code{};
}

asio::awaitable<vmrt::exit_status> wait_exit(vmrt::io::process& p) {
    auto [ec, status] = co_await vmrt::io::with_timeout(p.async_wait(asio::deferred), 5s);
    BOOST_TEST_REQUIRE(!ec, "the double did not exit: " << ec.message());
    co_return status;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(ch_api_test)

BOOST_AUTO_TEST_CASE(ping_create_boot_info) {
    run_coro([]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        fake_ch_process fake(ex);
        auto api = fake.client(ex);

        auto ping = co_await api.vmm_ping();
        BOOST_TEST(ping.version == "v54.0.0-fake");
        BOOST_TEST(ping.pid.value_or(0) == fake.process().pid());

        auto none = co_await expect_api_error([&]() { return api.vm_info(); });
        BOOST_TEST_REQUIRE(none.has_value());
        BOOST_TEST((none->code() == errc::not_found));
        BOOST_TEST(none->status() == 404);
        BOOST_TEST_REQUIRE(none->chain().size() == 3u);
        BOOST_TEST(none->chain().back() == "VM is not created");
        BOOST_TEST(contains(std::string(none->what()),
                            "vm.info: HTTP 404: Error from API: The VM info is not available"));

        const auto config = small_vm();
        co_await api.vm_create(config);
        auto created = co_await api.vm_info();
        BOOST_TEST((created.state == ch::vm_state::created));
        BOOST_TEST(!created.raw_config.as_object().contains("device_tree"));

        co_await api.vm_boot();
        auto running = co_await api.vm_info();
        BOOST_TEST((running.state == ch::vm_state::running));
        BOOST_TEST(running.state_text == "Running");
        BOOST_TEST(running.config.cpus.boot_vcpus == 1u);
        BOOST_TEST(running.config.cpus.max_vcpus.value_or(0) == 4u);
        BOOST_TEST(running.config.memory.size == 256ull << 20);
        BOOST_TEST(running.config.payload.cmdline.value_or("") == "console=ttyS0 root=/dev/vda");
        BOOST_TEST_REQUIRE(running.config.disks.size() == 1u);
        BOOST_TEST(running.config.disks[0].path == "/images/root,with comma.img");
        BOOST_TEST(running.config.disks[0].id.value_or("") == "_disk0");  // named by CH at boot
        BOOST_TEST(running.config.net[0].mac.value_or("") == "52:54:00:12:34:56");
        BOOST_TEST(running.config.serial->mode == "File");
        BOOST_TEST(running.config.console->mode == "Off");
        BOOST_TEST(running.memory_actual_size.value_or(0) == 256ull << 20);

        auto events = fake.events();
        BOOST_TEST(contains(events, "vmm/starting"));
        BOOST_TEST(contains(events, "vm/booting"));
        BOOST_TEST(contains(events, "vm/booted"));
        BOOST_TEST(contains(events, "virtio-device/activated(_disk0)"));
    });
}

BOOST_AUTO_TEST_CASE(state_conflicts_map_to_errc) {
    run_coro([]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        fake_ch_process fake(ex);
        auto api = fake.client(ex);

        // Before create: boot is 404, pause 500, reboot 404 (§1.3).
        auto boot_none = co_await expect_api_error([&]() { return api.vm_boot(); });
        BOOST_TEST((boot_none->code() == errc::not_found));
        auto pause_none = co_await expect_api_error([&]() { return api.vm_pause(); });
        BOOST_TEST(pause_none->status() == 500);
        BOOST_TEST((pause_none->code() == errc::command_failed));
        BOOST_TEST(pause_none->chain().back() == "VM is not running");

        auto config = small_vm();
        co_await api.vm_create(config);
        auto create_twice = co_await expect_api_error([&]() { return api.vm_create(config); });
        BOOST_TEST((create_twice->code() == errc::command_failed));
        BOOST_TEST(create_twice->chain().back() == "VM is already created");
        auto reboot_cold = co_await expect_api_error([&]() { return api.vm_reboot(); });
        BOOST_TEST(reboot_cold->status() == 404);  // 404 even though a VM is created
        auto counters_cold = co_await expect_api_error([&]() { return api.vm_counters(); });
        BOOST_TEST(counters_cold->status() == 500);

        co_await api.vm_boot();
        auto boot_twice = co_await expect_api_error([&]() { return api.vm_boot(); });
        BOOST_TEST(boot_twice->status() == 500);
        BOOST_TEST((boot_twice->code() == errc::command_failed));
        BOOST_TEST(boot_twice->chain().back() == "VM is already created");

        auto resume_running = co_await expect_api_error([&]() { return api.vm_resume(); });
        BOOST_TEST(resume_running->status() == 500);
        auto snapshot_running =
            co_await expect_api_error([&]() { return api.vm_snapshot("file://" + fake.dir().string()); });
        BOOST_TEST(snapshot_running->chain().back() == "Trying to snapshot while VM is running");

        co_await api.vm_pause();
        auto info_1 = co_await api.vm_info();
        BOOST_TEST((info_1.state == ch::vm_state::paused));
        auto pause_twice = co_await expect_api_error([&]() { return api.vm_pause(); });
        BOOST_TEST((pause_twice->code() == errc::command_failed));
        co_await api.vm_resume();
        auto info_2 = co_await api.vm_info();
        BOOST_TEST((info_2.state == ch::vm_state::running));
        co_await api.vm_reboot();

        // vm.shutdown drops the VM and keeps the config: "Created", bootable again (§1.2).
        co_await api.vm_shutdown();
        auto info_3 = co_await api.vm_info();
        BOOST_TEST((info_3.state == ch::vm_state::created));
        auto shutdown_twice = co_await expect_api_error([&]() { return api.vm_shutdown(); });
        BOOST_TEST(shutdown_twice->status() == 500);
        co_await api.vm_boot();
        auto info_4 = co_await api.vm_info();
        BOOST_TEST((info_4.state == ch::vm_state::running));

        // vm.delete is idempotent.
        co_await api.vm_delete();
        co_await api.vm_delete();
        auto gone = co_await expect_api_error([&]() { return api.vm_info(); });
        BOOST_TEST((gone->code() == errc::not_found));

        auto events = fake.events();
        for (const char* e : {"vm/pausing", "vm/paused", "vm/resuming", "vm/resumed", "vm/rebooting",
                              "vm/rebooted", "vm/shutdown", "vm/deleted"})
            BOOST_TEST(contains(events, e), e);
    });
}

BOOST_AUTO_TEST_CASE(power_button_ends_the_vmm) {
    run_coro([]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        fake_ch_process fake(ex);
        auto api = fake.client(ex);
        auto config = small_vm();
        co_await api.vm_create(config);
        co_await api.vm_boot();
        co_await api.vm_power_button();  // only injects the ACPI event: answered at once
        auto status = co_await wait_exit(fake.process());
        BOOST_TEST(!status.signaled);
        BOOST_TEST(status.code == 0);  // a guest poweroff ends CH with status 0 (§3.1)
        auto events = fake.events();
        BOOST_TEST_REQUIRE(events.size() >= 3u);
        BOOST_TEST(events[events.size() - 3] == "vm/shutdown");
        BOOST_TEST(events[events.size() - 2] == "vm/deleted");
        BOOST_TEST(events.back() == "vmm/shutdown");
        // The client notices: the next call finds the VMM gone.
        auto code = co_await error_of([&]() { return api.vmm_ping(); });
        BOOST_TEST((code == errc::vmm_crashed));
    });
}

BOOST_AUTO_TEST_CASE(counters_resize_and_hotplug) {
    run_coro([]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        fake_ch_process fake(ex);
        auto api = fake.client(ex);
        auto config = small_vm();
        co_await api.vm_create(config);

        // Cold: resize and add-* only edit the config; add-* answers 204 (no device yet).
        ch::resize_request cold;
        cold.desired_vcpus = 2;
        co_await api.vm_resize(cold);
        ch::disk_config data{.path = "/images/data.img", .readonly = true};
        auto cold_disk = co_await api.vm_add_disk(data);
        BOOST_TEST(!cold_disk.has_value());
        auto info_5 = co_await api.vm_info();
        BOOST_TEST(info_5.config.cpus.boot_vcpus == 2u);

        co_await api.vm_boot();
        auto counters = co_await api.vm_counters();
        BOOST_TEST_REQUIRE(counters.count("_disk0") == 1u);
        BOOST_TEST(counters["_disk0"]["read_bytes"] == 4096u);
        BOOST_TEST(counters.count("_net0") == 1u);

        ch::resize_request grow;
        grow.desired_vcpus = 4;
        co_await api.vm_resize(grow);
        auto info_6 = co_await api.vm_info();
        BOOST_TEST(info_6.config.cpus.boot_vcpus == 4u);
        ch::resize_request too_many;
        too_many.desired_vcpus = 5;
        auto over = co_await expect_api_error([&]() { return api.vm_resize(too_many); });
        BOOST_TEST((over->code() == errc::command_failed));
        ch::resize_request balloon;
        balloon.desired_balloon = 64ull << 20;
        auto no_balloon = co_await expect_api_error([&]() { return api.vm_resize(balloon); });
        BOOST_TEST(no_balloon->chain().back() == "No balloon device");
        auto no_zone = co_await expect_api_error([&]() { return api.vm_resize_zone("zone9", 1ull << 30); });
        BOOST_TEST(no_zone->status() == 500);

        // Hot: 200 with PciDeviceInfo.
        ch::disk_config scratch{.path = "/images/scratch.img", .id = std::string("scratch")};
        auto hot = co_await api.vm_add_disk(scratch);
        BOOST_TEST_REQUIRE(hot.has_value());
        BOOST_TEST(hot->id == "scratch");
        BOOST_TEST(hot->bdf.starts_with("0000:00:"));
        ch::pmem_config pmem{"/images/pmem.img", std::nullopt, std::nullopt};
        auto hot_pmem = co_await api.vm_add_pmem(pmem);
        BOOST_TEST(hot_pmem->id == "_pmem0");
        ch::vsock_config vsock{5, (fake.dir() / "vsock.sock").string(), std::nullopt};
        auto hot_vsock = co_await api.vm_add_vsock(vsock);
        BOOST_TEST(hot_vsock->id == "_vsock0");
        ch::net_config nic{std::string("tap1"), std::nullopt, std::nullopt};
        auto nic_7 = co_await api.vm_add_net(nic);
        BOOST_TEST(nic_7->id == "_net1");
        // virtio-fs needs shared memory: a config error (400) found at hotplug.
        ch::fs_config share{"share", (fake.dir() / "virtiofsd.sock").string(), 1, 1024, std::nullopt};
        auto fs_error = co_await expect_api_error([&]() { return api.vm_add_fs(share); });
        BOOST_TEST((fs_error->code() == errc::invalid_spec));

        auto same_id = co_await expect_api_error([&]() { return api.vm_add_disk(scratch); });
        BOOST_TEST(same_id->status() == 409);
        BOOST_TEST((same_id->code() == errc::already_exists));

        co_await api.vm_remove_device("scratch");
        auto again = co_await expect_api_error([&]() { return api.vm_remove_device("scratch"); });
        BOOST_TEST((again->code() == errc::not_found));
        auto info = co_await api.vm_info();
        BOOST_TEST(info.config.disks.size() == 2u);  // root + the cold-added data disk
        BOOST_TEST(info.config.pmem.size() == 1u);
        BOOST_TEST(info.config.vsock.has_value());
        BOOST_TEST(contains(fake.events(), "vm/device-removed(scratch)"));
        BOOST_TEST(contains(fake.events(), "vm/resized"));
    });
}

BOOST_AUTO_TEST_CASE(snapshot_and_restore) {
    run_coro([]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        fake_ch_process fake(ex);
        auto api = fake.client(ex);
        auto config = small_vm();
        co_await api.vm_create(config);
        co_await api.vm_boot();
        co_await api.vm_pause();
        const auto snap = fake.dir() / "snap";
        std::filesystem::create_directory(snap);
        co_await api.vm_snapshot("file://" + snap.string());
        BOOST_TEST(std::filesystem::exists(snap / "config.json"));
        BOOST_TEST(std::filesystem::exists(snap / "state.json"));
        BOOST_TEST(std::filesystem::file_size(snap / "memory-ranges") == 256ull << 20);
        auto info_8 = co_await api.vm_info();
        BOOST_TEST((info_8.state == ch::vm_state::paused));  // stays paused (§5)
        // The files are created new: a second snapshot into the same directory fails.
        auto again = co_await expect_api_error([&]() { return api.vm_snapshot("file://" + snap.string()); });
        BOOST_TEST(again->status() == 500);

        ch::restore_request restore;
        restore.source_url = "file://" + snap.string();
        auto while_created = co_await expect_api_error([&]() { return api.vm_restore(restore); });
        BOOST_TEST(while_created->status() == 500);  // not the OpenAPI's 404 (§1.3)

        co_await api.vm_delete();
        co_await api.vm_restore(restore);
        auto restored = co_await api.vm_info();
        BOOST_TEST((restored.state == ch::vm_state::paused));
        BOOST_TEST(restored.config.payload.cmdline.value_or("") == "console=ttyS0 root=/dev/vda");
        co_await api.vm_resume();
        auto info_9 = co_await api.vm_info();
        BOOST_TEST((info_9.state == ch::vm_state::running));
        // resume:true leaves it running.
        co_await api.vm_delete();
        restore.resume = true;
        co_await api.vm_restore(restore);
        auto resumed = co_await api.vm_info();
        BOOST_TEST((resumed.state == ch::vm_state::running));
        auto events = fake.events();
        for (const char* e :
             {"vm/snapshotting", "vm/snapshotted", "vm/restoring", "vm/restored", "vm/resumed"})
            BOOST_TEST(contains(events, e), e);
    });
}

BOOST_AUTO_TEST_CASE(vmm_shutdown_exits_cleanly) {
    run_coro([]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        fake_ch_process fake(ex);
        auto api = fake.client(ex);
        auto config = small_vm();
        co_await api.vm_create(config);
        co_await api.vm_boot();
        co_await api.vmm_shutdown();
        auto status = co_await wait_exit(fake.process());
        BOOST_TEST(status.code == 0);
        auto events = fake.events();
        BOOST_TEST(events.back() == "vmm/shutdown");
    });
}

BOOST_AUTO_TEST_CASE(wrong_method_and_unknown_path) {
    run_coro([]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        fake_ch_process fake(ex);
        auto api = fake.client(ex);
        auto get_boot = co_await api.http().async_request("GET", "/api/v1/vm.boot");
        BOOST_TEST(get_boot.status == 400);
        BOOST_TEST(get_boot.body == R"(["Bad Request"])");
        auto body_on_boot = co_await api.http().async_request("PUT", "/api/v1/vm.boot", std::string("{}"));
        BOOST_TEST(body_on_boot.status == 400);
        auto unknown = co_await api.http().async_request("GET", "/api/v1/vm.info/");
        BOOST_TEST(unknown.status == 404);
        BOOST_TEST(ch::parse_error_chain(unknown.body) == vmrt::test::strings("Not Found"));
        // micro_http's own parse error: invalid JSON, read as plain text.
        auto post = co_await api.http().async_request("POST", "/api/v1/vm.info");
        BOOST_TEST(post.status == 400);
        BOOST_TEST(*post.header("server") == "Firecracker API");
        auto chain = ch::parse_error_chain(post.body);
        BOOST_TEST_REQUIRE(chain.size() == 1u);
        BOOST_TEST(
            contains(chain[0], "Invalid HTTP Method.\\nAll previous unanswered requests will be dropped."));
        auto bad_json = co_await api.http().async_request("PUT", "/api/v1/vm.create", std::string("{nope"));
        BOOST_TEST(bad_json.status == 400);
        BOOST_TEST(ch::parse_error_chain(bad_json.body).at(0) == "Failed to deserialize JSON");
        auto no_body = co_await api.http().async_request("PUT", "/api/v1/vm.create");
        BOOST_TEST(no_body.status == 400);
        BOOST_TEST(no_body.body.empty());
        // A config with only a payload: CH's defaults appear in vm.info.
        const std::string minimal_config = R"({"payload":{"kernel":"/k"}})";
        auto minimal = co_await api.http().async_request("PUT", "/api/v1/vm.create", minimal_config);
        BOOST_TEST(minimal.status == 204);
        auto info = co_await api.vm_info();
        BOOST_TEST(info.config.cpus.boot_vcpus == 1u);
        BOOST_TEST(info.config.memory.size == 512ull << 20);

        // Absolute-form URI, no Host header, as micro_http allows (§2.1); read with the codec.
        socket_type raw(ex);
        raw.connect(asio::local::stream_protocol::endpoint(fake.socket_path().string()));
        const std::string request = "GET http://localhost/api/v1/vmm.ping HTTP/1.1\r\n\r\n";
        co_await asio::async_write(raw, asio::buffer(request), asio::use_awaitable);
        vmrt::io::http1::response_parser parser;
        std::optional<vmrt::io::http1::response> pong;
        while (!pong) {
            char buf[512];
            auto n = co_await raw.async_read_some(asio::buffer(buf), asio::use_awaitable);
            parser.feed(std::string_view(buf, n));
            pong = parser.next();
        }
        BOOST_TEST(pong->status == 200);
        BOOST_TEST(pong->reason.empty());
        BOOST_TEST(*pong->header("Server") == "Cloud Hypervisor API");
        BOOST_TEST(*pong->header("Connection") == "keep-alive");
    });
}

BOOST_AUTO_TEST_CASE(double_dies_mid_request) {
    run_coro([]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        {
            fake_ch_process fake(ex, "crash-on=vm.info");
            auto api = fake.client(ex);
            co_await api.vmm_ping();
            auto code = co_await error_of([&]() { return api.vm_info(); });
            BOOST_TEST((code == errc::vmm_crashed));
            auto status = co_await wait_exit(fake.process());
            BOOST_TEST(status.code == 3);
            BOOST_TEST(!api.http().is_open());
        }
        {
            fake_ch_process fake(ex, "crash-mid-reply=vmm.ping");
            auto api = fake.client(ex);
            try {
                co_await api.vmm_ping();
                BOOST_ERROR("a half reply was accepted");
            } catch (const vmrt::error& e) {
                BOOST_TEST((e.code() == errc::vmm_crashed));
                BOOST_TEST(contains(std::string(e.what()), "before the response was complete"));
            }
            co_await wait_exit(fake.process());
        }
    });
}

BOOST_AUTO_TEST_CASE(malformed_body_and_timeout_with_reconnect) {
    run_coro([]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        fake_ch_process fake(ex, "malformed-body=vm.info,slow=vm.boot:1500");
        auto api = fake.client(ex, 300ms);
        auto config = small_vm();
        co_await api.vm_create(config);
        auto bad = co_await error_of([&]() { return api.vm_info(); });
        BOOST_TEST((bad == errc::protocol_error));

        // The double blocks 1.5 s in vm.boot: the client gives up after 300 ms and drops the
        // connection; a client without a path cannot reconnect.
        auto slow = co_await error_of([&]() { return api.vm_boot(); });
        BOOST_TEST((slow == errc::timeout));
        BOOST_TEST(!api.http().is_open());
        auto closed = co_await error_of([&]() { return api.vmm_ping(); });
        BOOST_TEST((closed == errc::invalid_state));

        // A client made from the path reconnects when told to; the double is free again once its
        // boot has finished.
        vmrt::io::http_unix_client::options o;
        o.reconnect_on_closed = true;
        o.request_timeout = 5s;
        ch::api_client by_path(vmrt::io::http_unix_client(ex, fake.socket_path(), o));
        auto ping_10 = co_await by_path.vmm_ping();
        BOOST_TEST(!ping_10.version.empty());
        auto counters = co_await by_path.vm_counters();  // the slow boot did complete on CH's side
        BOOST_TEST(counters.count("_disk0") == 1u);
        by_path.http().close();
        auto ping_11 = co_await by_path.vmm_ping();
        BOOST_TEST(!ping_11.version.empty());  // reconnected
    });
}

// --api-socket path=... (the mode with the start-up race, §10.1) and CLI mode (--kernel: CH
// creates and boots the VM itself, §3.1).
BOOST_AUTO_TEST_CASE(path_mode_and_cli_boot) {
    run_coro([]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        vmrt::test::temp_dir dir;
        const auto sock = dir / "ch.sock";
        vmrt::io::process_options opts;
        opts.program = vmrt::test::helper_program("VMRT_FAKE_CLOUD_HYPERVISOR");
        opts.args = vmrt::test::strings("--api-socket", "path=" + sock.string(), "--kernel", "/boot/vmlinuz",
                                        "--cmdline", "console=ttyS0", "--cpus", "boot=2,max=4", "--memory",
                                        "size=512M,shared=on", "--disk", "path=/images/root.img", "--console",
                                        "off", "--serial", "file=" + (dir / "serial.log").string());
        opts.log_file = dir / "ch.log";
        auto proc = vmrt::io::process::spawn(ex, opts);
        // Without a pre-bound socket the client must wait for the file (here: poll with a deadline).
        asio::steady_timer t(ex);
        for (int i = 0; i < 200 && !std::filesystem::exists(sock); ++i) {
            t.expires_after(10ms);
            co_await t.async_wait(asio::use_awaitable);
        }
        BOOST_TEST_REQUIRE(std::filesystem::exists(sock));
        const bool private_socket = (std::filesystem::status(sock).permissions() &
                                     std::filesystem::perms::group_all) == std::filesystem::perms::none;
        BOOST_TEST(private_socket);  // umask 077 (§2.1)
        ch::api_client api(vmrt::io::http_unix_client(ex, sock));
        auto info = co_await api.vm_info();
        BOOST_TEST((info.state == ch::vm_state::running));
        BOOST_TEST(info.config.cpus.boot_vcpus == 2u);
        BOOST_TEST(info.config.memory.size == 512ull << 20);
        BOOST_TEST(info.config.memory.shared.value_or(false));
        BOOST_TEST(info.config.serial->file.value_or("") == (dir / "serial.log").string());
        // Shared memory: virtio-fs hotplug is accepted. The double connects to the backend at
        // vm.add-fs as CH does (and needs a real one: virtiofsd_sidecar_test), so one runs here.
        vmrt::hv::virtiofsd_options backend;
        backend.binary = "/usr/lib/qemu/virtiofsd";
        backend.shared_dir = dir.path();
        backend.socket = dir / "virtiofsd.sock";
        backend.log_file = dir / "virtiofsd.log";
        backend.tag = "share";
        vmrt::hv::virtiofsd_sidecar virtiofsd(ex, backend);
        ch::fs_config share{"share", backend.socket.string(), 1, 1024, std::nullopt};
        auto fs = co_await api.vm_add_fs(share);
        BOOST_TEST_REQUIRE(fs.has_value());
        BOOST_TEST(fs->id == "_fs0");

        // A second CH on the same socket path is refused (the .lock flock, §2.1).
        vmrt::io::process_options second = opts;
        second.log_file = dir / "ch2.log";
        auto other = vmrt::io::process::spawn(ex, second);
        auto other_status = co_await wait_exit(other);
        BOOST_TEST(other_status.code == 1);
        BOOST_TEST(contains(vmrt::io::read_file_tail(dir / "ch2.log"), "API socket in use"));

        co_await api.vmm_shutdown();
        auto status = co_await wait_exit(proc);
        BOOST_TEST(status.success());
        BOOST_TEST(!std::filesystem::exists(sock));  // removed on a clean exit; the .lock stays (§2.1)
        BOOST_TEST(std::filesystem::exists(dir / "ch.sock.lock"));
    });
}

namespace {

// The server end of a socketpair, scripted by a test: it sends whatever bytes it is told to,
// including what CH never sends.
class raw_peer {
public:
    explicit raw_peer(socket_type s) : socket_(std::move(s)) {}
    // One request: its head (up to the blank line); the body is read by Content-Length.
    asio::awaitable<std::string> read_request() {
        auto n = co_await asio::async_read_until(socket_, asio::dynamic_buffer(buf_), "\r\n\r\n",
                                                 asio::use_awaitable);
        std::string head = buf_.substr(0, n);
        buf_.erase(0, n);
        auto at = head.find("Content-Length: ");
        if (at != std::string::npos) {
            auto length = std::stoul(head.substr(at + 16));
            while (buf_.size() < length) {
                char more[512];
                auto got = co_await socket_.async_read_some(asio::buffer(more), asio::use_awaitable);
                buf_.append(more, got);
            }
            buf_.erase(0, length);
        }
        co_return head;
    }
    asio::awaitable<void> write(std::string bytes) {
        co_await asio::async_write(socket_, asio::buffer(bytes), asio::use_awaitable);
    }
    std::size_t available() { return socket_.available(); }
    void close() { socket_.close(); }

private:
    socket_type socket_;
    std::string buf_;
};

struct peer_pair {
    socket_type client_end;
    raw_peer peer;
};

peer_pair make_pair(asio::any_io_executor ex) {
    socket_type a(ex), b(ex);
    asio::local::connect_pair(a, b);
    return {std::move(a), raw_peer(std::move(b))};
}

// The peer's reply to the next request; errors are left for the client side to observe.
asio::awaitable<void> answer(raw_peer& peer, std::string reply, bool close_after = false) {
    try {
        co_await peer.read_request();
        co_await peer.write(std::move(reply));
        if (close_after) peer.close();
    } catch (const std::exception&) {
    }
}

asio::awaitable<vmrt::error_code> request_error(vmrt::io::http_unix_client& http,
                                                std::string* what = nullptr) {
    try {
        co_await http.async_request("GET", "/api/v1/vm.info");
    } catch (const vmrt::error& e) {
        if (what) *what = e.what();
        co_return e.code();
    }
    co_return vmrt::error_code{};
}

}  // namespace

BOOST_AUTO_TEST_CASE(raw_peer_framing_and_malformed_replies) {
    run_coro([]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        {  // keep-alive: two replies without reason phrases on one connection
            auto [end, peer] = make_pair(ex);
            vmrt::io::http_unix_client http(std::move(end));
            asio::co_spawn(ex, answer(peer, "HTTP/1.1 204 \r\nServer: Cloud Hypervisor API\r\n\r\n"),
                           asio::detached);
            auto reply_12 = co_await http.async_request("PUT", "/api/v1/vm.boot");
            BOOST_TEST(reply_12.status == 204);
            asio::co_spawn(ex, answer(peer, "HTTP/1.1 200\r\nContent-Length: 2\r\n\r\n{}"), asio::detached);
            auto r = co_await http.async_request("GET", "/api/v1/vm.info");
            BOOST_TEST(r.body == "{}");
        }
        {  // a broken status line
            auto [end, peer] = make_pair(ex);
            vmrt::io::http_unix_client http(std::move(end));
            asio::co_spawn(ex, answer(peer, "HTTP/1.1 2x4 \r\n\r\n"), asio::detached);
            std::string what;
            auto code_13 = co_await request_error(http, &what);
            BOOST_TEST((code_13 == errc::protocol_error));
            BOOST_TEST(contains(what, "bad status code in \"HTTP/1.1 2x4 \""), what);
            BOOST_TEST(!http.is_open());
        }
        {  // the peer closes half-way through the body
            auto [end, peer] = make_pair(ex);
            vmrt::io::http_unix_client http(std::move(end));
            asio::co_spawn(ex, answer(peer, "HTTP/1.1 200 \r\nContent-Length: 10\r\n\r\n{\"a\"", true),
                           asio::detached);
            std::string what;
            auto code_14 = co_await request_error(http, &what);
            BOOST_TEST((code_14 == errc::vmm_crashed));
            BOOST_TEST(contains(what, "4 response bytes") ==
                       false);  // counts the buffered bytes, not the body
            BOOST_TEST(contains(what, "before the response was complete"), what);
        }
        {  // bytes after the response that no request asked for
            auto [end, peer] = make_pair(ex);
            vmrt::io::http_unix_client http(std::move(end));
            asio::co_spawn(ex, answer(peer, "HTTP/1.1 204 \r\n\r\nHTTP/1.1 204 \r\n\r\n"), asio::detached);
            auto code_15 = co_await request_error(http);
            BOOST_TEST((code_15 == errc::protocol_error));
        }
        {  // a chunked reply cannot be framed (CH never sends one)
            auto [end, peer] = make_pair(ex);
            vmrt::io::http_unix_client http(std::move(end));
            asio::co_spawn(
                ex, answer(peer, "HTTP/1.1 200 \r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"),
                asio::detached);
            auto code_16 = co_await request_error(http);
            BOOST_TEST((code_16 == errc::protocol_error));
        }
    });
}

BOOST_AUTO_TEST_CASE(requests_are_serialized) {
    run_coro([]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        auto [end, peer] = make_pair(ex);
        vmrt::io::http_unix_client http(std::move(end));
        std::vector<std::string> order;
        auto one = [&](std::string target) -> asio::awaitable<void> {
            auto r = co_await http.async_request("GET", target);
            order.push_back(target + "=" + r.body);
        };
        asio::co_spawn(ex, one("/api/v1/a"), asio::detached);
        asio::co_spawn(ex, one("/api/v1/b"), asio::detached);
        auto first = co_await peer.read_request();
        BOOST_TEST(first.starts_with("GET /api/v1/a "));
        asio::steady_timer t(ex, 100ms);
        co_await t.async_wait(asio::use_awaitable);
        BOOST_TEST(peer.available() == 0u);  // the second request waits for the first reply
        co_await peer.write("HTTP/1.1 200 \r\nContent-Length: 1\r\n\r\n1");
        auto second = co_await peer.read_request();
        BOOST_TEST(second.starts_with("GET /api/v1/b "));
        co_await peer.write("HTTP/1.1 200 \r\nContent-Length: 1\r\n\r\n2");
        t.expires_after(50ms);
        co_await t.async_wait(asio::use_awaitable);
        BOOST_TEST(order == vmrt::test::strings("/api/v1/a=1", "/api/v1/b=2"),
                   boost::test_tools::per_element());
    });
}

BOOST_AUTO_TEST_CASE(older_ch_error_bodies_and_status_classes) {
    run_coro([]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        auto [end, peer] = make_pair(ex);
        ch::api_client api{vmrt::io::http_unix_client(std::move(end))};
        // Before v48 the body was Debug/Display text with a JSON content type (§2.6).
        const std::string text = "VmmShutdown(VmmShutdown(VmNotRunning))";
        asio::co_spawn(ex,
                       answer(peer, "HTTP/1.1 500 \r\nContent-Type: application/json\r\nContent-Length: " +
                                        std::to_string(text.size()) + "\r\n\r\n" + text),
                       asio::detached);
        auto old = co_await expect_api_error([&]() { return api.vm_shutdown(); });
        BOOST_TEST((old->code() == errc::command_failed));
        BOOST_TEST(old->chain() == vmrt::test::strings(text), boost::test_tools::per_element());
        BOOST_TEST(old->diag().message == "vm.shutdown: HTTP 500: " + text);

        asio::co_spawn(ex, answer(peer, "HTTP/1.1 429 \r\nContent-Length: 0\r\n\r\n"), asio::detached);
        ch::resize_request r;
        r.desired_vcpus = 1;
        auto busy = co_await expect_api_error([&]() { return api.vm_resize(r); });
        BOOST_TEST((busy->code() == errc::invalid_state));
        BOOST_TEST(busy->chain().empty());

        // A 2xx whose body is not what the endpoint returns.
        asio::co_spawn(ex, answer(peer, "HTTP/1.1 200 \r\nContent-Length: 7\r\n\r\n{\"x\":1}"),
                       asio::detached);
        ch::disk_config d{.path = "/x.img"};
        auto not_pci = co_await error_of([&]() { return api.vm_add_disk(d); });
        BOOST_TEST((not_pci == errc::protocol_error));

        // vmm.shutdown: the process may exit before replying (§10.4): success.
        asio::co_spawn(
            ex,
            // An init-capture: clang 14 cannot capture a structured binding (P1091 came in clang 16).
            [&server = peer]() -> asio::awaitable<void> {
                try {
                    co_await server.read_request();
                } catch (const std::exception&) {
                }
                server.close();
            },
            asio::detached);
        co_await api.vmm_shutdown();
    });
}

// CH accepts 10 connections; the 11th gets a canned 503 with Connection: close (§2.1).
BOOST_AUTO_TEST_CASE(eleventh_connection_is_refused) {
    run_coro([]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        fake_ch_process fake(ex);
        std::vector<ch::api_client> clients;
        for (int i = 0; i < 10; ++i) {
            clients.push_back(fake.client(ex));
            co_await clients.back().vmm_ping();  // accepted and served
        }
        socket_type extra(ex);
        extra.connect(asio::local::stream_protocol::endpoint(fake.socket_path().string()));
        std::string reply;
        boost::system::error_code ec;
        for (;;) {
            char buf[512];
            auto n = co_await extra.async_read_some(asio::buffer(buf),
                                                    asio::redirect_error(asio::use_awaitable, ec));
            if (ec) break;
            reply.append(buf, n);
        }
        BOOST_TEST((ec == asio::error::eof));
        vmrt::io::http1::response_parser parser;
        parser.feed(reply);
        auto r = parser.next();
        BOOST_TEST_REQUIRE(r.has_value());
        BOOST_TEST(r->status == 503);
        BOOST_TEST(*r->header("connection") == "close");
        // Closing one of the ten frees a slot.
        clients.front().http().close();
        asio::steady_timer t(ex, 50ms);
        co_await t.async_wait(asio::use_awaitable);
        auto again = fake.client(ex);
        auto ping = co_await again.vmm_ping();
        BOOST_TEST(!ping.version.empty());
    });
}

// A client that half-closes after its request gets no reply: CH drops the connection (§2.2).
BOOST_AUTO_TEST_CASE(half_close_loses_the_reply) {
    run_coro([]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        fake_ch_process fake(ex, "slow=vm.boot:1000");
        auto api = fake.client(ex);
        auto config = small_vm();
        co_await api.vm_create(config);
        // While the double is busy in vm.boot (its one VMM thread blocks every connection), a
        // second client sends a request and half-closes, so both are there when it reads.
        bool booted = false;
        auto boot = [&]() -> asio::awaitable<void> {
            co_await api.vm_boot();
            booted = true;
        };
        asio::co_spawn(ex, boot(), asio::detached);
        asio::steady_timer t(ex, 200ms);
        co_await t.async_wait(asio::use_awaitable);
        socket_type raw(ex);
        raw.connect(asio::local::stream_protocol::endpoint(fake.socket_path().string()));
        const std::string request = vmrt::io::http1::encode_request("PUT", "/api/v1/vm.pause");
        co_await asio::async_write(raw, asio::buffer(request), asio::use_awaitable);
        raw.shutdown(socket_type::shutdown_send);
        char buf[256];
        boost::system::error_code ec;
        auto n =
            co_await raw.async_read_some(asio::buffer(buf), asio::redirect_error(asio::use_awaitable, ec));
        BOOST_TEST((ec == asio::error::eof));
        BOOST_TEST(n == 0u);
        auto info = co_await api.vm_info();  // queued behind the boot on this client
        BOOST_TEST(booted);
        BOOST_TEST((info.state == ch::vm_state::paused));  // the action ran; only its reply was lost
    });
}

// Cancelling a call (running or still queued) is errc::cancelled, and the connection, whose
// state is then unknown, is closed.
BOOST_AUTO_TEST_CASE(cancelled_requests) {
    run_coro([]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        auto [end, peer] = make_pair(ex);
        vmrt::io::http_unix_client http(std::move(end));
        std::vector<vmrt::error_code> codes;
        auto call = [&]() -> asio::awaitable<void> {
            try {
                co_await http.async_request("GET", "/api/v1/vm.info");
                codes.emplace_back();
            } catch (const vmrt::error& e) {
                codes.push_back(e.code());
            }
        };
        asio::cancellation_signal running, queued;
        asio::co_spawn(ex, call(), asio::bind_cancellation_slot(running.slot(), asio::detached));
        asio::co_spawn(ex, call(), asio::bind_cancellation_slot(queued.slot(), asio::detached));
        co_await peer.read_request();  // the first is on the wire, the second waits for it
        queued.emit(asio::cancellation_type::terminal);
        running.emit(asio::cancellation_type::terminal);
        asio::steady_timer t(ex, 50ms);
        co_await t.async_wait(asio::use_awaitable);
        BOOST_TEST_REQUIRE(codes.size() == 2u);
        for (const auto& c : codes) BOOST_TEST((c == errc::cancelled), c.message());
        BOOST_TEST(!http.is_open());
    });
}

BOOST_AUTO_TEST_SUITE_END()
