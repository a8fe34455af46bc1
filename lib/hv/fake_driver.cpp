#include "hv/fake_driver.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <sstream>

namespace vmrt::hv {
namespace {

namespace asio = boost::asio;

// 'T' (stopped) in the state field of /proc/PID/stat, which follows the last ')'.
bool is_stopped(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto close = stat.rfind(')');
    return close != std::string::npos && close + 2 < stat.size() &&
           (stat[close + 2] == 'T' || stat[close + 2] == 't');
}

class fake_instance final : public vm_instance {
public:
    fake_instance(io::process p, std::filesystem::path log) : proc_(std::move(p)), log_(std::move(log)) {}

    asio::awaitable<exit_status> wait_exit() override {
        co_return co_await proc_.async_wait(asio::use_awaitable);
    }

    // SIGUSR1 stands for the ACPI power button: the fake guest then "shuts down" and exits 0.
    asio::awaitable<void> request_powerdown() override {
        if (auto ec = proc_.signal(SIGUSR1))
            throw error(ec, {.message = "power button (SIGUSR1) not delivered"});
        co_return;
    }

    void terminate() override { proc_.signal(SIGTERM); }

    void kill() override {
        proc_.signal_group(SIGKILL);
        proc_.signal(SIGKILL);
    }

    // A real freeze: SIGSTOP cannot be caught or ignored, so the whole process group halts.
    // Delivery is asynchronous, and the kernel has no pidfd notification for a stop, so the pause
    // completes once /proc says the process is stopped: a bounded check, a few milliseconds.
    asio::awaitable<void> pause() override {
        if (auto ec = proc_.signal_group(SIGSTOP)) throw error(ec, {.message = "SIGSTOP not delivered"});
        asio::steady_timer tick(co_await asio::this_coro::executor);
        for (int i = 0; i < 1000 && proc_.running() && !is_stopped(proc_.pid()); ++i) {
            tick.expires_after(std::chrono::milliseconds(1));
            co_await tick.async_wait(asio::use_awaitable);
        }
    }
    asio::awaitable<void> resume() override {
        if (auto ec = proc_.signal_group(SIGCONT)) throw error(ec, {.message = "SIGCONT not delivered"});
        co_return;
    }

    std::optional<io::process_identity> vmm_identity() const override { return proc_.identity(); }
    std::string vmm_log_tail() const override { return io::read_file_tail(log_, 2048); }

private:
    io::process proc_;
    std::filesystem::path log_;
};

class fake_driver final : public driver {
public:
    explicit fake_driver(std::filesystem::path program) : program_(std::move(program)) {
        caps_.allow(operation::start)
            .allow(operation::stop_graceful)
            .allow(operation::kill)
            .allow(operation::pause)
            .allow(operation::resume);
    }

    std::string_view name() const noexcept override { return "fake"; }
    const capability_set& capabilities() const noexcept override { return caps_; }

    std::optional<spec_error> check_spec(const vm_spec& s) const override {
        auto refuse = [](std::string field, std::string what) {
            return spec_error{std::move(field), "the fake backend cannot honour " + what};
        };
        if (s.boot != boot_mode::direct) return refuse("boot", "UEFI boot");
        if (s.firmware) return refuse("firmware", "firmware");
        if (s.efi_variable_store) return refuse("efi_variable_store", "an EFI variable store");
        if (s.balloon) return refuse("balloon", "a memory balloon");
        if (s.max_cpus && *s.max_cpus != s.cpus) return refuse("max_cpus", "vCPU hotplug");
        if (s.max_memory_mib && *s.max_memory_mib != s.memory_mib)
            return refuse("max_memory_mib", "memory hotplug");
        if (!s.networks.empty()) return refuse("networks", "network interfaces");
        if (!s.shared_dirs.empty()) return refuse("shared_dirs", "shared directories");
        if (s.vsock) return refuse("vsock", "vsock");
        if (s.netns) return refuse("netns", "a network namespace");
        if (s.machine_id) return refuse("machine_id", "a machine identifier");
        if (s.rosetta) return refuse("rosetta", "Rosetta");
        auto check_disk = [&](const disk_spec& d, const std::string& field) -> std::optional<spec_error> {
            if (d.cache != disk_cache::automatic) return refuse(field + ".cache", "disk cache modes");
            if (d.interface != disk_interface::virtio_blk) return refuse(field + ".interface", "NVMe disks");
            return std::nullopt;
        };
        if (s.root_disk)
            if (auto e = check_disk(*s.root_disk, "root_disk")) return e;
        for (std::size_t i = 0; i < s.data_disks.size(); ++i)
            if (auto e = check_disk(s.data_disks[i], "data_disks[" + std::to_string(i) + "]")) return e;
        return std::nullopt;
    }

    asio::awaitable<std::unique_ptr<vm_instance>> launch(const vm_spec& s, launch_context ctx) override {
        io::process_options opts;
        opts.program = program_;
        opts.log_file = ctx.run_dir / "vmm.log";
        auto& a = opts.args;
        a = {"--name",       s.name,
             "--serial",     s.serial_log.string(),
             "--kernel",     s.kernel.string(),
             "--cpus",       std::to_string(s.cpus),
             "--memory-mib", std::to_string(s.memory_mib)};
        if (s.initramfs) a.insert(a.end(), {"--initramfs", s.initramfs->string()});
        if (s.cmdline) a.insert(a.end(), {"--cmdline", *s.cmdline});
        auto add_disk = [&](const disk_spec& d) {
            a.insert(a.end(), {"--disk", d.path.string() + (d.read_only ? ":ro" : ":rw")});
        };
        if (s.root_disk) add_disk(*s.root_disk);
        for (auto& d : s.data_disks) add_disk(d);
        if (s.seed_iso) a.insert(a.end(), {"--disk", s.seed_iso->string() + ":ro"});

        error_code ec;
        auto proc = io::process::spawn(ctx.executor, opts, ec);
        if (ec)
            throw error(make_error_code(errc::vmm_start_failed),
                        {.message = "cannot start " + program_.string() + ": " + ec.message()});
        ctx.note("fake VMM " + program_.filename().string() + " started as pid " +
                 std::to_string(proc.pid()));
        co_return std::make_unique<fake_instance>(std::move(proc), *opts.log_file);
    }

private:
    std::filesystem::path program_;
    capability_set caps_{"the fake backend has no hypervisor to do this"};
};

bool is_executable(const std::filesystem::path& p) { return ::access(p.c_str(), X_OK) == 0; }

}  // namespace

std::optional<std::filesystem::path> find_fake_guest_program() {
    constexpr const char* program = "vmrt-fake-guest";
    if (const char* env = std::getenv("VMRT_FAKE_GUEST"); env && *env) {
        if (is_executable(env)) return std::filesystem::path(env);
        return std::nullopt;  // an explicit setting that is wrong must not fall back silently
    }
    std::error_code ec;
    auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (!ec) {
        auto dir = self.parent_path();
        for (auto candidate : {dir / program, dir.parent_path() / "tools" / program})
            if (is_executable(candidate)) return candidate;
    }
    if (const char* path = std::getenv("PATH")) {
        std::stringstream dirs(path);
        for (std::string d; std::getline(dirs, d, ':');)
            if (!d.empty() && is_executable(std::filesystem::path(d) / program))
                return std::filesystem::path(d) / program;
    }
    return std::nullopt;
}

std::shared_ptr<driver> make_fake_driver(std::filesystem::path guest_program) {
    return std::make_shared<fake_driver>(std::move(guest_program));
}

}  // namespace vmrt::hv
