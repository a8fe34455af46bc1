// bench/switch_throughput: forwarding rate of vmrt's L2 switch next to Debian's vde_switch and an
// ideal relay (one socketpair hop forwarded with no switching logic: the ceiling), in one run,
// with the same load generator for every series (traffic.hpp), for 64 B and 1500 B frames and 2
// and 8 ports. Endpoint i sends to endpoint (i + 1) % N after a broadcast warm-up that lets the
// switches learn every address.
//
// Series:  ideal-dgram, vmrt-dgram, vde_switch (datagram ports: vde's only kind),
//          ideal-stream, vmrt-stream (4-byte big-endian length-prefixed frames).
// Columns: frames/s delivered in the window; Gbit/s of Ethernet frames (header + payload, no
//          preamble, FCS or length prefix); loss = 1 - delivered / offered (frames the switch took
//          in and never delivered); offered frames/s (what the kernel accepted from the senders).
// Goals (issue 5): vmrt dgram >= 1.5x vde_switch with no more loss; vmrt stream >= 10 M
// frames/s at 64 B.
//
// Usage: switch_throughput [--duration SECONDS] [--quick] [--json FILE] [--generator-threads 1|2]
#include "ideal_relay.hpp"
#include "traffic.hpp"
#include "vde_switch_child.hpp"
#include "vmrt_switch_run.hpp"

#include <boost/json.hpp>

#include <sched.h>
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace swbench;
namespace json = boost::json;

std::atomic<bool> interrupted{false};
extern "C" void on_signal(int) { interrupted = true; }

enum class series { ideal_dgram, vmrt_dgram, vde_switch, ideal_stream, vmrt_stream };
constexpr series all_series[] = {series::ideal_dgram, series::vmrt_dgram, series::vde_switch,
                                 series::ideal_stream, series::vmrt_stream};

const char* name_of(series s) {
    switch (s) {
    case series::ideal_dgram:
        return "ideal relay dgram";
    case series::vmrt_dgram:
        return "vmrt dgram";
    case series::vde_switch:
        return "vde_switch";
    case series::ideal_stream:
        return "ideal relay stream";
    case series::vmrt_stream:
        return "vmrt stream";
    }
    return "?";
}
const char* key_of(series s) {
    switch (s) {
    case series::ideal_dgram:
        return "ideal_dgram";
    case series::vmrt_dgram:
        return "vmrt_dgram";
    case series::vde_switch:
        return "vde_switch";
    case series::ideal_stream:
        return "ideal_stream";
    case series::vmrt_stream:
        return "vmrt_stream";
    }
    return "?";
}
framing framing_of(series s) {
    return s == series::ideal_stream || s == series::vmrt_stream ? framing::stream : framing::dgram;
}

struct options {
    double duration = 2.0;
    bool quick = false;
    std::optional<std::string> json_file;
    int generator_threads = 2;
};

struct row {
    series s;
    std::size_t frame_bytes, ports;
    traffic_result r;
    std::optional<switch_drops> drops;  // vmrt only: where its loss went
    double gbit() const { return r.frames_per_second() * static_cast<double>(frame_bytes) * 8 / 1e9; }
};

[[noreturn]] void usage(const char* why) {
    std::fprintf(
        stderr,
        "switch_throughput: %s\nusage: switch_throughput [--duration SECONDS] [--quick] [--json FILE] "
        "[--generator-threads 1|2]\n",
        why);
    std::exit(2);
}

options parse(int argc, char** argv) {
    options o;
    bool duration_given = false;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) usage(("missing value after " + a).c_str());
            return argv[++i];
        };
        if (a == "--duration") {
            char* end = nullptr;
            auto v = value();
            o.duration = std::strtod(v.c_str(), &end);
            if (*end != '\0' || !(o.duration > 0) || o.duration > 600)
                usage("--duration takes seconds in (0, 600]");
            duration_given = true;
        } else if (a == "--quick") {
            o.quick = true;
        } else if (a == "--json") {
            o.json_file = value();
        } else if (a == "--generator-threads") {
            auto v = value();
            if (v != "1" && v != "2") usage("--generator-threads takes 1 or 2");
            o.generator_threads = std::stoi(v);
        } else {
            usage(("unknown argument " + a).c_str());
        }
    }
    if (o.quick && !duration_given) o.duration = 0.2;
    return o;
}

std::filesystem::path temp_base() {
    const char* t = std::getenv("TMPDIR");
    std::filesystem::path p = t && *t ? t : "/tmp";
    std::filesystem::create_directories(p);
    return p;
}

row run_one(series s, std::size_t frame_bytes, std::size_t ports, const options& o) {
    traffic_options t;
    t.kind = framing_of(s);
    t.frame_bytes = frame_bytes;
    t.window = std::chrono::duration<double>(o.duration);
    t.threads = o.generator_threads;
    row out{s, frame_bytes, ports, {}, std::nullopt};
    switch (s) {
    case series::ideal_dgram:
    case series::ideal_stream: {
        ideal_relay relay(t.kind, ports);
        t.warm_up = false;  // nothing to learn, and it forwards i -> i+1 only
        out.r = run_traffic(relay.endpoints(), t, interrupted);
        relay.stop();
        break;
    }
    case series::vmrt_dgram:
    case series::vmrt_stream: {
#ifdef SWBENCH_NO_VMRT
        throw std::runtime_error("TEMPORARY build without vmrt's switch");
#else
        vmrt_switch_run sw(t.kind, ports);
        out.r = run_traffic(sw.endpoints(), t, interrupted);
        out.drops = sw.drops();
        break;
#endif
    }
    case series::vde_switch: {
        vde_switch_child vde(temp_base());
        vde_connections conns(vde.control_dir(), ports);
        out.r = run_traffic(conns.data_fds(), t, interrupted);
        break;
    }
    }
    return out;
}

int online_cores() {
    cpu_set_t set;
    CPU_ZERO(&set);
    return sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : -1;
}

std::string drops_text(const row& r) {
    if (!r.drops) return "";
#ifdef SWBENCH_NO_VMRT
    return "";
#endif
    std::string s;
    for (std::size_t i = 0; i < r.drops->by_reason.size(); ++i)
        if (r.drops->by_reason[i])
            s += std::string(s.empty() ? "" : ", ") +
                 std::string(vmrt::net::to_string(static_cast<vmrt::net::drop_reason>(i))) + " " +
                 std::to_string(r.drops->by_reason[i]);
    return s.empty() ? "no drops" : "drops: " + s;
}

void print_table(const std::vector<row>& rows) {
    std::printf("\n%-19s %6s %5s %13s %8s %8s %13s  %s\n", "series", "frame", "ports", "frames/s", "Gbit/s",
                "loss%", "offered/s", "notes");
    for (auto& r : rows) {
        std::string notes = drops_text(r);
        if (r.r.misdelivered)
            notes += (notes.empty() ? "" : "; ") + std::to_string(r.r.misdelivered) + " misdelivered";
        std::printf("%-19s %4zu B %5zu %13.0f %8.3f %8.3f %13.0f  %s\n", name_of(r.s), r.frame_bytes, r.ports,
                    r.r.frames_per_second(), r.gbit(), 100 * r.r.loss(), r.r.offered_per_second(),
                    notes.c_str());
    }
}

const row* find(const std::vector<row>& rows, series s, std::size_t frame, std::size_t ports) {
    for (auto& r : rows)
        if (r.s == s && r.frame_bytes == frame && r.ports == ports) return &r;
    return nullptr;
}

json::array print_ratios(const std::vector<row>& rows, const std::vector<std::size_t>& frames,
                         const std::vector<std::size_t>& port_counts) {
    constexpr double stream_goal = 10e6;
    json::array out;
    std::printf("\nratios (frames/s)\n");
    for (auto f : frames)
        for (auto p : port_counts) {
            auto* vd = find(rows, series::vmrt_dgram, f, p);
            auto* vs = find(rows, series::vmrt_stream, f, p);
            auto* vde = find(rows, series::vde_switch, f, p);
            auto* id = find(rows, series::ideal_dgram, f, p);
            auto* is = find(rows, series::ideal_stream, f, p);
            if (!vd || !vs || !vde || !id || !is) continue;
            auto fps = [](const row* r) {
                return r->r.frames_per_second();
            };
            double dgram_vs_vde = fps(vd) / fps(vde);
            bool dgram_met = dgram_vs_vde >= 1.5 && vd->r.loss() <= vde->r.loss();
            std::printf("%4zu B, %zu ports: vmrt dgram / vde_switch = %.2fx (goal >= 1.5x, loss %.3f%% vs "
                        "%.3f%%: %s)\n",
                        f, p, dgram_vs_vde, 100 * vd->r.loss(), 100 * vde->r.loss(),
                        dgram_met ? "met" : "NOT met");
            json::object o{{"frame_bytes", f},
                           {"ports", p},
                           {"vmrt_dgram_over_vde_switch", dgram_vs_vde},
                           {"dgram_goal_met", dgram_met},
                           {"vmrt_dgram_over_ideal_dgram", fps(vd) / fps(id)},
                           {"vde_switch_over_ideal_dgram", fps(vde) / fps(id)},
                           {"vmrt_stream_over_ideal_stream", fps(vs) / fps(is)}};
            if (f == 64) {
                bool met = fps(vs) >= stream_goal;
                std::printf("%17s vmrt stream = %.2f M frames/s = %.2fx the 10 M goal (%s)\n", "",
                            fps(vs) / 1e6, fps(vs) / stream_goal, met ? "met" : "NOT met");
                o["vmrt_stream_over_10M_goal"] = fps(vs) / stream_goal;
                o["stream_goal_met"] = met;
            }
            std::printf("%17s vs ideal relay: vmrt dgram %.2f, vde_switch %.2f, vmrt stream %.2f\n", "",
                        fps(vd) / fps(id), fps(vde) / fps(id), fps(vs) / fps(is));
            out.push_back(std::move(o));
        }
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    auto opts = parse(argc, argv);
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGINT, &sa, nullptr);
    ::sigaction(SIGTERM, &sa, nullptr);
    ::signal(SIGPIPE, SIG_IGN);

    const std::vector<std::size_t> frames{64, 1500}, port_counts{2, 8};
    int cores = online_cores();
    std::printf("switch_throughput: %.2f s per series, %d core(s) available (%u hardware threads), "
                "load generator: %d thread(s)%s\n",
                opts.duration, cores, std::thread::hardware_concurrency(), opts.generator_threads,
                opts.quick ? ", quick run (numbers are not meaningful)" : "");
    std::printf("every switch (vmrt's io_context thread, vde_switch's process, the relay thread) and the "
                "generator share these cores\n");
    std::fflush(stdout);

    std::vector<row> rows;
    try {
        for (auto f : frames)
            for (auto p : port_counts)
                for (auto s : all_series) {
                    if (interrupted) break;
#ifdef SWBENCH_NO_VMRT
                    if (s == series::vmrt_dgram || s == series::vmrt_stream) continue;
#endif
                    rows.push_back(run_one(s, f, p, opts));
                    std::fprintf(stderr, "  %-19s %4zu B %zu ports: %.0f frames/s\n", name_of(s), f, p,
                                 rows.back().r.frames_per_second());
                }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "switch_throughput: %s\n", e.what());
        return 1;
    }
    if (interrupted) {
        std::fprintf(stderr, "switch_throughput: interrupted\n");
        return 130;
    }

    print_table(rows);
    auto ratios = print_ratios(rows, frames, port_counts);
    std::printf(
        "\nloss: frames the switch accepted and never delivered; a full ingress socket slows the sender "
        "(offered/s) instead.\n");

    if (opts.json_file) {
        json::array results;
        for (auto& r : rows) {
            json::object o{{"series", key_of(r.s)},
                           {"framing", std::string(to_string(framing_of(r.s)))},
                           {"frame_bytes", r.frame_bytes},
                           {"ports", r.ports},
                           {"frames_per_second", r.r.frames_per_second()},
                           {"gbit_per_second", r.gbit()},
                           {"loss", r.r.loss()},
                           {"offered_per_second", r.r.offered_per_second()},
                           {"offered", r.r.offered},
                           {"delivered", r.r.delivered},
                           {"misdelivered", r.r.misdelivered},
                           {"window_seconds", r.r.window_seconds}};
#ifndef SWBENCH_NO_VMRT
            if (r.drops) {
                json::object d;
                for (std::size_t i = 0; i < r.drops->by_reason.size(); ++i)
                    d[vmrt::net::to_string(static_cast<vmrt::net::drop_reason>(i))] = r.drops->by_reason[i];
                o["switch_drops"] = std::move(d);
            }
#endif
            results.push_back(std::move(o));
        }
        json::object doc{{"bench", "switch_throughput"},
                         {"duration_seconds", opts.duration},
                         {"quick", opts.quick},
                         {"cores", cores},
                         {"generator_threads", opts.generator_threads},
                         {"results", std::move(results)},
                         {"ratios", std::move(ratios)}};
        std::ofstream out(*opts.json_file);
        out << json::serialize(doc) << '\n';
        if (!out) {
            std::fprintf(stderr, "switch_throughput: cannot write %s\n", opts.json_file->c_str());
            return 1;
        }
    }
    return 0;
}
