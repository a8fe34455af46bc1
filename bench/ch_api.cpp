// bench/ch_api: request latency of Cloud Hypervisor's REST API over its Unix socket, vmrt's client
// next to curl, against the same CH double in the same run (issue 6). Real CH cannot run here
// (not packaged for Debian 12, needs KVM), so the server is vmrt-fake-cloud-hypervisor: the
// figures compare clients, not CH itself (CH's VMM thread does more work per request).
//
// One double, API mode, a created and booted VM (so vm.info returns a full config and state), then
// N sequential `GET /api/v1/vm.info` requests per series:
//  (a) vmrt api_client::vm_info() on one keep-alive connection (the driver's way), and the raw
//      http_unix_client request without the typed parse, to show what the JSON costs;
//  (c) vmrt with a fresh connection per request (connect + request + close);
//  (b) curl --unix-socket as one process per request (what scripts do: process start included),
//      and one curl process fetching N URLs over its reused connection (curl's fair case: the
//      per-request time is curl's own %{time_total}; the wall time per request is shown too).
// Usage: ch_api [--requests N]   (default 2000; the CTest smoke runs N = 20)
// The double is $VMRT_FAKE_CLOUD_HYPERVISOR, or the one built next to this bench.
#include "hv/ch_api.hpp"

#include "io/http_unix_client.hpp"
#include "io/unix_listener.hpp"

#include <vmrt/io/process.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fcntl.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

extern char** environ;

namespace asio = boost::asio;
namespace ch = vmrt::hv::ch;
using clock_type = std::chrono::steady_clock;
using socket_type = asio::local::stream_protocol::socket;

namespace {

double us_since(clock_type::time_point t0) {
    return std::chrono::duration<double, std::micro>(clock_type::now() - t0).count();
}

struct stats {
    double median, p90, p99, mean;
};

stats summarize(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    auto at = [&](double q) {
        return v[static_cast<std::size_t>(q * static_cast<double>(v.size() - 1))];
    };
    double sum = 0;
    for (double x : v) sum += x;
    return {at(0.5), at(0.9), at(0.99), sum / static_cast<double>(v.size())};
}

// The bench's scratch directory, removed on every exit path.
struct work_dir {
    std::filesystem::path path;
    work_dir() : path(scratch_root() / ("vmrt-bench-ch-api-" + std::to_string(::getpid()))) {
        std::filesystem::create_directories(path);
    }
    // $TMPDIR (which the test run points into its own, possibly not yet created, directory) or /tmp.
    static std::filesystem::path scratch_root() {
        const char* tmp = std::getenv("TMPDIR");
        return tmp && *tmp ? std::filesystem::path(tmp) : std::filesystem::path("/tmp");
    }
    ~work_dir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
};

std::filesystem::path double_program() {
    if (const char* env = std::getenv("VMRT_FAKE_CLOUD_HYPERVISOR")) return env;
#ifdef VMRT_FAKE_CH_BUILT
    return VMRT_FAKE_CH_BUILT;
#else
    throw std::runtime_error("set VMRT_FAKE_CLOUD_HYPERVISOR to vmrt-fake-cloud-hypervisor");
#endif
}

// A VM whose vm.info is about as large as a real one (disks, nets, a vsock, a console). No virtio-fs
// share: the double, like CH, would need a live virtiofsd behind its socket to boot.
ch::vm_config bench_vm(const std::filesystem::path& dir) {
    ch::vm_config c;
    c.cpus.boot_vcpus = 2;
    c.cpus.max_vcpus = 4;
    c.memory.size = 1ull << 30;
    c.payload.kernel = (dir / "vmlinuz").string();
    c.payload.initramfs = (dir / "initrd.img").string();
    c.payload.cmdline = "console=ttyS0 root=/dev/vda1 rw vmrs.ip=10.0.0.2";
    c.disks.push_back({.path = (dir / "root.img").string(), .readonly = false});
    c.disks.push_back({.path = (dir / "data.img").string(), .readonly = false});
    c.disks.push_back({.path = (dir / "seed.iso").string(), .readonly = true});
    c.net.push_back({std::string("vmrt-tap0"), std::string("52:54:00:12:34:56"), std::nullopt});
    c.vsock = ch::vsock_config{3, (dir / "vsock.sock").string(), std::nullopt};
    c.serial = ch::console_config{"File", (dir / "serial.log").string(), std::nullopt};
    return c;
}

// Runs argv to its end (stdout to `out`, stderr to the bench's), returns the exit status.
int run(const std::vector<std::string>& argv, const std::filesystem::path& out) {
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0600);
    pid_t pid = 0;
    int rc = ::posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) throw std::runtime_error(argv[0] + ": " + std::strerror(rc));
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

struct curl_results {
    std::vector<double> per_process_us;  // one curl process per request, wall time
    std::vector<double> reuse_curl_us;   // one process, N URLs: curl's %{time_total} per transfer
    double reuse_wall_us = 0;            // that process's wall time
    long reuse_connects = 0;             // new connections it opened (1 = full reuse)
    int failures = 0;
};

curl_results measure_curl(const std::filesystem::path& socket, const std::filesystem::path& dir, int n) {
    const std::string url = "http://localhost/api/v1/vm.info";
    curl_results r;
    const auto out = dir / "curl.out";
    const std::vector<std::string> one{"curl",      "-sS",           "--fail",        "-o",
                                       "/dev/null", "--unix-socket", socket.string(), url};
    for (int i = 0; i < n; ++i) {
        auto t0 = clock_type::now();
        int rc = run(one, out);
        r.per_process_us.push_back(us_since(t0));
        if (rc != 0) ++r.failures;
    }
    // One process, N transfers: a --config file (N URLs do not fit a command line for large N).
    const auto config = dir / "curl.config";
    {
        std::ofstream c(config);
        for (int i = 0; i < n; ++i) c << "url = \"" << url << "\"\noutput = \"/dev/null\"\n";
    }
    const std::vector<std::string> many{"curl",
                                        "-sS",
                                        "--fail",
                                        "--unix-socket",
                                        socket.string(),
                                        "-w",
                                        "%{time_total} %{num_connects}\\n",
                                        "--config",
                                        config.string()};
    auto t0 = clock_type::now();
    int rc = run(many, out);
    r.reuse_wall_us = us_since(t0);
    if (rc != 0) ++r.failures;
    std::ifstream in(out);
    double seconds = 0;
    long connects = 0;
    while (in >> seconds >> connects) {
        r.reuse_curl_us.push_back(seconds * 1e6);
        r.reuse_connects += connects;
    }
    if (static_cast<int>(r.reuse_curl_us.size()) != n) ++r.failures;
    return r;
}

void row(const char* name, const stats& s) {
    std::printf("%-52s %10.1f %10.1f %10.1f %10.1f\n", name, s.median, s.p90, s.p99, s.mean);
}

}  // namespace

int main(int argc, char** argv) {
    int n = 2000;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--requests" && i + 1 < argc)
            n = std::max(2, std::atoi(argv[++i]));
        else {
            std::cerr << "usage: ch_api [--requests N]\n";
            return 2;
        }
    }
    work_dir work;
    const auto socket_path = work.path / "api.sock";

    asio::io_context ctx;
    vmrt::io::process vmm;
    std::vector<double> typed_us, raw_us, fresh_us;
    std::size_t info_bytes = 0;
    curl_results curl;
    int failures = 0;

    // The double is spawned outside the coroutine (GCC 12 and braced string lists in coroutine
    // bodies); io::process kills and reaps it if the bench fails half-way.
    try {
        // Bound before the double starts (`--api-socket fd=N`), as the CH driver does it: no
        // request races its start-up; curl reaches it through the same path.
        auto listener = vmrt::io::listen_unix(socket_path, 64);
        if (!listener)
            throw std::runtime_error("binding " + socket_path.string() + ": " + listener.error().message());
        const int listen_fd = listener->get();
        vmrt::io::process_options opts;
        opts.program = double_program();
        opts.args = {"--api-socket", "fd=" + std::to_string(listen_fd)};
        opts.inherited_fds = {listen_fd};
        opts.log_file = work.path / "ch.log";
        vmm = vmrt::io::process::spawn(ctx.get_executor(), opts);
        listener->reset();  // the double holds its own copy
    } catch (const std::exception& e) {
        std::cerr << "ch_api: starting the CH double: " << e.what() << "\n";
        return 1;
    }

    auto bench = [&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        auto connect = [&] {
            socket_type s(ex);
            s.connect(asio::local::stream_protocol::endpoint(socket_path.string()));
            return vmrt::io::http_unix_client(std::move(s));
        };
        ch::api_client api(connect());
        auto config = bench_vm(work.path);
        co_await api.vm_create(config);
        co_await api.vm_boot();
        auto first = co_await api.http().async_request("GET", "/api/v1/vm.info");
        info_bytes = first.body.size();

        // (a) one keep-alive connection: typed, then raw.
        for (int i = 0; i < n; ++i) {
            auto t0 = clock_type::now();
            auto info = co_await api.vm_info();
            typed_us.push_back(us_since(t0));
            if (info.state != ch::vm_state::running) ++failures;
        }
        for (int i = 0; i < n; ++i) {
            auto t0 = clock_type::now();
            auto r = co_await api.http().async_request("GET", "/api/v1/vm.info");
            raw_us.push_back(us_since(t0));
            if (r.status != 200) ++failures;
        }
        // (c) a fresh connection per request.
        for (int i = 0; i < n; ++i) {
            auto t0 = clock_type::now();
            ch::api_client once(connect());
            auto info = co_await once.vm_info();
            once.http().close();
            fresh_us.push_back(us_since(t0));
            if (info.state != ch::vm_state::running) ++failures;
        }
        // (b) curl: blocking child processes; the double runs on its own, nothing here is async.
        curl = measure_curl(socket_path, work.path, n);

        co_await api.vmm_shutdown();
        auto [ec, status] = co_await vmm.async_wait(asio::as_tuple(asio::use_awaitable));
        if (ec || !status.success()) ++failures;
    };
    std::exception_ptr error;
    asio::co_spawn(ctx, bench(), [&](std::exception_ptr e) { error = e; });
    ctx.run();
    if (error) {
        try {
            std::rethrow_exception(error);
        } catch (const std::exception& e) {
            std::cerr << "ch_api: " << e.what() << "\n";
        }
        return 1;
    }

    std::printf("ch_api: GET /api/v1/vm.info over a Unix socket to vmrt-fake-cloud-hypervisor (CH double), "
                "%d requests per series, reply body %zu bytes\n",
                n, info_bytes);
    std::printf("%-52s %10s %10s %10s %10s\n", "client", "median us", "p90 us", "p99 us", "mean us");
    auto typed = summarize(typed_us), raw = summarize(raw_us), fresh = summarize(fresh_us);
    auto per_process = summarize(curl.per_process_us);
    row("(a) vmrt api_client::vm_info, keep-alive", typed);
    row("(a') vmrt http_unix_client raw, keep-alive", raw);
    row("(b) curl, one process per request", per_process);
    if (!curl.reuse_curl_us.empty()) {
        auto reuse = summarize(curl.reuse_curl_us);
        row("(b') curl, one process, N URLs (its %{time_total})", reuse);
        std::printf("%-52s %10.1f   (%ld new connection(s) for %zu transfers)\n",
                    "(b') same, process wall time / N", curl.reuse_wall_us / n, curl.reuse_connects,
                    curl.reuse_curl_us.size());
        std::printf("ratio keep-alive, curl time_total / vmrt vm_info (medians): %.2fx\n",
                    reuse.median / typed.median);
        std::printf("ratio keep-alive, curl time_total / vmrt raw request, no JSON parse (medians): %.2fx\n",
                    reuse.median / raw.median);
        std::printf("ratio keep-alive, curl wall per request / vmrt vm_info (means): %.2fx\n",
                    curl.reuse_wall_us / n / typed.mean);
    }
    row("(c) vmrt, fresh connection per request", fresh);
    std::printf("ratio per-request connection, curl process / vmrt fresh connection (medians): %.1fx\n",
                per_process.median / fresh.median);
    std::printf("ratio vmrt fresh connection / vmrt keep-alive (medians): %.2fx\n",
                fresh.median / typed.median);
    failures += curl.failures;
    if (failures) std::printf("FAILED requests or steps: %d\n", failures);
    return failures ? 1 : 0;
}
