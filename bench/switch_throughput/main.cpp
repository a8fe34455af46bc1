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
//                          [--repeat N]          (N rounds; each row shows its median run)
//                          [--series NAME,...]   (a subset, for investigating one series)
#include "ideal_relay.hpp"
#include "traffic.hpp"
#include "vde_switch_child.hpp"
#include "vmrt_switch_run.hpp"

#include <boost/json.hpp>

#include <sched.h>
#include <signal.h>

#include <algorithm>
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
    // 1: the generator and the forwarder get one of the 2 cores each; with 2 generator threads, three
    // busy threads shared the 2 cores and every forwarder got less than one.
    int generator_threads = 1;
    std::vector<series> only;  // empty: every series
    int repeat = 1;            // runs per row; the row shows the median run (by frames/s)
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
        "[--generator-threads 1|2]\n       [--repeat N] [--series "
        "ideal_dgram,vmrt_dgram,vde_switch,ideal_stream,vmrt_stream]\n",
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
        } else if (a == "--series") {
            auto v = value();
            for (std::size_t at = 0; at <= v.size();) {
                auto comma = std::min(v.find(',', at), v.size());
                auto name = v.substr(at, comma - at);
                bool known = false;
                for (auto s : all_series)
                    if (name == key_of(s)) {
                        o.only.push_back(s);
                        known = true;
                    }
                if (!known) usage(("unknown series " + name).c_str());
                at = comma + 1;
            }
        } else if (a == "--repeat") {
            auto v = value();
            char* end = nullptr;
            long n = std::strtol(v.c_str(), &end, 10);
            if (*end != '\0' || n < 1 || n > 99) usage("--repeat takes a count in [1, 99]");
            o.repeat = static_cast<int>(n);
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
        t.forwarder = {relay.forwarder()};
        t.warm_up = false;  // nothing to learn, and it forwards i -> i+1 only
        out.r = run_traffic(relay.endpoints(), t, interrupted);
        relay.stop();
        break;
    }
    case series::vmrt_dgram:
    case series::vmrt_stream: {
        vmrt_switch_run sw(t.kind, ports);
        t.forwarder = {sw.forwarder()};
        out.r = run_traffic(sw.endpoints(), t, interrupted);
        out.drops = sw.drops();
        break;
    }
    case series::vde_switch: {
        vde_switch_child vde(temp_base());
        vde_connections conns(vde.control_dir(), ports);
        t.forwarder = {{vde.pid(), vde.pid()}};
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
    std::string s;
    for (std::size_t i = 0; i < r.drops->by_reason.size(); ++i)
        if (r.drops->by_reason[i])
            s += std::string(s.empty() ? "" : ", ") +
                 std::string(vmrt::net::to_string(static_cast<vmrt::net::drop_reason>(i))) + " " +
                 std::to_string(r.drops->by_reason[i]);
    return s.empty() ? "no drops" : "drops: " + s;
}

double ns_per_frame(const row& r) {
    double fwd = r.r.forwarder_cpu.user + r.r.forwarder_cpu.sys;
    return r.r.delivered_in_window ? 1e9 * fwd / static_cast<double>(r.r.delivered_in_window) : 0;
}

std::string cpu_text(const cpu_times& c, double seconds) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%3.0f+%-3.0f", 100 * c.user / seconds, 100 * c.sys / seconds);
    return buf;
}

void print_table(const std::vector<row>& rows) {
    std::printf("\n%-19s %6s %5s %13s %8s %8s %13s  %-9s %8s  %-9s  %s\n", "series", "frame", "ports",
                "frames/s", "Gbit/s", "loss%", "offered/s", "fwd cpu%", "fwd ns/f", "gen cpu%", "notes");
    for (auto& r : rows) {
        std::string notes = drops_text(r);
        if (r.r.offered == 0)
            notes += (notes.empty() ? "" : "; ") + std::string("nothing offered: no CPU for the generator");
        if (r.r.misdelivered)
            notes += (notes.empty() ? "" : "; ") + std::to_string(r.r.misdelivered) + " misdelivered";
        double fwd = r.r.forwarder_cpu.user + r.r.forwarder_cpu.sys;
        double ns_per_frame =
            r.r.delivered_in_window ? 1e9 * fwd / static_cast<double>(r.r.delivered_in_window) : 0;
        std::printf("%-19s %4zu B %5zu %13.0f %8.3f %8.3f %13.0f  %-9s %8.0f  %-9s  %s\n", name_of(r.s),
                    r.frame_bytes, r.ports, r.r.frames_per_second(), r.gbit(), 100 * r.r.loss(),
                    r.r.offered_per_second(), cpu_text(r.r.forwarder_cpu, r.r.window_seconds).c_str(),
                    ns_per_frame, cpu_text(r.r.generator_cpu, r.r.window_seconds).c_str(), notes.c_str());
    }
    std::printf(
        "fwd cpu%% / gen cpu%%: user+system CPU of the forwarder (switch thread, vde_switch, relay thread) "
        "and "
        "of the load generator's threads over the window, 100 = one core; fwd ns/f: forwarder CPU per "
        "delivered frame\n");
}

const row* find(const std::vector<row>& rows, series s, std::size_t frame, std::size_t ports) {
    for (auto& r : rows)
        if (r.s == s && r.frame_bytes == frame && r.ports == ports) return &r;
    return nullptr;
}

// a / b, or nothing when b measured nothing (a starved quick run).
std::optional<double> ratio(double a, double b) {
    if (!(b > 0)) return std::nullopt;
    return a / b;
}
std::string text(std::optional<double> r, const char* suffix = "") {
    if (!r) return "n/a";
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f%s", *r, suffix);
    return buf;
}
json::value value(std::optional<double> r) { return r ? json::value(*r) : json::value(nullptr); }

std::string format(const char* fmt, auto... args) {
    char buf[256];
    std::snprintf(buf, sizeof buf, fmt, args...);
    return buf;
}

json::array print_ratios(const std::vector<row>& rows, const std::vector<std::size_t>& frames,
                         const std::vector<std::size_t>& port_counts) {
    constexpr double stream_goal = 10e6;
    json::array out;
    std::printf("\nratios (of frames/s unless said otherwise)\n");
    for (auto f : frames)
        for (auto p : port_counts) {
            auto* vd = find(rows, series::vmrt_dgram, f, p);
            auto* vs = find(rows, series::vmrt_stream, f, p);
            auto* vde = find(rows, series::vde_switch, f, p);
            auto* id = find(rows, series::ideal_dgram, f, p);
            auto* is = find(rows, series::ideal_stream, f, p);
            auto fps = [](const row* r) {
                return r->r.frames_per_second();
            };
            json::object o{{"frame_bytes", f}, {"ports", p}};
            std::vector<std::string> lines;
            if (vd && vde) {
                auto r = ratio(fps(vd), fps(vde));
                bool met = r && *r >= 1.5 && vd->r.loss() <= vde->r.loss();
                lines.push_back(format(
                    "vmrt dgram / vde_switch = %s (goal >= 1.5x with no more loss; loss %.3f%% "
                    "vs %.3f%%: %s)",
                    text(r, "x").c_str(), 100 * vd->r.loss(), 100 * vde->r.loss(), met ? "met" : "NOT met"));
                o["vmrt_dgram_over_vde_switch"] = value(r);
                o["dgram_goal_met"] = met;
                // Frames/s follow the CPU share each forwarder gets on a shared machine; CPU time
                // per delivered frame does not, so it is shown too.
                auto c = ratio(ns_per_frame(*vde), ns_per_frame(*vd));
                lines.push_back("forwarder CPU per frame: vde_switch / vmrt dgram = " + text(c, "x"));
                o["vde_switch_cpu_per_frame_over_vmrt_dgram"] = value(c);
            }
            if (vs && f == 64) {
                bool met = fps(vs) >= stream_goal;
                lines.push_back(format("vmrt stream = %.2f M frames/s = %.2fx the 10 M goal (%s)",
                                       fps(vs) / 1e6, fps(vs) / stream_goal, met ? "met" : "NOT met"));
                o["vmrt_stream_over_10M_goal"] = fps(vs) / stream_goal;
                o["stream_goal_met"] = met;
            }
            std::string vs_ideal;
            auto add = [&](const char* what, std::optional<double> r, const char* key) {
                vs_ideal += std::string(vs_ideal.empty() ? "" : ", ") + what + " " + text(r);
                o[key] = value(r);
            };
            if (vd && id) add("vmrt dgram", ratio(fps(vd), fps(id)), "vmrt_dgram_over_ideal_dgram");
            if (vde && id) add("vde_switch", ratio(fps(vde), fps(id)), "vde_switch_over_ideal_dgram");
            if (vs && is) add("vmrt stream", ratio(fps(vs), fps(is)), "vmrt_stream_over_ideal_stream");
            if (!vs_ideal.empty()) lines.push_back("of the ideal relay (same framing): " + vs_ideal);
            for (std::size_t i = 0; i < lines.size(); ++i)
                std::printf("%s %s\n",
                            i == 0 ? format("%4zu B, %zu ports:", f, p).c_str() : "                ",
                            lines[i].c_str());
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
    std::printf("switch_throughput: %.2f s per series, %d round(s) (median shown), %d core(s) available (%u "
                "hardware threads), load generator: %d thread(s)%s\n",
                opts.duration, opts.repeat, cores, std::thread::hardware_concurrency(),
                opts.generator_threads, opts.quick ? ", quick run (numbers are not meaningful)" : "");
    std::printf("every switch (vmrt's io_context thread, vde_switch's process, the relay thread) and the "
                "generator share these cores\n");
    std::fflush(stdout);

    // Rounds run every row once, in order, so that a change of load on this shared machine hits
    // every series alike; each row then reports its median run.
    std::vector<std::vector<row>> runs;  // per row, one entry per round
    try {
        for (int round = 0; round < opts.repeat && !interrupted; ++round) {
            std::size_t at = 0;
            for (auto f : frames)
                for (auto p : port_counts)
                    for (auto s : all_series) {
                        if (interrupted) break;
                        if (!opts.only.empty() &&
                            std::find(opts.only.begin(), opts.only.end(), s) == opts.only.end())
                            continue;
                        if (runs.size() <= at) runs.emplace_back();
                        try {
                            runs[at++].push_back(run_one(s, f, p, opts));
                        } catch (const std::exception& e) {
                            throw std::runtime_error(std::string(name_of(s)) + ", " + std::to_string(f) +
                                                     " B, " + std::to_string(p) + " ports: " + e.what());
                        }
                        std::fprintf(stderr, "  round %d: %-19s %4zu B %zu ports: %.0f frames/s\n", round + 1,
                                     name_of(s), f, p, runs[at - 1].back().r.frames_per_second());
                    }
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "switch_throughput: %s\n", e.what());
        return 1;
    }
    std::vector<row> rows;
    for (auto& r : runs) {
        std::sort(r.begin(), r.end(), [](const row& a, const row& b) {
            return a.r.frames_per_second() < b.r.frames_per_second();
        });
        rows.push_back(r[r.size() / 2]);
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
                           {"window_seconds", r.r.window_seconds},
                           {"forwarder_cpu_user_seconds", r.r.forwarder_cpu.user},
                           {"forwarder_cpu_system_seconds", r.r.forwarder_cpu.sys},
                           {"generator_cpu_user_seconds", r.r.generator_cpu.user},
                           {"generator_cpu_system_seconds", r.r.generator_cpu.sys}};
            if (r.drops) {
                json::object d;
                for (std::size_t i = 0; i < r.drops->by_reason.size(); ++i)
                    d[vmrt::net::to_string(static_cast<vmrt::net::drop_reason>(i))] = r.drops->by_reason[i];
                o["switch_drops"] = std::move(d);
            }
            results.push_back(std::move(o));
        }
        json::object doc{{"bench", "switch_throughput"},
                         {"duration_seconds", opts.duration},
                         {"quick", opts.quick},
                         {"rounds", opts.repeat},
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
