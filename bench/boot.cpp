// bench/boot: boot-to-ready of the default guest under QEMU, through vmrt's manager and through
// the identical QEMU command started by hand, in the same run, alternating.
//
//  * vmrt: async_start → Ready event (QMP handshake, inotify serial tail, event stream);
//  * by hand: the same QEMU argv (built by the same function) spawned directly, and the serial
//    log watched for the VMRS_READY line by re-reading it every 5 ms (what a script would do,
//    with a finer period than most).
// Usage: boot [RUNS]   (default 5; each boot costs ~5 CPU-seconds under TCG)
#include "hv/qemu_command.hpp"
#include "hv/qemu_driver.hpp"

#include <vmrt/image/guest_image.hpp>
#include <vmrt/io/process.hpp>
#include <vmrt/vm_manager.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace {

double ms_since(clock_type::time_point t0) {
    return std::chrono::duration<double, std::milli>(clock_type::now() - t0).count();
}

bool has_ready_line(const std::filesystem::path& log) {
    std::ifstream in(log, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str().find("VMRS_READY ") != std::string::npos;
}

vmrt::vm_spec make_spec(const vmrt::image::guest_image& g, const std::string& name,
                        const std::filesystem::path& dir) {
    vmrt::vm_spec s;
    s.name = name;
    s.backend = vmrt::backend_kind::qemu;
    s.kernel = g.kernel;
    s.initramfs = g.initramfs;
    s.memory_mib = 256;
    s.cmdline = std::string(vmrt::image::default_guest_cmdline) + " vmrs.ip=10.0.2.15/24";
    s.networks.push_back({.kind = vmrt::nic_kind::user, .isolated = true});
    s.serial_log = dir / (name + ".log");
    return s;
}

// The same QEMU, started by hand: spawn, then poll the console file for the ready line.
double boot_by_hand(const vmrt::vm_spec& spec) {
    int pair[2];
    ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair);
    vmrt::hv::qemu_runtime rt;
    rt.accelerator = vmrt::hv::choose_accelerator();
    rt.qmp_fd = pair[1];
    auto args = vmrt::hv::build_qemu_args(spec, rt);
    { std::ofstream(spec.serial_log, std::ios::trunc); }
    asio::io_context ctx;
    vmrt::io::process_options o;
    o.program = *vmrt::hv::find_qemu();
    o.args = *args;
    o.inherited_fds = {pair[1]};
    auto t0 = clock_type::now();
    auto p = vmrt::io::process::spawn(ctx.get_executor(), o);
    ::close(pair[1]);
    double took = -1;
    while (ms_since(t0) < 60000) {
        if (has_ready_line(spec.serial_log)) {
            took = ms_since(t0);
            break;
        }
        std::this_thread::sleep_for(5ms);
    }
    p.kill_and_reap();
    ::close(pair[0]);
    return took;
}

double boot_with_vmrt(vmrt::vm_manager& manager, asio::io_context& ctx, vmrt::vm_spec spec) {
    double took = -1;
    const std::string name = spec.name;
    const std::vector<std::string> names{name};  // outside the coroutine: GCC 12 braced-list bug
    asio::co_spawn(
        ctx,
        [&]() -> asio::awaitable<void> {
            auto t0 = clock_type::now();
            auto [ec, info] = co_await manager.async_start(spec, asio::as_tuple(asio::use_awaitable));
            if (ec) {
                std::cerr << "start failed: " << info.diag.message << "\n";
                co_return;
            }
            auto [rec, infos] =
                co_await manager.async_wait_ready(names, 60s, asio::as_tuple(asio::use_awaitable));
            if (!rec) took = ms_since(t0);
            co_await manager.async_kill(name, asio::as_tuple(asio::use_awaitable));
            manager.remove(name);
        },
        asio::detached);
    ctx.restart();
    ctx.run();
    return took;
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? -1 : v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
    const int runs = argc > 1 ? std::max(1, std::atoi(argv[1])) : 5;
    if (!vmrt::hv::find_qemu()) {
        std::cerr << "boot: qemu-system-x86_64 not found (run tools/setup)\n";
        return 1;
    }
    vmrt::image::guest_build_options gopts;
    auto guest = vmrt::image::build_default_guest(gopts);
    auto work = std::filesystem::temp_directory_path() / ("vmrt-bench-boot-" + std::to_string(::getpid()));
    std::filesystem::create_directories(work);

    asio::io_context ctx;
    vmrt::manager_options mopts;
    mopts.state_dir = work / "state";
    vmrt::vm_manager manager(ctx.get_executor(), mopts);

    std::vector<double> by_vmrt, by_hand;
    for (int i = 0; i < runs; ++i) {
        auto v = boot_with_vmrt(manager, ctx, make_spec(guest, "vmrt" + std::to_string(i), work));
        auto h = boot_by_hand(make_spec(guest, "hand" + std::to_string(i), work));
        if (v > 0) by_vmrt.push_back(v);
        if (h > 0) by_hand.push_back(h);
        std::printf("run %d: vmrt %.0f ms, by hand %.0f ms\n", i + 1, v, h);
    }
    std::filesystem::remove_all(work);
    std::printf("boot to VMRS_READY, default guest %s, accelerator %s, %d runs\n",
                guest.kernel_version.c_str(), vmrt::hv::choose_accelerator().c_str(), runs);
    std::printf("%-44s %10s\n", "", "median ms");
    std::printf("%-44s %10.0f\n", "vmrt (start -> Ready event)", median(by_vmrt));
    std::printf("%-44s %10.0f\n", "same QEMU command by hand (5 ms file polling)", median(by_hand));
    std::printf("ratio vmrt / by hand: %.2f\n", median(by_vmrt) / median(by_hand));
    return 0;
}
