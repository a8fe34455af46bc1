#include "hv/ch_driver.hpp"

#include "hv/ch_api.hpp"
#include "hv/ch_companions.hpp"
#include "hv/ch_config.hpp"
#include "hv/ch_instance.hpp"
#include "hv/virtiofsd_sidecar.hpp"
#include "io/unix_listener.hpp"

#include <vmrt/io/atomic_file.hpp>
#include <vmrt/io/unique_fd.hpp>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <sstream>

namespace vmrt::hv {
namespace {

namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;
using namespace std::chrono_literals;
using io::unique_fd;

[[noreturn]] void fail(std::string message, std::string vmm_output = {}) {
    throw error(make_error_code(errc::vmm_start_failed),
                {.message = std::move(message), .vmm_stderr_tail = std::move(vmm_output)});
}

error_code last_error() { return {errno, boost::system::system_category()}; }

bool is_executable(const std::filesystem::path& p) { return ::access(p.c_str(), X_OK) == 0; }

// What a launch makes before CH runs; owned here until the instance takes it, released (sidecars
// killed, TAPs closed, sockets removed) if the launch fails.
struct launch_state {
    io::process_options vmm;
    std::filesystem::path api_socket;
    unique_fd api_listener;
    unique_fd events_ours, events_theirs;
    std::vector<std::unique_ptr<ch_companion>> companions;
    ch::launch_resources resources;

    ~launch_state() {
        if (!api_socket.empty()) ::unlink(api_socket.c_str());
    }
};

// CH binds the vsock socket itself and fails with EADDRINUSE if the file exists (§3 --vsock,
// §10.2): a socket file nobody listens on is a leftover of a crashed VMM and is removed.
void clear_stale_vsock(const vm_spec& s) {
    if (!s.vsock) return;
    auto stale = io::remove_stale_socket(s.vsock->socket);
    if (!stale && stale.error().value() == EADDRINUSE)
        fail("the vsock socket " + s.vsock->socket.string() + " is in use by another VMM");
    if (!stale) fail("the vsock socket path " + s.vsock->socket.string() + " exists and is not a socket");
}

// The result of the start-up calls, as a value: the awaitable operator || waits for the first
// *success*, so a failing branch must not throw.
struct startup_result {
    std::string failure;  // empty: the VM runs
};

asio::awaitable<startup_result> confirm_running(ch::api_client& api, const vm_spec& s,
                                                const ch::vm_config& config, ch_launch_mode mode,
                                                bool restoring, std::vector<int> tap_fds,
                                                const ch_options& opts) {
    startup_result out;
    try {
        if (mode == ch_launch_mode::api && !restoring) {
            co_await api.vmm_ping();
            auto bare = config;
            bare.net.clear();  // NICs follow with their fds, which JSON cannot carry
            co_await api.vm_create(bare);
            for (std::size_t i = 0; i < config.net.size(); ++i) {
                auto nic = config.net[i];
                nic.fds.clear();
                std::vector<int> fds;
                if (i < tap_fds.size() && tap_fds[i] >= 0) fds.push_back(tap_fds[i]);
                co_await api.vm_add_net(nic, std::move(fds));
            }
            co_await api.vm_boot(opts.boot_timeout);
        }
        // In CLI mode CH creates and boots before its VMM thread answers: vm.info waits for that.
        auto info = co_await api.vm_info();
        if (info.state != ch::vm_state::running)
            out.failure = "Cloud Hypervisor reports the VM as " + info.state_text + " after start-up";
    } catch (const std::exception& e) {
        out.failure = e.what();
    }
    (void)s;
    co_return out;
}

class ch_driver final : public driver {
public:
    explicit ch_driver(ch_options opts) : opts_(std::move(opts)) {
        caps_.allow(operation::start)
            .allow(operation::stop_graceful)
            .allow(operation::kill)
            .allow(operation::pause)
            .allow(operation::resume)
            .allow(operation::snapshot)
            .allow(operation::restore)
            .allow(operation::resize_cpus)
            .allow(operation::resize_memory)
            .allow(operation::resize_balloon)
            .allow(operation::hotplug_disk)
            .allow(operation::hotplug_net)
            .allow(operation::hotplug_fs)
            .allow(operation::counters)
            .allow(operation::vsock_connect);
    }

    std::string_view name() const noexcept override { return "cloud-hypervisor"; }
    const capability_set& capabilities() const noexcept override { return caps_; }

    std::optional<spec_error> check_spec(const vm_spec& s) const override {
        // Read-only shares need a virtiofsd that can (the Rust one); QEMU 7.2's C daemon cannot.
        const bool any_read_only = std::any_of(s.shared_dirs.begin(), s.shared_dirs.end(),
                                               [](const shared_dir_spec& d) { return d.read_only; });
        const bool read_only_ok =
            any_read_only && virtiofsd_sidecar::flavour_of(opts_.virtiofsd_binary) == virtiofsd_flavour::rust;
        if (auto e = ch::check_spec_for_ch(s, read_only_ok)) return e;
        if (!s.shared_dirs.empty() && !is_executable(opts_.virtiofsd_binary))
            return spec_error{"shared_dirs", opts_.virtiofsd_binary.string() + " is not installed"};
        // Whatever CH's option syntax cannot express is refused by the renderer, by field name.
        ch::launch_resources probe;
        for (std::size_t i = 0; i < s.networks.size(); ++i) probe.tap_fds.push_back(3);
        for (std::size_t i = 0; i < s.shared_dirs.size(); ++i) probe.fs_sockets.push_back("/probe.sock");
        auto args = ch::command_line(ch::make_vm_config(s, probe), 3, 4);
        if (!args) return args.error();
        return std::nullopt;
    }

    asio::awaitable<std::unique_ptr<vm_instance>> launch(const vm_spec& s, launch_context ctx) override {
        auto binary = opts_.binary.empty() ? find_cloud_hypervisor() : std::optional(opts_.binary);
        if (!binary || !is_executable(*binary))
            fail("cloud-hypervisor is not installed (it is not packaged for Debian 12: install a release "
                 "binary from github.com/cloud-hypervisor/cloud-hypervisor)");
        const bool restoring = !ctx.restore_from.empty();

        launch_state st;
        st.vmm.program = *binary;
        st.vmm.log_file = ctx.run_dir / "vmm.log";
        st.api_socket = ctx.run_dir / "ch-api.sock";
        auto listener = io::listen_unix(st.api_socket);
        if (!listener) fail("cannot listen on " + st.api_socket.string() + ": " + listener.error().message());
        st.api_listener = std::move(*listener);
        int pipe_fds[2];
        if (::pipe2(pipe_fds, O_CLOEXEC) != 0) fail("pipe: " + last_error().message());
        st.events_ours = unique_fd(pipe_fds[0]);
        st.events_theirs = unique_fd(pipe_fds[1]);
        st.vmm.inherited_fds = {st.api_listener.get(), st.events_theirs.get()};

        // Device backends first: CH connects to virtiofsd at boot and needs its TAP fds at exec.
        for (std::size_t i = 0; i < s.networks.size(); ++i) {
            int fd = -1;
            st.companions.push_back(open_tap(s.networks[i], s.netns, fd));
            st.resources.tap_fds.push_back(fd);
            st.vmm.inherited_fds.push_back(fd);
        }
        for (std::size_t i = 0; i < s.shared_dirs.size(); ++i) {
            auto sock = ctx.run_dir / ("virtiofs-" + std::to_string(i) + ".sock");
            st.companions.push_back(
                start_virtiofsd(ctx.executor, s.shared_dirs[i], sock, opts_.virtiofsd_binary,
                                ctx.run_dir / ("virtiofsd-" + std::to_string(i) + ".log"), ctx.note));
            st.resources.fs_sockets.push_back(sock);
        }
        clear_stale_vsock(s);

        const auto config = ch::make_vm_config(s, st.resources);
        const int api_fd = st.api_listener.get(), event_fd = st.events_theirs.get();
        if (restoring) {
            st.vmm.args = restore_args(ctx.restore_from, st.resources, api_fd, event_fd);
        } else if (opts_.mode == ch_launch_mode::command_line) {
            auto args = ch::command_line(config, api_fd, event_fd);
            if (!args)
                throw error(make_error_code(errc::invalid_spec),
                            {.message = args.error().message, .field = args.error().field});
            st.vmm.args = std::move(*args);
        } else {
            st.vmm.args = {"--api-socket", "fd=" + std::to_string(api_fd), "--event-monitor",
                           "fd=" + std::to_string(event_fd)};
        }
        record_command_line(st.vmm, ctx.run_dir / "vmm.cmdline");

        error_code ec;
        auto proc = io::process::spawn(ctx.executor, st.vmm, ec);
        if (ec) fail("cannot start " + st.vmm.program.string() + ": " + ec.message());
        // CH has its copies. Without ours, the pipe reports EOF when CH exits.
        st.events_theirs.reset();
        st.api_listener.reset();
        ctx.note("cloud-hypervisor started as pid " + std::to_string(proc.pid()) +
                 (restoring                           ? " (restoring " + ctx.restore_from.string() + ")"
                  : opts_.mode == ch_launch_mode::api ? " (API mode)"
                                                      : " (command-line mode)"));

        // The listener exists, so this connects at once; CH accepts when its API thread is up.
        auto connected = io::connect_unix(st.api_socket);
        if (!connected) {
            proc.kill_and_reap();
            fail("cannot connect to " + st.api_socket.string() + ": " + connected.error().message());
        }
        io::http_unix_client::options http_opts;
        http_opts.request_timeout = opts_.request_timeout;
        ch::api_client api(
            io::http_unix_client(io::http_unix_client::socket_type(
                                     ctx.executor, asio::local::stream_protocol(), connected->release()),
                                 http_opts));

        auto raced =
            co_await (confirm_running(api, s, config, opts_.mode, restoring, st.resources.tap_fds, opts_) ||
                      proc.async_wait(asio::use_awaitable));
        std::string failure;
        if (raced.index() == 1) {
            failure = "Cloud Hypervisor exited during start-up (" + std::get<1>(raced).to_string() + ")";
        } else if (!std::get<0>(raced).failure.empty()) {
            failure = std::get<0>(raced).failure;
            // A closed API connection usually means CH exited: wait briefly for its status, so the
            // message says how it ended rather than only "connection closed".
            asio::steady_timer grace(ctx.executor, 2s);
            auto exited =
                co_await (proc.async_wait(asio::use_awaitable) || grace.async_wait(asio::use_awaitable));
            if (exited.index() == 0) failure += " (Cloud Hypervisor " + std::get<0>(exited).to_string() + ")";
        }
        if (!failure.empty()) {
            proc.kill_and_reap();
            fail(failure, io::read_file_tail(*st.vmm.log_file, 2048));
        }

        ch_instance_parts parts{.vmm = std::move(proc),
                                .api = std::move(api),
                                .events = std::move(st.events_ours),
                                .companions = std::move(st.companions),
                                .spec = s,
                                .vmm_log = *st.vmm.log_file,
                                .api_socket = std::exchange(st.api_socket, {}),
                                .note = ctx.note,
                                .open_tap = {},
                                .start_share = {}};
        auto netns = s.netns;
        parts.open_tap = [netns](const nic_spec& nic, int& fd) {
            return open_tap(nic, netns, fd);
        };
        auto ex = ctx.executor;
        auto virtiofsd = opts_.virtiofsd_binary;
        auto run_dir = ctx.run_dir;
        auto note = ctx.note;
        auto counter = std::make_shared<unsigned>(0);
        parts.start_share = [=](const shared_dir_spec& dir, std::filesystem::path& socket) {
            const auto n = std::to_string((*counter)++);
            socket = run_dir / ("virtiofs-hot" + n + ".sock");
            return start_virtiofsd(ex, dir, socket, virtiofsd, run_dir / ("virtiofsd-hot" + n + ".log"),
                                   note);
        };
        co_return std::make_unique<ch_instance>(std::move(parts));
    }

private:
    // `--restore` (§3, §5): CH reads the VmConfig from the snapshot; fd-backed NICs get new fds.
    static std::vector<std::string> restore_args(const std::filesystem::path& dir,
                                                 const ch::launch_resources& r, int api_fd, int event_fd) {
        std::string restore = "source_url=file://" + std::filesystem::absolute(dir).string();
        std::string net_fds;
        for (std::size_t i = 0; i < r.tap_fds.size(); ++i)
            net_fds +=
                (net_fds.empty() ? "" : ",") + ch::net_id(i) + "@[" + std::to_string(r.tap_fds[i]) + "]";
        if (!net_fds.empty()) restore += ",net_fds=[" + net_fds + "]";
        restore += ",resume=true";
        return {"--api-socket",    "fd=" + std::to_string(api_fd),
                "--event-monitor", "fd=" + std::to_string(event_fd),
                "--restore",       restore};
    }

    static void record_command_line(const io::process_options& p, const std::filesystem::path& file) {
        std::string text = p.program.string();
        for (const auto& a : p.args) text += " " + a;
        error_code ignored;
        io::write_file_atomically(file, text + "\n",
                                  std::filesystem::perms::owner_read | std::filesystem::perms::owner_write,
                                  ignored);
    }

    ch_options opts_;
    capability_set caps_{"not implemented by the Cloud Hypervisor backend"};
};

}  // namespace

std::optional<std::filesystem::path> find_cloud_hypervisor() {
    if (const char* chosen = std::getenv("VMRT_CLOUD_HYPERVISOR"); chosen && *chosen)
        return is_executable(chosen) ? std::optional<std::filesystem::path>(chosen) : std::nullopt;
    if (const char* path = std::getenv("PATH")) {
        std::stringstream dirs(path);
        for (std::string d; std::getline(dirs, d, ':');)
            if (!d.empty() && is_executable(std::filesystem::path(d) / "cloud-hypervisor"))
                return std::filesystem::path(d) / "cloud-hypervisor";
    }
    return std::nullopt;
}

std::shared_ptr<driver> make_cloud_hypervisor_driver(ch_options opts) {
    return std::make_shared<ch_driver>(std::move(opts));
}

}  // namespace vmrt::hv
