#include "hv/qemu_driver.hpp"

#include "hv/qemu_command.hpp"
#include "hv/qmp_client.hpp"

#include <vmrt/io/atomic_file.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value_to.hpp>

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

// An owned file descriptor (closed on scope exit): the child's ends of socketpairs and the
// listening sockets handed to sidecars must be closed in the parent once the child has them.
class unique_fd {
public:
    explicit unique_fd(int fd = -1) : fd_(fd) {}
    unique_fd(unique_fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    unique_fd& operator=(unique_fd&& o) noexcept {
        if (this != &o) {
            reset();
            fd_ = std::exchange(o.fd_, -1);
        }
        return *this;
    }
    ~unique_fd() { reset(); }
    int get() const noexcept { return fd_; }
    int release() noexcept { return std::exchange(fd_, -1); }
    void reset() noexcept {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }

private:
    int fd_;
};

[[noreturn]] void fail(std::string message, std::string vmm_output = {}) {
    throw error(make_error_code(errc::vmm_start_failed),
                {.message = std::move(message), .vmm_stderr_tail = std::move(vmm_output)});
}

error_code last_error() { return {errno, boost::system::system_category()}; }

// A listening Unix socket bound to `path`, for a virtiofsd sidecar (--fd): the socket exists
// before QEMU starts, so QEMU can connect at once, with no wait for the sidecar to create it.
unique_fd listen_unix(const std::filesystem::path& path) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.native().size() >= sizeof addr.sun_path) fail("socket path too long: " + path.string());
    std::memcpy(addr.sun_path, path.c_str(), path.native().size() + 1);
    unique_fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (fd.get() < 0) fail("socket: " + last_error().message());
    ::unlink(path.c_str());  // a stale socket of an earlier run of this VM
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd.get(), 1) != 0)
        fail("cannot listen on " + path.string() + ": " + last_error().message());
    return fd;
}

// Asks QEMU to report migration progress as MIGRATION events instead of being polled.
asio::awaitable<void> enable_migration_events(qmp::client& qmp) {
    boost::json::object cap;
    cap["capability"] = "events";
    cap["state"] = true;
    boost::json::array caps;
    caps.push_back(std::move(cap));
    boost::json::object args;
    args["capabilities"] = std::move(caps);
    co_await qmp.async_execute("migrate-set-capabilities", std::move(args));
}

// Waits for MIGRATION {status: completed}; a failed or cancelled migration, the end of the QMP
// connection or the time limit throw.
asio::awaitable<void> wait_migration_done(io::subscription<qmp::event>& events, std::chrono::seconds limit) {
    asio::steady_timer timer(co_await asio::this_coro::executor, limit);
    for (;;) {
        auto next = co_await (events.async_next(asio::as_tuple(asio::use_awaitable)) ||
                              timer.async_wait(asio::as_tuple(asio::use_awaitable)));
        if (next.index() == 1)
            throw error(make_error_code(errc::timeout),
                        {.message = "the migration did not complete in time"});
        auto& [ec, ev] = std::get<0>(next);
        if (ec) throw error(ec, {.message = "QMP connection ended during a migration"});
        if (ev.name != "MIGRATION" || !ev.data.contains("status")) continue;
        auto status = std::string(ev.data.at("status").as_string());
        if (status == "completed") co_return;
        if (status == "failed" || status == "cancelled")
            throw error(make_error_code(errc::command_failed), {.message = "migration " + status});
    }
}

class qemu_instance final : public vm_instance {
public:
    qemu_instance(io::process proc, qmp::client qmp, std::vector<io::process> sidecars,
                  std::filesystem::path log, std::filesystem::path run_dir)
        : proc_(std::move(proc)), qmp_(std::move(qmp)), sidecars_(std::move(sidecars)), log_(std::move(log)),
          run_dir_(std::move(run_dir)) {}

    ~qemu_instance() override {
        qmp_.close();
        kill();
    }

    asio::awaitable<exit_status> wait_exit() override {
        auto status = co_await proc_.async_wait(asio::use_awaitable);
        // virtiofsd leaves when its vhost-user peer disconnects; make sure it does.
        for (auto& s : sidecars_) s.kill_and_reap();
        co_return status;
    }

    asio::awaitable<void> request_powerdown() override { co_await execute("system_powerdown"); }

    void terminate() override { proc_.signal(SIGTERM); }

    void kill() override {
        proc_.signal_group(SIGKILL);
        proc_.signal(SIGKILL);
        for (auto& s : sidecars_) s.kill_and_reap();
    }

    // QMP stop/cont freeze the vCPUs; the guest's clock stops with them.
    asio::awaitable<void> pause() override { co_await execute("stop"); }
    asio::awaitable<void> resume() override { co_await execute("cont"); }

    // QMP `balloon` sets the target; the guest driver follows at its own pace and QEMU reports each
    // step as BALLOON_CHANGE (no polling of query-balloon needed).
    asio::awaitable<std::uint64_t> resize_balloon(std::uint64_t target_mib) override {
        constexpr std::uint64_t mib = 1024 * 1024;
        auto events = qmp_.subscribe_events();  // before the command: no step can be missed
        boost::json::object args;
        args["value"] = target_mib * mib;
        co_await qmp_.async_execute("balloon", std::move(args));
        auto current = co_await qmp_.async_execute("query-balloon");
        std::uint64_t actual = boost::json::value_to<std::uint64_t>(current.as_object().at("actual")) / mib;
        asio::steady_timer limit(co_await asio::this_coro::executor, std::chrono::seconds(30));
        while (actual != target_mib) {
            auto next = co_await (events.async_next(asio::as_tuple(asio::use_awaitable)) ||
                                  limit.async_wait(asio::as_tuple(asio::use_awaitable)));
            if (next.index() == 1)
                throw error(make_error_code(errc::timeout),
                            {.message = "the guest's balloon driver stayed at " + std::to_string(actual) +
                                        " MiB (target " + std::to_string(target_mib) + " MiB)"});
            auto& [ec, ev] = std::get<0>(next);
            if (ec) throw error(ec, {.message = "QMP connection ended during a balloon resize"});
            if (ev.name == "BALLOON_CHANGE" && ev.data.contains("actual"))
                actual = boost::json::value_to<std::uint64_t>(ev.data.at("actual")) / mib;
        }
        co_return actual;
    }

    // QMP `migrate` streams the paused VM's state to a Unix socket that vmrt listens on and copies
    // into the snapshot directory: no shell (`exec:` URIs run one), no file: URI (QEMU >= 8.2).
    asio::awaitable<void> save_snapshot(const std::filesystem::path& dir) override {
        auto ex = co_await asio::this_coro::executor;
        auto events = qmp_.subscribe_events();
        co_await enable_migration_events(qmp_);
        co_await execute("stop");
        const auto sock_path = run_dir_ / "migrate.sock";
        ::unlink(sock_path.c_str());
        asio::local::stream_protocol::acceptor acceptor(
            ex, asio::local::stream_protocol::endpoint(sock_path.string()));
        boost::json::object args;
        args["uri"] = "unix:" + sock_path.string();
        co_await qmp_.async_execute("migrate", std::move(args));
        auto stream = co_await acceptor.async_accept(asio::use_awaitable);
        ::unlink(sock_path.c_str());
        const auto file = dir / "vmstate.bin";
        unique_fd out(::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
        if (out.get() < 0) throw error(last_error(), {.message = "cannot create " + file.string()});
        std::vector<char> buffer(1 << 20);
        for (;;) {
            auto [ec, n] =
                co_await stream.async_read_some(asio::buffer(buffer), asio::as_tuple(asio::use_awaitable));
            for (std::size_t done = 0; done < n;) {
                auto w = ::write(out.get(), buffer.data() + done, n - done);
                if (w < 0) throw error(last_error(), {.message = "cannot write " + file.string()});
                done += static_cast<std::size_t>(w);
            }
            if (ec == asio::error::eof) break;
            if (ec) throw error(ec, {.message = "the migration stream failed"});
        }
        if (::fsync(out.get()) != 0) throw error(last_error(), {.message = "cannot sync " + file.string()});
        co_await wait_migration_done(events, std::chrono::seconds(60));
    }

    std::optional<io::process_identity> vmm_identity() const override { return proc_.identity(); }
    std::string vmm_log_tail() const override { return io::read_file_tail(log_, 2048); }

private:
    asio::awaitable<void> execute(std::string command) {
        if (!qmp_.is_open())
            throw error(make_error_code(errc::invalid_state), {.message = "the QMP connection is closed"});
        co_await qmp_.async_execute(std::move(command));
    }

    io::process proc_;
    qmp::client qmp_;
    std::vector<io::process> sidecars_;
    std::filesystem::path log_;
    std::filesystem::path run_dir_;
};

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

class qemu_driver final : public driver {
public:
    explicit qemu_driver(qemu_options opts) : opts_(std::move(opts)) {
        caps_.allow(operation::start)
            .allow(operation::stop_graceful)
            .allow(operation::kill)
            .allow(operation::pause)
            .allow(operation::resume)
            .allow(operation::resize_balloon)
            .allow(operation::snapshot)
            .allow(operation::restore)
            .deny(operation::vsock_connect,
                  "no vhost-vsock on this host kernel; use a virtio-serial channel");
    }

    std::string_view name() const noexcept override { return "qemu"; }
    const capability_set& capabilities() const noexcept override { return caps_; }

    std::optional<spec_error> check_spec(const vm_spec& s) const override {
        if (s.rosetta)
            return spec_error{"rosetta", "Rosetta exists only on Apple silicon (apple-vz backend)"};
        if (s.vsock && !std::filesystem::exists("/dev/vhost-vsock"))
            return spec_error{"vsock", "QEMU needs /dev/vhost-vsock for vsock, and this host has none"};
        for (std::size_t i = 0; i < s.shared_dirs.size(); ++i)
            if (s.shared_dirs[i].read_only)
                return spec_error{"shared_dirs[" + std::to_string(i) + "].read_only",
                                  "the virtiofsd of this QEMU cannot export a directory read-only"};
        if (s.netns)
            for (std::size_t i = 0; i < s.networks.size(); ++i)
                if (s.networks[i].kind == nic_kind::user)
                    return spec_error{"networks[" + std::to_string(i) + "]", "a user NIC needs no netns"};
        if (!s.shared_dirs.empty() && !std::filesystem::exists(opts_.virtiofsd_binary))
            return spec_error{"shared_dirs", opts_.virtiofsd_binary.string() + " is not installed"};
        // Whatever the command line cannot express is refused by its builder, by field name.
        qemu_runtime probe;
        probe.qmp_fd = 3;
        for (auto& n : s.networks) probe.nic_fds.push_back(n.fd);
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

        qemu_runtime rt;
        rt.accelerator = accel;
        io::process_options popts;
        popts.log_file = ctx.run_dir / "vmm.log";

        // QMP over a socketpair: nothing to connect to, no socket file, no start-up race.
        int pair[2];
        if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0)
            fail("socketpair: " + last_error().message());
        unique_fd ours(pair[0]), theirs(pair[1]);
        rt.qmp_fd = theirs.get();
        popts.inherited_fds.push_back(theirs.get());
        for (auto& n : s.networks) {
            rt.nic_fds.push_back(n.fd);
            if (n.fd >= 0) popts.inherited_fds.push_back(n.fd);
        }

        unique_fd saved_state;
        if (!ctx.restore_from.empty()) {
            const auto file = ctx.restore_from / "vmstate.bin";
            saved_state = unique_fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
            if (saved_state.get() < 0)
                fail("cannot open the snapshot " + file.string() + ": " + last_error().message());
            rt.incoming_fd = saved_state.get();
            popts.inherited_fds.push_back(saved_state.get());
        }

        std::vector<io::process> sidecars;
        for (std::size_t i = 0; i < s.shared_dirs.size(); ++i) {
            auto sock = ctx.run_dir / ("fs" + std::to_string(i) + ".sock");
            auto listener = listen_unix(sock);
            io::process_options v;
            v.program = opts_.virtiofsd_binary;
            v.args = {"--fd=" + std::to_string(listener.get()), "-o",
                      "source=" + s.shared_dirs[i].host_path.string(), "-o", "cache=auto"};
            v.inherited_fds = {listener.get()};
            v.log_file = ctx.run_dir / ("virtiofsd-" + std::to_string(i) + ".log");
            error_code ec;
            auto side = io::process::spawn(ctx.executor, v, ec);
            if (ec) fail("cannot start virtiofsd for " + s.shared_dirs[i].tag + ": " + ec.message());
            sidecars.push_back(std::move(side));  // killed by its destructor if the launch fails later
            rt.virtiofs_sockets.push_back(sock);
        }

        auto args = build_qemu_args(s, rt);
        if (!args)
            throw error(make_error_code(errc::invalid_spec),
                        {.message = args.error().message, .field = args.error().field});
        if (s.netns) {
            popts.program = "ip";
            popts.args = {"netns", "exec", *s.netns, qemu->string()};
            popts.args.insert(popts.args.end(), args->begin(), args->end());
        } else {
            popts.program = *qemu;
            popts.args = std::move(*args);
        }
        {
            std::ostringstream line;
            line << popts.program.string();
            for (auto& a : popts.args) line << ' ' << a;
            io::write_file_atomically(ctx.run_dir / "vmm.cmdline", line.str() + "\n");
        }

        error_code ec;
        auto proc = io::process::spawn(ctx.executor, popts, ec);
        if (ec) fail("cannot start " + popts.program.string() + ": " + ec.message());
        theirs.reset();  // QEMU has its copy; ours would keep the connection open after QEMU dies
        ctx.note("QEMU started as pid " + std::to_string(proc.pid()));

        qmp::client qmp(
            qmp::client::socket_type(ctx.executor, asio::local::stream_protocol(), ours.release()));
        forward_events_of(qmp, ctx);

        // QEMU is up when its QMP handshake completes; if it exits first (a bad option), report
        // its own words. The timer bounds a QEMU that hangs before it gets there.
        asio::steady_timer timer(ctx.executor, opts_.startup_timeout);
        std::string failure;
        try {
            auto winner = co_await (qmp.async_handshake() || proc.async_wait(asio::use_awaitable) ||
                                    timer.async_wait(asio::use_awaitable));
            if (winner.index() == 1)
                failure = "QEMU exited during start-up (" + std::get<1>(winner).to_string() + ")";
            else if (winner.index() == 2)
                failure = "QEMU did not answer on QMP within the start-up timeout";
            else
                ctx.note("QEMU " + describe(std::get<0>(winner)) + " is up (QMP ready)");
        } catch (const std::exception& e) {
            failure = std::string("QEMU start-up failed: ") + e.what();
        }
        if (failure.empty() && rt.incoming_fd >= 0) {
            // Restore: load the saved state through the inherited fd, then let the vCPUs run.
            try {
                auto events = qmp.subscribe_events();
                co_await enable_migration_events(qmp);
                boost::json::object incoming;
                incoming["uri"] = "fd:" + std::to_string(rt.incoming_fd);
                co_await qmp.async_execute("migrate-incoming", std::move(incoming));
                co_await wait_migration_done(events, std::chrono::seconds(60));
                co_await qmp.async_execute("cont");
                ctx.note("restored from " + ctx.restore_from.string());
            } catch (const std::exception& e) {
                failure = std::string("restore failed: ") + e.what();
            }
        }
        if (!failure.empty()) {
            proc.kill_and_reap();
            fail(failure, io::read_file_tail(*popts.log_file, 2048));
        }
        co_return std::make_unique<qemu_instance>(std::move(proc), std::move(qmp), std::move(sidecars),
                                                  *popts.log_file, ctx.run_dir);
    }

private:
    static std::string describe(const qmp::greeting& g) {
        return std::to_string(g.major) + "." + std::to_string(g.minor) + "." + std::to_string(g.micro);
    }

    static void forward_events_of(qmp::client& qmp, launch_context& ctx) {
        asio::co_spawn(ctx.executor, forward_events(qmp.subscribe_events(), ctx.note), asio::detached);
    }

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
