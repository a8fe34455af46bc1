// bench/ready_latency: how long after a guest writes `VMRS_READY <ip>` does the application learn
// that the VM is ready?
//
//  * vmrt: the manager's Ready event (inotify-driven serial tail → parser → event stream);
//  * comparison, measured on the same guests in the same run: vm-rs's approach, a loop that
//    re-reads the serial log every 200 ms and scans it for the marker.
//
// Each guest is vmrt-fake-guest with `fake.ready_stamp`: it prints its CLOCK_MONOTONIC time right
// before writing the ready line, so both detectors are measured from the same instant.
// Usage: ready_latency [RUNS]   (default 40)
#include <vmrt/vm_manager.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;  // CLOCK_MONOTONIC on Linux, as the fake guest's stamp

namespace {

std::int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(clock_type::now().time_since_epoch()).count();
}

std::string slurp(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

std::int64_t stamp_of(const std::string& console) {
    auto pos = console.find("fake: ready-write-ns ");
    if (pos == std::string::npos) return -1;
    return std::stoll(console.substr(pos + 21));
}

// vm-rs 0.2.4's ReadyMarkerCache in spirit: wake every 200 ms, read what is new, look for the marker.
void poll_for_ready(std::filesystem::path log, std::atomic<std::int64_t>& detected_at,
                    std::atomic<bool>& stop) {
    std::size_t offset = 0;
    std::string seen;
    while (!stop) {
        std::ifstream in(log, std::ios::binary);
        in.seekg(static_cast<std::streamoff>(offset));
        std::string fresh((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        offset += fresh.size();
        seen += fresh;
        if (seen.find("VMRS_READY") != std::string::npos) {
            detected_at = now_ns();
            return;
        }
        std::this_thread::sleep_for(200ms);
    }
}

struct stats {
    double median_us, p90_us, max_us;
};

stats summarize(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    auto at = [&](double q) {
        return v[static_cast<std::size_t>(q * static_cast<double>(v.size() - 1))];
    };
    return {at(0.5), at(0.9), v.back()};
}

}  // namespace

int main(int argc, char** argv) {
    const int runs = argc > 1 ? std::max(3, std::atoi(argv[1])) : 40;
    auto work = std::filesystem::temp_directory_path() / ("vmrt-bench-ready-" + std::to_string(::getpid()));
    std::filesystem::create_directories(work);
    { std::ofstream(work / "vmlinuz") << "fake kernel"; }

    asio::io_context ctx;
    vmrt::manager_options opts;
    opts.state_dir = work / "state";
    vmrt::vm_manager manager(ctx.get_executor(), opts);
    if (!manager.find_driver(vmrt::backend_kind::fake)) {
        std::cerr << "ready_latency: vmrt-fake-guest not found (build it, or set VMRT_FAKE_GUEST)\n";
        return 1;
    }

    std::vector<double> vmrt_us, poll_us;
    int failures = 0;
    auto bench = [&]() -> asio::awaitable<void> {
        for (int i = 0; i < runs; ++i) {
            vmrt::vm_spec spec;
            spec.name = "bench" + std::to_string(i);
            spec.backend = vmrt::backend_kind::fake;
            spec.kernel = work / "vmlinuz";
            // A random-ish boot delay so that the write does not align with the poll period.
            spec.cmdline =
                "vmrs.ip=10.0.0.2 fake.ready_stamp fake.boot_ms=" + std::to_string(50 + (i * 37) % 200);
            spec.serial_log = work / (spec.name + ".log");
            std::atomic<std::int64_t> polled_at{-1};
            std::atomic<bool> stop_polling{false};
            auto sub = manager.subscribe();
            std::thread poller(poll_for_ready, spec.serial_log, std::ref(polled_at), std::ref(stop_polling));
            auto [ec, info] = co_await manager.async_start(spec, asio::as_tuple(asio::use_awaitable));
            std::int64_t event_at = -1;
            while (!ec) {
                auto [eec, ev] = co_await sub.async_next(asio::as_tuple(asio::use_awaitable));
                if (eec) break;
                if (ev.vm != spec.name || ev.kind != vmrt::event_kind::state_changed) continue;
                if (std::holds_alternative<vmrt::state::ready>(ev.state)) {
                    event_at = now_ns();
                    break;
                }
                if (vmrt::is_terminal(ev.state)) break;
            }
            if (event_at < 0) stop_polling = true;  // no ready line will come: end the poller
            poller.join();                          // otherwise it finds the line on its own schedule
            auto written_at = stamp_of(slurp(spec.serial_log));
            if (ec || event_at < 0 || written_at < 0 || polled_at < 0) {
                ++failures;
            } else {
                vmrt_us.push_back(static_cast<double>(event_at - written_at) / 1000.0);
                poll_us.push_back(static_cast<double>(polled_at - written_at) / 1000.0);
            }
            co_await manager.async_kill(spec.name, asio::as_tuple(asio::use_awaitable));
            manager.remove(spec.name);
        }
    };
    asio::co_spawn(ctx, bench(), [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
    });
    ctx.run();
    std::filesystem::remove_all(work);

    if (vmrt_us.empty()) {
        std::cerr << "ready_latency: no successful run\n";
        return 1;
    }
    auto v = summarize(vmrt_us), p = summarize(poll_us);
    std::printf("ready_latency: time from the guest writing VMRS_READY to the application knowing (%zu runs, "
                "%d failed)\n",
                vmrt_us.size(), failures);
    std::printf("%-34s %12s %12s %12s\n", "detector", "median us", "p90 us", "max us");
    std::printf("%-34s %12.1f %12.1f %12.1f\n", "vmrt (inotify tail -> event)", v.median_us, v.p90_us,
                v.max_us);
    std::printf("%-34s %12.1f %12.1f %12.1f\n", "200 ms polling loop (vm-rs style)", p.median_us, p.p90_us,
                p.max_us);
    std::printf("ratio (polling median / vmrt median): %.0fx; goal: vmrt median < 1000 us -> %s\n",
                p.median_us / v.median_us, v.median_us < 1000.0 ? "met" : "NOT met");
    return 0;
}
