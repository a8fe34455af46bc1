// hv::virtiofsd_sidecar with the real virtiofsd of this machine (QEMU 7.2's C daemon,
// /usr/lib/qemu/virtiofsd; Debian 12 has no Rust virtiofsd package) and
// vmrt-fake-cloud-hypervisor as its vhost-user frontend. The double connects to the socket the way
// Cloud Hypervisor does (blocking retries, then VHOST_USER_GET_FEATURES, which only a real backend
// answers) and disconnects at reboot and shutdown, which is what makes virtiofsd exit.
//
// What connected is read from the daemon's own log: QEMU's virtiofsd logs "Received vhost-user
// socket connection" for each frontend it accepts.
#include "hv/ch_api.hpp"
#include "hv/virtiofsd_sidecar.hpp"
#include "io/http_unix_client.hpp"
#include "support/test_support.hpp"

#include <vmrt/io/process.hpp>
#include <vmrt/io/with_timeout.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/test/unit_test.hpp>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace asio = boost::asio;
namespace ch = vmrt::hv::ch;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using vmrt::errc;
using vmrt::hv::virtiofsd_options;
using vmrt::hv::virtiofsd_sidecar;
using vmrt::test::run_coro;

namespace {

const fs::path c_virtiofsd = "/usr/lib/qemu/virtiofsd";

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

std::string slurp(const fs::path& file) {
    std::ifstream in(file);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

std::size_t count_of(const std::string& text, const std::string& part) {
    std::size_t n = 0;
    for (auto at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++n;
    return n;
}

// PIDs of live processes whose command line contains `part` (tolerant of processes that vanish).
std::vector<pid_t> processes_mentioning(const std::string& part) {
    std::vector<pid_t> found;
    for (auto& entry : fs::directory_iterator("/proc")) {
        const auto name = entry.path().filename().string();
        if (name.find_first_not_of("0123456789") != std::string::npos) continue;
        auto cmdline = slurp(entry.path() / "cmdline");  // empty for zombies and kernel threads
        std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
        if (contains(cmdline, part)) found.push_back(std::stoi(name));
    }
    return found;
}

// The C virtiofsd forks into a pid namespace of its own: the group's SIGKILL reaches that child
// too, but it dies after the daemon vmrt reaps, asynchronously (the namespace is torn down by the
// kernel). So "gone" is checked with a bound, not at the instant the owner returns.
std::vector<pid_t> processes_mentioning_after_exit(const std::string& part) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    auto live = processes_mentioning(part);
    while (!live.empty() && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        live = processes_mentioning(part);
    }
    return live;
}

bool can_connect(const fs::path& p) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, p.c_str(), p.native().size() + 1);
    const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    ::close(fd);
    return ok;
}

// A temp dir with a directory to share; every sidecar of a test uses it.
struct share_fixture {
    vmrt::test::temp_dir dir;
    fs::path share = dir / "share";
    fs::path socket = dir / "fs.sock";
    fs::path log = dir / "virtiofsd.log";
    std::vector<std::string> notes;

    share_fixture() { fs::create_directory(share); }

    virtiofsd_options options(fs::path binary = c_virtiofsd) const {
        virtiofsd_options o;
        o.binary = std::move(binary);
        o.shared_dir = share;
        o.socket = socket;
        o.log_file = log;
        o.tag = "share";
        return o;
    }
    virtiofsd_sidecar::note_fn recorder() {
        return [this](std::string n) {
            notes.push_back(std::move(n));
        };
    }
    std::string source_arg() const { return "source=" + share.string(); }
    std::size_t connections() const { return count_of(slurp(log), "Received vhost-user socket connection"); }
    bool noted(const std::string& part) const {
        return std::any_of(notes.begin(), notes.end(),
                           [&](const std::string& n) { return contains(n, part); });
    }
    fs::path script(const std::string& name, const std::string& text) const {
        auto p = dir / name;
        vmrt::test::write_file(p, text);
        fs::permissions(p, fs::perms::owner_all);
        return p;
    }
};

// Polls `done` every 10 ms on the test's io_context (so the sidecar's own waits run meanwhile).
asio::awaitable<bool> eventually(std::function<bool()> done, std::chrono::milliseconds limit = 10s) {
    asio::steady_timer t(co_await asio::this_coro::executor);
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done()) {
        if (std::chrono::steady_clock::now() > deadline) co_return false;
        t.expires_after(10ms);
        co_await t.async_wait(asio::use_awaitable);
    }
    co_return true;
}

// vmrt-fake-cloud-hypervisor with --api-socket path=<dir>/api.sock; killed and reaped by
// io::process's destructor if a test fails half-way.
class fake_ch {
public:
    fake_ch(asio::any_io_executor ex, const fs::path& dir, std::vector<std::string> vm_flags,
            std::string wait_ms = "")
        : api_socket_(dir / "api.sock"), log_(dir / "ch.log") {
        vmrt::io::process_options o;
        o.program = vmrt::test::helper_program("VMRT_FAKE_CLOUD_HYPERVISOR");
        o.args = vmrt::test::strings("--api-socket", "path=" + api_socket_.string());
        o.args.insert(o.args.end(), vm_flags.begin(), vm_flags.end());
        o.log_file = log_;
        if (!wait_ms.empty()) o.env_overrides.emplace_back("VMRT_FAKE_CH_VHOST_USER_WAIT_MS", wait_ms);
        proc_ = vmrt::io::process::spawn(ex, o);
    }

    // A client by path, once the double has bound its socket (it does so before a CLI boot).
    asio::awaitable<ch::api_client> client() {
        auto ex = co_await asio::this_coro::executor;
        const bool socket_bound = co_await eventually([&] { return fs::is_socket(api_socket_); });
        BOOST_TEST_REQUIRE(socket_bound);
        vmrt::io::http_unix_client::options o;
        o.request_timeout = 20s;
        co_return ch::api_client(vmrt::io::http_unix_client(ex, api_socket_, o));
    }

    asio::awaitable<vmrt::exit_status> wait_exit() {
        auto [ec, status] = co_await vmrt::io::with_timeout(proc_.async_wait(asio::deferred), 10s);
        BOOST_TEST_REQUIRE(!ec, "the double did not exit: " << ec.message());
        co_return status;
    }

    vmrt::io::process& process() { return proc_; }
    std::string log() const { return slurp(log_); }

private:
    fs::path api_socket_, log_;
    vmrt::io::process proc_;
};

std::vector<std::string> cli_vm_flags(const share_fixture& f) {
    auto kernel = f.dir / "vmlinux";
    vmrt::test::write_file(kernel, "not a kernel: the double does not run it");
    return vmrt::test::strings("--kernel", kernel.string(), "--memory", "size=512M,shared=on", "--fs",
                               "tag=share,socket=" + f.socket.string());
}

ch::vm_config api_vm(const fs::path& socket) {
    ch::vm_config c;
    c.payload.kernel = "/boot/vmlinuz-fake";
    c.memory.shared = true;
    c.fs.push_back({"share", socket.string(), 1, 1024, std::nullopt});
    return c;
}

template <typename Call>
asio::awaitable<std::optional<ch::api_error>> api_error_of(Call call) {
    try {
        co_await call();
    } catch (const ch::api_error& e) {
        co_return e;
    }
    co_return std::nullopt;
}

// The error a sidecar's construction throws (fails the test if it does not throw a vmrt::error).
std::optional<vmrt::error> start_error(asio::any_io_executor ex, const virtiofsd_options& o) {
    try {
        virtiofsd_sidecar s(ex, o);
    } catch (const vmrt::error& e) {
        return e;
    }
    BOOST_ERROR("the sidecar started");
    return std::nullopt;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(virtiofsd_sidecar_test)

// The measured behaviour everything else rests on: CH-style frontend connects, reboot makes the
// daemon exit (status 0) and the armed sidecar starts a new one on the same listening fd, which
// serves the frontend's reconnect; a disarmed sidecar leaves an exited daemon down.
BOOST_AUTO_TEST_CASE(reboot_restarts_the_daemon_for_the_reconnecting_vmm) {
    share_fixture f;
    run_coro(
        [&]() -> asio::awaitable<void> {
            auto ex = co_await asio::this_coro::executor;
            {
                virtiofsd_sidecar sidecar(ex, f.options(), f.recorder());
                // The socket listens as soon as the constructor returns, whatever the daemon does.
                BOOST_TEST(fs::is_socket(f.socket));
                BOOST_TEST(sidecar.running());
                BOOST_TEST(!sidecar.armed());
                sidecar.arm();
                BOOST_TEST(sidecar.restarts() == 0u);  // a daemon runs: arm() starts none
                const pid_t first = sidecar.pid();
                BOOST_TEST(first > 0);

                fake_ch vmm(ex, f.dir.path(), cli_vm_flags(f));
                auto api = co_await vmm.client();
                // The CLI boot finished (vm.info waits for it): the double got its GET_FEATURES reply.
                auto info = co_await api.vm_info();
                BOOST_TEST((info.state == ch::vm_state::running));
                BOOST_TEST(f.connections() == 1u);

                // Reboot: CH closes the connection (virtiofsd exits 0) and connects again; the
                // reconnect waits in the backlog of the listening socket until the new daemon
                // accepts it, so vm.reboot only returns once the restart has happened.
                co_await api.vm_reboot();
                BOOST_TEST(sidecar.restarts() == 1u);
                BOOST_TEST(sidecar.running());
                const pid_t second = sidecar.pid();
                BOOST_TEST(second > 0);
                BOOST_TEST(second != first);
                BOOST_TEST_REQUIRE(sidecar.last_exit().has_value());
                BOOST_TEST(sidecar.last_exit()->to_string() == "exit code 0");
                BOOST_TEST(f.connections() == 2u);
                auto live = processes_mentioning(f.source_arg());
                BOOST_TEST((std::find(live.begin(), live.end(), first) == live.end()));
                BOOST_TEST((std::find(live.begin(), live.end(), second) != live.end()));
                BOOST_TEST(f.noted("exited (exit code 0); restarted as pid " + std::to_string(second)));
                info = co_await api.vm_info();
                BOOST_TEST((info.state == ch::vm_state::running));

                // The VM stops: disarmed first, as a driver does, so the exit is final.
                sidecar.disarm();
                co_await api.vm_shutdown();
                const bool daemon_exited = co_await eventually([&] { return !sidecar.running(); });
                BOOST_TEST(daemon_exited);
                BOOST_TEST(sidecar.restarts() == 1u);
                BOOST_TEST(sidecar.pid() == 0);
                BOOST_TEST(sidecar.last_exit()->to_string() == "exit code 0");
                BOOST_TEST(f.noted("not restarted"));
                BOOST_TEST(fs::is_socket(f.socket));  // kept for the next boot

                // Booted again (vm.boot after vm.shutdown): arm() starts a daemon first.
                sidecar.arm();
                BOOST_TEST(sidecar.restarts() == 2u);
                co_await api.vm_boot();
                BOOST_TEST(f.connections() == 3u);

                sidecar.disarm();
                BOOST_TEST(vmm.process().signal(SIGTERM).value() == 0);  // CH's clean exit (§3.1)
                auto status = co_await vmm.wait_exit();
                BOOST_TEST(status.to_string() == "exit code 0");
                const bool daemon_left = co_await eventually([&] { return !sidecar.running(); });
                BOOST_TEST(daemon_left);
                BOOST_TEST(sidecar.restarts() == 2u);
            }
            // Destroyed: no daemon, no socket file.
            BOOST_TEST(processes_mentioning_after_exit(f.source_arg()).empty());
            BOOST_TEST(!fs::exists(f.socket));
        },
        60s);
}

// Destruction of an armed sidecar with a connected frontend kills the daemon (and the child the C
// daemon forks into its pid namespace) and removes the socket; nothing is restarted.
BOOST_AUTO_TEST_CASE(destruction_kills_a_serving_daemon) {
    share_fixture f;
    run_coro(
        [&]() -> asio::awaitable<void> {
            auto ex = co_await asio::this_coro::executor;
            fake_ch vmm(ex, f.dir.path(), cli_vm_flags(f));
            {
                virtiofsd_sidecar sidecar(ex, f.options(), f.recorder());
                sidecar.arm();
                auto api = co_await vmm.client();
                auto info = co_await api.vm_info();
                BOOST_TEST((info.state == ch::vm_state::running));
                BOOST_TEST(processes_mentioning(f.source_arg()).size() >= 1u);
            }
            BOOST_TEST(processes_mentioning_after_exit(f.source_arg()).empty());
            BOOST_TEST(!fs::exists(f.socket));
            // The watcher saw its daemon's exit after the sidecar was gone: no note, no restart.
            asio::steady_timer settle(ex, 100ms);
            co_await settle.async_wait(asio::use_awaitable);
            BOOST_TEST(!f.noted("restarted"));
            BOOST_TEST(processes_mentioning_after_exit(f.source_arg()).empty());
        },
        30s);
}

// The socket: a stale file is replaced, a live socket and a non-socket are refused untouched.
BOOST_AUTO_TEST_CASE(socket_path_rules) {
    share_fixture f;
    run_coro([&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        {  // stale: bound once, its listener closed (a crashed predecessor)
            int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
            sockaddr_un addr{};
            addr.sun_family = AF_UNIX;
            std::memcpy(addr.sun_path, f.socket.c_str(), f.socket.native().size() + 1);
            BOOST_TEST_REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
            ::close(fd);
            BOOST_TEST_REQUIRE(fs::is_socket(f.socket));
            BOOST_TEST(!can_connect(f.socket));
        }
        {
            virtiofsd_sidecar sidecar(ex, f.options());
            BOOST_TEST(can_connect(f.socket));
            // A second sidecar on the live socket is refused, and the first one keeps it.
            auto in_use = start_error(ex, f.options());
            BOOST_TEST_REQUIRE(in_use.has_value());
            BOOST_TEST((in_use->code() == errc::vmm_start_failed));
            BOOST_TEST(contains(in_use->what(), "is in use"), in_use->what());
            BOOST_TEST(fs::is_socket(f.socket));
            BOOST_TEST(sidecar.running());
        }
        BOOST_TEST(!fs::exists(f.socket));

        vmrt::test::write_file(f.socket, "not a socket");
        auto not_socket = start_error(ex, f.options());
        BOOST_TEST_REQUIRE(not_socket.has_value());
        BOOST_TEST(contains(not_socket->what(), "is not a socket"), not_socket->what());
        BOOST_TEST(vmrt::test::read_file(f.socket) == "not a socket");
        BOOST_TEST(processes_mentioning_after_exit(f.source_arg()).empty());
        co_return;
    });
}

// A daemon that cannot be started: a clear vmm_start_failed error, and no socket, no process.
BOOST_AUTO_TEST_CASE(spawn_failure_leaves_nothing) {
    share_fixture f;
    run_coro([&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        const auto missing = f.dir / "no-such-virtiofsd";
        auto why = virtiofsd_sidecar::cannot_serve(f.options(missing));
        BOOST_TEST_REQUIRE(why.has_value());
        BOOST_TEST(contains(*why, "is not installed"), *why);

        auto e = start_error(ex, f.options(missing));
        BOOST_TEST_REQUIRE(e.has_value());
        BOOST_TEST((e->code() == errc::vmm_start_failed));
        BOOST_TEST(contains(e->what(), "no-such-virtiofsd"), e->what());
        BOOST_TEST(contains(e->what(), "No such file or directory"), e->what());
        BOOST_TEST(!fs::exists(f.socket));

        // Installed, but exec fails (its interpreter is missing): the spawn's own error.
        auto broken = f.script("broken-virtiofsd", "#!/nonexistent/interpreter\n");
        BOOST_TEST(!virtiofsd_sidecar::cannot_serve(f.options(broken)).has_value());
        auto exec_error = start_error(ex, f.options(broken));
        BOOST_TEST_REQUIRE(exec_error.has_value());
        BOOST_TEST((exec_error->code() == errc::vmm_start_failed));
        BOOST_TEST(contains(exec_error->what(), "cannot start " + broken.string()), exec_error->what());
        BOOST_TEST(!fs::exists(f.socket));

        // A share that is not a directory is refused before anything is made.
        auto o = f.options();
        o.shared_dir = f.dir / "missing-dir";
        auto no_dir = start_error(ex, o);
        BOOST_TEST_REQUIRE(no_dir.has_value());
        BOOST_TEST(contains(no_dir->what(), "does not exist"), no_dir->what());
        BOOST_TEST(!fs::exists(f.socket));
        co_return;
    });
}

// A daemon that fails at once is restarted only crash_loop_limit - 1 times; the failure is
// reported with its log, and the socket stays until the sidecar goes.
BOOST_AUTO_TEST_CASE(crash_loop_stops_the_restarts) {
    share_fixture f;
    run_coro([&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        auto failing =
            f.script("failing-virtiofsd", "#!/bin/sh\necho \"fuse: unknown option $3\" >&2\nexit 1\n");
        {
            virtiofsd_sidecar sidecar(ex, f.options(failing), f.recorder());
            sidecar.arm();
            const bool given_up = co_await eventually([&] { return sidecar.failure().has_value(); });
            BOOST_TEST_REQUIRE(given_up);
            BOOST_TEST(sidecar.restarts() == 4u);
            BOOST_TEST(!sidecar.running());
            BOOST_TEST(sidecar.last_exit()->to_string() == "exit code 1");
            const auto failure = *sidecar.failure();
            BOOST_TEST(contains(failure, "failed 5 times in a row"), failure);
            BOOST_TEST(contains(failure, "fuse: unknown option source=" + f.share.string()), failure);
            BOOST_TEST(f.noted("not restarted any more"));
            // Every run appended to the one log.
            BOOST_TEST(count_of(slurp(f.log), "fuse: unknown option") == 5u);
            // Still given up a moment later: no spinning.
            asio::steady_timer settle(ex, 200ms);
            co_await settle.async_wait(asio::use_awaitable);
            BOOST_TEST(sidecar.restarts() == 4u);
            BOOST_TEST(fs::is_socket(f.socket));
        }
        BOOST_TEST(!fs::exists(f.socket));
    });
}

// QEMU 7.2's C daemon cannot export read-only: said before anything starts. The Rust daemon's
// options are built, but cannot be run here (no Rust virtiofsd on this machine).
BOOST_AUTO_TEST_CASE(read_only_needs_the_rust_daemon) {
    share_fixture f;
    run_coro([&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        BOOST_TEST((virtiofsd_sidecar::flavour_of(c_virtiofsd) == vmrt::hv::virtiofsd_flavour::qemu_c));
        auto o = f.options();
        o.read_only = true;
        auto why = virtiofsd_sidecar::cannot_serve(o);
        BOOST_TEST_REQUIRE(why.has_value());
        BOOST_TEST(contains(*why, "cannot export a directory read-only"), *why);
        auto e = start_error(ex, o);
        BOOST_TEST_REQUIRE(e.has_value());
        BOOST_TEST(contains(e->what(), "read-only"), e->what());
        BOOST_TEST(!fs::exists(f.socket));

        auto bad_cache = f.options();
        bad_cache.cache = "metadata";  // a Rust-only mode
        BOOST_TEST(contains(virtiofsd_sidecar::cannot_serve(bad_cache).value_or(""), "auto, always, none"));
        BOOST_TEST(!virtiofsd_sidecar::cannot_serve(f.options()).has_value());

        const auto rust = virtiofsd_sidecar::daemon_args(o, vmrt::hv::virtiofsd_flavour::rust, 7);
        const auto rust_expected =
            vmrt::test::strings("--fd=7", "--shared-dir=" + f.share.string(), "--cache=auto", "--readonly");
        BOOST_TEST(rust == rust_expected, boost::test_tools::per_element());
        const auto qemu = virtiofsd_sidecar::daemon_args(f.options(), std::nullopt, 7);
        const auto qemu_expected =
            vmrt::test::strings("--fd=7", "-o", "source=" + f.share.string(), "-o", "cache=auto");
        BOOST_TEST(qemu == qemu_expected, boost::test_tools::per_element());
        co_return;
    });
}

// CH's side without a backend: CLI mode exits 1 with the error; vm.boot answers 500 with the
// chain and leaves the VM created; a backend that appears while CH retries is connected; a socket
// whose peer never answers GET_FEATURES is an error too.
BOOST_AUTO_TEST_CASE(vmm_without_a_backend_fails_its_boot) {
    share_fixture f;
    run_coro(
        [&]() -> asio::awaitable<void> {
            auto ex = co_await asio::this_coro::executor;
            {
                fake_ch cli(ex, f.dir.path(), cli_vm_flags(f), "300");
                auto status = co_await cli.wait_exit();
                BOOST_TEST(status.to_string() == "exit code 1");
                const auto log = cli.log();
                BOOST_TEST(contains(log, "Failed connecting the backend after trying for 300 ms"), log);
                BOOST_TEST(contains(log, f.socket.string()), log);
            }

            vmrt::test::temp_dir api_dir;
            fake_ch vmm(ex, api_dir.path(), {}, "1500");
            auto api = co_await vmm.client();
            const auto config = api_vm(f.socket);
            co_await api.vm_create(config);
            auto no_backend = co_await api_error_of([&] { return api.vm_boot(); });
            BOOST_TEST_REQUIRE(no_backend.has_value());
            BOOST_TEST(no_backend->status() == 500);
            BOOST_TEST_REQUIRE(no_backend->chain().size() == 3u);
            BOOST_TEST(no_backend->chain()[1] == "The VM could not boot");
            BOOST_TEST(contains(no_backend->chain()[2], "Failed connecting the backend"));
            auto info = co_await api.vm_info();
            BOOST_TEST((info.state == ch::vm_state::created));

            // The backend comes while the double retries (every 100 ms): the boot succeeds.
            std::optional<virtiofsd_sidecar> late;
            asio::steady_timer later(ex, 400ms);
            later.async_wait([&](boost::system::error_code ec) {
                if (!ec) late.emplace(ex, f.options(), f.recorder());
            });
            co_await api.vm_boot();
            BOOST_TEST_REQUIRE(late.has_value());
            BOOST_TEST(f.connections() == 1u);
            info = co_await api.vm_info();
            BOOST_TEST((info.state == ch::vm_state::running));
            co_await api.vm_shutdown();
            const bool late_exited = co_await eventually([&] { return !late->running(); });
            BOOST_TEST(late_exited);  // not armed: the exit after vm.shutdown is final
            late.reset();

            // A listener that accepts but is no vhost-user backend.
            {
                int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                sockaddr_un addr{};
                addr.sun_family = AF_UNIX;
                std::memcpy(addr.sun_path, f.socket.c_str(), f.socket.native().size() + 1);
                BOOST_TEST_REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
                BOOST_TEST_REQUIRE(::listen(fd, 4) == 0);
                auto mute = co_await api_error_of([&] { return api.vm_boot(); });
                ::close(fd);
                ::unlink(f.socket.c_str());
                BOOST_TEST_REQUIRE(mute.has_value());
                BOOST_TEST(mute->status() == 500);
                BOOST_TEST(contains(mute->chain().back(), "GET_FEATURES"), mute->chain().back());
            }
            co_await api.vmm_shutdown();
            auto status = co_await vmm.wait_exit();
            BOOST_TEST(status.to_string() == "exit code 0");
        },
        60s);
}

BOOST_AUTO_TEST_SUITE_END()
