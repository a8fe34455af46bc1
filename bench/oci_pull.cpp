// bench/oci_pull: pulling one multi-layer image (>= 100 MiB of incompressible layers) from the
// same local registry (Debian's docker-registry over TLS on loopback, started here) with vmrt's
// puller into its store, and with `skopeo copy docker://... dir:...`, alternately, in one run.
// Both download the compressed layers and verify them; neither unpacks. Prints the medians and
// the ratio skopeo / vmrt (goal of issue 7: >= 1.5).
//
//   build/bench/oci_pull [--mib 100] [--layers 4] [--runs 3] [--parallel 3] [--vmrt-only 1]
//
// --vmrt-only 1 runs vmrt's pulls alone (no skopeo, no curl, no ratio): for profiling it with
// `perf record`.
#include "support/oci_layout.hpp"
#include "support/registry_env.hpp"
#include "support/test_support.hpp"

#include <vmrt/image/oci_pull.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using clock_type = std::chrono::steady_clock;

// CPU seconds (user + system) of this process, or of its reaped children.
double cpu_seconds(int who) {
    rusage u{};
    ::getrusage(who, &u);
    return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
    std::uint64_t mib = 100;
    unsigned layers = 4, runs = 3, parallel = 3;
    bool vmrt_only = false;
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string flag = argv[i];
        unsigned long value = std::strtoul(argv[i + 1], nullptr, 10);
        if (flag == "--mib") mib = value;
        if (flag == "--layers") layers = static_cast<unsigned>(value);
        if (flag == "--runs") runs = static_cast<unsigned>(value);
        if (flag == "--parallel") parallel = static_cast<unsigned>(value);
        if (flag == "--vmrt-only") vmrt_only = value != 0;
    }
    try {
        vmrt::test::registry_server reg;
        vmrt::test::temp_dir layout, work;
        const auto img = vmrt::test::write_big_image(layout.path(), "big", mib << 20, layers);
        vmrt::test::push_image(layout.path(), "big", reg, "bench/big:v1");
        std::printf(
            "oci_pull: %s/bench/big:v1, %zu layers, %.1f MiB of layers; docker-registry %s; %u runs each\n",
            reg.host_port().c_str(), img.layers.size(),
            static_cast<double>(img.total_layer_bytes()) / (1 << 20), "2.8 (Debian 12)", runs);

        std::vector<double> vmrt_s, skopeo_s, curl_s, vmrt_cpu, skopeo_cpu;
        for (unsigned r = 0; r < runs; ++r) {
            // vmrt: a fresh store each run, so every blob is downloaded.
            const fs::path store_dir = work.path() / ("store-" + std::to_string(r));
            {
                vmrt::image::oci_store store(store_dir);
                vmrt::image::pull_options o;
                o.client.tls.ca_file = reg.ca_file();
                o.credentials = vmrt::image::registry_credentials{};
                o.parallel_blobs = parallel;
                auto ref = vmrt::image::parse_image_reference(reg.host_port() + "/bench/big:v1");
                asio::io_context ctx;
                const double cpu0 = cpu_seconds(RUSAGE_SELF);
                const auto t0 = clock_type::now();
                auto f = asio::co_spawn(ctx, vmrt::image::pull_image(store, ref, o), asio::use_future);
                ctx.run();
                auto pulled = f.get();
                vmrt_s.push_back(std::chrono::duration<double>(clock_type::now() - t0).count());
                vmrt_cpu.push_back(cpu_seconds(RUSAGE_SELF) - cpu0);
                if (pulled.blobs_downloaded != img.layers.size() + 1)
                    throw std::runtime_error("vmrt did not download every blob");
            }
            fs::remove_all(store_dir);
            if (vmrt_only) continue;

            const fs::path out = work.path() / ("skopeo-" + std::to_string(r));
            const double child0 = cpu_seconds(RUSAGE_CHILDREN);
            const auto t0 = clock_type::now();
            vmrt::test::run_skopeo(reg, vmrt::test::strings("copy", "--src-cert-dir", reg.cert_dir().string(),
                                                            "--src-no-creds",
                                                            "docker://" + reg.host_port() + "/bench/big:v1",
                                                            "dir:" + out.string()));
            skopeo_s.push_back(std::chrono::duration<double>(clock_type::now() - t0).count());
            skopeo_cpu.push_back(cpu_seconds(RUSAGE_CHILDREN) - child0);
            fs::remove_all(out);

            // The registry's own floor: one curl process fetching every layer to /dev/null over one
            // kept-alive connection, no hashing, no file.
            std::vector<std::string> args =
                vmrt::test::strings("-sS", "--fail", "--cacert", reg.ca_file().string());
            for (const auto& l : img.layers) {
                args.push_back(reg.url() + "/v2/bench/big/blobs/" + l.digest);
                args.push_back("-o");
                args.push_back("/dev/null");
            }
            const auto c0 = clock_type::now();
            auto [code, output] = vmrt::test::run_to_end("curl", args, std::chrono::seconds(120));
            if (code != 0) throw std::runtime_error("curl failed: " + output);
            curl_s.push_back(std::chrono::duration<double>(clock_type::now() - c0).count());
        }
        const double v = median(vmrt_s), s = median(skopeo_s);
        const double mb = static_cast<double>(img.total_layer_bytes()) / (1 << 20);
        std::printf("%-44s %8.3f s  %7.1f MiB/s  cpu %.3f s\n", "vmrt pull_image (store, verified)", v,
                    mb / v, median(vmrt_cpu));
        if (vmrt_only) return 0;
        std::printf("%-44s %8.3f s  %7.1f MiB/s  cpu %.3f s\n", "skopeo copy docker:// dir:", s, mb / s,
                    median(skopeo_cpu));
        const double c = median(curl_s);
        std::printf("%-44s %8.3f s  %7.1f MiB/s\n", "curl, layers to /dev/null (server floor)", c, mb / c);
        std::printf("ratio skopeo / vmrt (medians): %.2fx (goal >= 1.5x)\n", s / v);
        std::printf("ratio vmrt / server floor (medians): %.2fx\n", v / c);
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "oci_pull: %s\n", e.what());
        return 1;
    }
}
