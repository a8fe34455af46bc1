#include "hv/qemu_driver.hpp"

#include "hv/qemu_command.hpp"
#include "hv/qemu_firmware.hpp"
#include "hv/qemu_instance.hpp"
#include "hv/qemu_migration.hpp"
#include "hv/qmp_client.hpp"
#include "hv/virtiofsd_sidecar.hpp"
#include "io/unix_listener.hpp"

#include <vmrt/io/atomic_file.hpp>
#include <vmrt/io/unique_fd.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/serialize.hpp>

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <sstream>

namespace vmrt::hv {
namespace {

namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;
using io::unique_fd;

[[noreturn]] void fail(std::string message, std::string vmm_output = {}) {
    throw error(make_error_code(errc::vmm_start_failed),
                {.message = std::move(message), .vmm_stderr_tail = std::move(vmm_output)});
}

error_code last_error() { return {errno, boost::system::system_category()}; }

// A listening Unix socket bound to `path`, handed to a child (QEMU's control chardev): the socket
// exists before the child starts, so its peer can connect at once, with no wait for the child to
// create it. (virtiofsd's sockets are bound the same way, by virtiofsd_sidecar.)
unique_fd listen_unix(const std::filesystem::path& path) {
    auto fd = io::listen_unix(path, 1);
    if (!fd) fail("cannot listen on " + path.string() + ": " + fd.error().message());
    return std::move(*fd);
}

// Turns QMP events into manager notes (the state machine itself follows the process and the
// console; these say *why*: a guest reset, a shutdown request, a pause from elsewhere).
asio::awaitable<void> forward_events(io::subscription<qmp::event> events,
                                     std::function<void(std::string)> note) {
    for (;;) {
        auto [ec, ev] = co_await events.async_next(asio::as_tuple(asio::use_awaitable));
        if (ec) co_return;
        std::string text = "QMP event " + ev.name;
        if (!ev.data.empty()) text += " " + boost::json::serialize(ev.data);
        note(std::move(text));
    }
}

// What a launch creates before QEMU runs, owned here until QEMU has its copies: the fds it
// inherits are closed in vmrt once it runs, the sidecars die with a failed launch.
struct launch_resources {
    qemu_runtime rt;
    io::process_options vmm;
    unique_fd qmp_ours, qmp_theirs;
    unique_fd saved_state;
    unique_fd control_listener;
    std::filesystem::path control_socket;
    std::vector<std::unique_ptr<virtiofsd_sidecar>> sidecars;

    void inherit(int fd) { vmm.inherited_fds.push_back(fd); }
};

void open_qmp_channel(launch_resources& r) {
    // QMP over a socketpair: nothing to connect to, no socket file, no start-up race.
    int pair[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0)
        fail("socketpair: " + last_error().message());
    r.qmp_ours = unique_fd(pair[0]);
    r.qmp_theirs = unique_fd(pair[1]);
    r.rt.qmp_fd = r.qmp_theirs.get();
    r.inherit(r.qmp_theirs.get());
}

void open_saved_state(launch_resources& r, const std::filesystem::path& snapshot_dir) {
    const auto file = snapshot_dir / "vmstate.bin";
    r.saved_state = unique_fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
    if (!r.saved_state) fail("cannot open the snapshot " + file.string() + ": " + last_error().message());
    r.rt.incoming_fd = r.saved_state.get();
    r.inherit(r.saved_state.get());
}

virtiofsd_options share_options(const vm_spec& s, std::size_t i, const std::filesystem::path& run_dir,
                                const std::filesystem::path& virtiofsd) {
    return {.binary = virtiofsd,
            .shared_dir = s.shared_dirs[i].host_path,
            .socket = run_dir / ("fs" + std::to_string(i) + ".sock"),
            .read_only = s.shared_dirs[i].read_only,
            .log_file = run_dir / ("virtiofsd-" + std::to_string(i) + ".log"),
            .tag = s.shared_dirs[i].tag};
}

// Not armed: QEMU keeps its vhost-user connection across guest reboots, and its vhost-user-fs
// cannot reconnect to a new daemon anyway; the daemon lives as long as QEMU's connection.
void start_virtiofsd_sidecars(launch_resources& r, const vm_spec& s, const launch_context& ctx,
                              const std::filesystem::path& virtiofsd) {
    for (std::size_t i = 0; i < s.shared_dirs.size(); ++i) {
        // Killed and its socket removed by its destructor if the launch fails later.
        r.sidecars.push_back(std::make_unique<virtiofsd_sidecar>(
            ctx.executor, share_options(s, i, ctx.run_dir, virtiofsd), ctx.note));
        r.rt.virtiofs_sockets.push_back(r.sidecars.back()->options().socket);
    }
}

void prepare_firmware(launch_resources& r, const vm_spec& s, const launch_context& ctx) {
    if (s.boot != boot_mode::uefi) return;
    try {
        auto flash = prepare_uefi_flash(s.firmware, s.efi_variable_store, ctx.run_dir);
        r.rt.uefi_code = flash.code;
        r.rt.uefi_vars = flash.vars;
        ctx.note("UEFI firmware " + flash.code.string() + ", variables " + flash.vars.string() +
                 (flash.vars_created ? " (new, from the firmware's template)" : ""));
    } catch (const error& e) {
        fail(e.diag().message.empty() ? e.what() : e.diag().message);
    }
}

void open_control_channel(launch_resources& r, const vm_spec& s, const launch_context& ctx) {
    if (!s.control_channel) return;
    r.control_socket = ctx.run_dir / "control.sock";
    r.control_listener = listen_unix(r.control_socket);
    r.rt.control_listen_fd = r.control_listener.get();
    r.inherit(r.control_listener.get());
}

void record_command_line(const io::process_options& p, const std::filesystem::path& file) {
    std::ostringstream line;
    line << p.program.string();
    for (auto& a : p.args) line << ' ' << a;
    io::write_file_atomically(file, line.str() + "\n");
}

std::string describe(const qmp::greeting& g) {
    return std::to_string(g.major) + "." + std::to_string(g.minor) + "." + std::to_string(g.micro);
}

// The handshake's outcome as a value: awaitable `||` waits for the first *success*, so a thrown
// protocol error would be hidden behind whatever finishes next (QEMU's exit, the timer).
// (A struct, not a variant: the operators would flatten a variant into theirs.)
struct handshake_result {
    std::optional<qmp::greeting> greeting;
    std::string failure;
    bool connection_closed = false;  ///< QMP ended (EOF) rather than misbehaved
};

asio::awaitable<handshake_result> handshake_outcome(qmp::client& qmp) {
    // Filled in steps: GCC 12 miscompiles a co_await inside a braced initialiser.
    handshake_result result;
    try {
        auto greeting = co_await qmp.async_handshake();
        result.greeting = std::move(greeting);
    } catch (const boost::system::system_error& e) {
        result.failure = e.what();
        result.connection_closed = e.code() == asio::error::eof;
    } catch (const std::exception& e) {
        result.failure = e.what();
    }
    co_return result;
}

// QEMU is up when its QMP handshake completes; if it exits first (a bad option), report its own
// words. The timer bounds a QEMU that hangs before it gets there. Returns why it failed, or "".
asio::awaitable<std::string> await_qmp_ready(qmp::client& qmp, io::process& proc,
                                             std::chrono::steady_clock::duration limit,
                                             const launch_context& ctx) {
    asio::steady_timer timer(ctx.executor, limit);
    try {
        auto winner = co_await (handshake_outcome(qmp) || proc.async_wait(asio::use_awaitable) ||
                                timer.async_wait(asio::use_awaitable));
        if (winner.index() == 1)
            co_return "QEMU exited during start-up (" + std::get<1>(winner).to_string() + ")";
        if (winner.index() == 2) co_return "QEMU did not answer on QMP within the start-up timeout";
        auto& outcome = std::get<0>(winner);
        if (!outcome.greeting && outcome.connection_closed) {
            // A QEMU that exits closes QMP first: when it is on its way out, its exit status (and
            // its own words, in the log) say more than the closed connection does.
            timer.expires_after(std::chrono::seconds(2));
            auto exited =
                co_await (proc.async_wait(asio::use_awaitable) || timer.async_wait(asio::use_awaitable));
            if (exited.index() == 0)
                co_return "QEMU exited during start-up (" + std::get<0>(exited).to_string() + ")";
        }
        if (!outcome.greeting) co_return "QMP start-up failed: " + outcome.failure;
        ctx.note("QEMU " + describe(*outcome.greeting) + " is up (QMP ready)");
        co_return "";
    } catch (const std::exception& e) {
        co_return std::string("QEMU start-up failed: ") + e.what();
    }
}

// Restore: load the saved state through the inherited fd, then let the vCPUs run.
asio::awaitable<std::string> load_saved_state(qmp::client& qmp, int fd, const launch_context& ctx) {
    try {
        auto events = qmp.subscribe_events();
        co_await enable_migration_events(qmp);
        boost::json::object incoming;
        incoming["uri"] = "fd:" + std::to_string(fd);
        co_await qmp.async_execute("migrate-incoming", std::move(incoming));
        co_await wait_migration_done(events, std::chrono::seconds(60));
        co_await qmp.async_execute("cont");
        ctx.note("restored from " + ctx.restore_from.string());
        co_return "";
    } catch (const std::exception& e) {
        co_return std::string("restore failed: ") + e.what();
    }
}

class qemu_driver final : public driver {
public:
    explicit qemu_driver(qemu_options opts) : opts_(std::move(opts)) {
        caps_.allow(operation::start)
            .allow(operation::stop_graceful)
            .allow(operation::kill)
            .allow(operation::pause)
            .allow(operation::resume)
            .allow(operation::resize_balloon)
            .allow(operation::resize_cpus)
            .allow(operation::snapshot)
            .allow(operation::restore)
            .deny(operation::vsock_connect,
                  "no vhost-vsock on this host kernel; use the control channel (virtio-serial)");
    }

    std::string_view name() const noexcept override { return "qemu"; }
    const capability_set& capabilities() const noexcept override { return caps_; }

    std::optional<spec_error> check_spec(const vm_spec& s) const override {
        if (s.rosetta)
            return spec_error{"rosetta", "Rosetta exists only on Apple silicon (apple-vz backend)"};
        if (s.max_memory_mib && *s.max_memory_mib != s.memory_mib)
            return spec_error{"max_memory_mib", "memory hotplug is not implemented for QEMU by vmrt "
                                                "(the cloud-hypervisor backend has it)"};
        if (s.vsock && !std::filesystem::exists("/dev/vhost-vsock"))
            return spec_error{"vsock", "QEMU needs /dev/vhost-vsock for vsock, and this host has none; "
                                       "use \"control_channel\" for a host <-> guest stream"};
        // The daemon decides what a share can be (QEMU 7.2's C virtiofsd cannot export read-only).
        for (std::size_t i = 0; i < s.shared_dirs.size(); ++i)
            if (auto why =
                    virtiofsd_sidecar::cannot_serve(share_options(s, i, "/probe", opts_.virtiofsd_binary)))
                return spec_error{"shared_dirs[" + std::to_string(i) + "]" +
                                      (s.shared_dirs[i].read_only ? ".read_only" : ""),
                                  *why};
        if (s.netns)
            for (std::size_t i = 0; i < s.networks.size(); ++i)
                if (s.networks[i].kind == nic_kind::user)
                    return spec_error{"networks[" + std::to_string(i) + "]", "a user NIC needs no netns"};
        if (s.boot == boot_mode::uefi && !s.firmware && !default_ovmf_code())
            return spec_error{"firmware", "uefi boot needs a firmware: none is named and OVMF is not "
                                          "installed (apt-get install ovmf)"};
        // Whatever the command line cannot express is refused by its builder, by field name.
        qemu_runtime probe;
        probe.qmp_fd = 3;
        probe.control_listen_fd = 4;
        probe.uefi_code = probe.uefi_vars = "/probe";
        // A switch port's fd is made by the manager when the VM starts.
        for (auto& n : s.networks) probe.nic_fds.push_back(n.switch_network.empty() ? n.fd : 5);
        for (std::size_t i = 0; i < s.shared_dirs.size(); ++i) probe.virtiofs_sockets.push_back("/probe");
        auto args = build_qemu_args(s, probe);
        if (!args) return args.error();
        return std::nullopt;
    }

    asio::awaitable<std::unique_ptr<vm_instance>> launch(const vm_spec& s, launch_context ctx) override {
        auto qemu = opts_.qemu_binary.empty() ? find_qemu() : std::optional(opts_.qemu_binary);
        if (!qemu) fail("qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)");
        const std::string accel = opts_.accelerator.empty() ? choose_accelerator() : opts_.accelerator;
        ctx.note("accelerator " + accel +
                 (accel == "tcg" ? " (no vmx/svm on this CPU: /dev/kvm, if present, cannot run stock guests)"
                                 : ""));

        launch_resources r;
        r.rt.accelerator = accel;
        r.vmm.log_file = ctx.run_dir / "vmm.log";
        open_qmp_channel(r);
        for (auto& n : s.networks) {
            r.rt.nic_fds.push_back(n.fd);
            if (n.fd >= 0) r.inherit(n.fd);
        }
        if (!ctx.restore_from.empty()) open_saved_state(r, ctx.restore_from);
        prepare_firmware(r, s, ctx);
        open_control_channel(r, s, ctx);
        start_virtiofsd_sidecars(r, s, ctx, opts_.virtiofsd_binary);

        auto args = build_qemu_args(s, r.rt);
        if (!args)
            throw error(make_error_code(errc::invalid_spec),
                        {.message = args.error().message, .field = args.error().field});
        if (s.netns) {
            r.vmm.program = "ip";
            r.vmm.args = {"netns", "exec", *s.netns, qemu->string()};
            r.vmm.args.insert(r.vmm.args.end(), args->begin(), args->end());
        } else {
            r.vmm.program = *qemu;
            r.vmm.args = std::move(*args);
        }
        record_command_line(r.vmm, ctx.run_dir / "vmm.cmdline");

        error_code ec;
        auto proc = io::process::spawn(ctx.executor, r.vmm, ec);
        if (ec) fail("cannot start " + r.vmm.program.string() + ": " + ec.message());
        // QEMU has its copies; ours would keep the connection open after QEMU dies.
        r.qmp_theirs.reset();
        r.control_listener.reset();
        r.saved_state.reset();
        ctx.note("QEMU started as pid " + std::to_string(proc.pid()));

        qmp::client qmp(
            qmp::client::socket_type(ctx.executor, asio::local::stream_protocol(), r.qmp_ours.release()));
        asio::co_spawn(ctx.executor, forward_events(qmp.subscribe_events(), ctx.note), asio::detached);

        std::string failure = co_await await_qmp_ready(qmp, proc, opts_.startup_timeout, ctx);
        if (failure.empty() && r.rt.incoming_fd >= 0)
            failure = co_await load_saved_state(qmp, r.rt.incoming_fd, ctx);
        if (!failure.empty()) {
            proc.kill_and_reap();
            if (!r.control_socket.empty()) ::unlink(r.control_socket.c_str());
            fail(failure, io::read_file_tail(*r.vmm.log_file, 2048));
        }
        co_return std::make_unique<qemu_instance>(qemu_instance_parts{.vmm = std::move(proc),
                                                                      .qmp = std::move(qmp),
                                                                      .sidecars = std::move(r.sidecars),
                                                                      .vmm_log = *r.vmm.log_file,
                                                                      .run_dir = ctx.run_dir,
                                                                      .control_socket = r.control_socket});
    }

private:
    qemu_options opts_;
    capability_set caps_{"not implemented by the QEMU backend yet"};
};

bool is_executable(const std::filesystem::path& p) { return ::access(p.c_str(), X_OK) == 0; }

}  // namespace

std::optional<std::filesystem::path> find_qemu() {
    if (const char* path = std::getenv("PATH")) {
        std::stringstream dirs(path);
        for (std::string d; std::getline(dirs, d, ':');)
            if (!d.empty() && is_executable(std::filesystem::path(d) / "qemu-system-x86_64"))
                return std::filesystem::path(d) / "qemu-system-x86_64";
    }
    if (is_executable("/usr/bin/qemu-system-x86_64"))
        return std::filesystem::path("/usr/bin/qemu-system-x86_64");
    return std::nullopt;
}

std::shared_ptr<driver> make_qemu_driver(qemu_options opts) {
    return std::make_shared<qemu_driver>(std::move(opts));
}

}  // namespace vmrt::hv
