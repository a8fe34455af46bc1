// Where the time goes: CPU time of one thread (or of a single-threaded process) from /proc, user
// and system apart, so the bench can show whether a forwarder spends its core in its own code or
// in the kernel's socket paths. The total is the scheduler's exact on-CPU time (schedstat, ns);
// the user/system split comes from stat's clock ticks (10 ms each), which are sampled and can
// lag, so only their proportion is used.
#pragma once

#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include <fstream>
#include <optional>
#include <sstream>
#include <string>

namespace swbench {

struct cpu_times {
    double user = 0, sys = 0;  ///< seconds
};

/// A thread to account: /proc/<pid>/task/<tid>.
struct thread_ref {
    pid_t pid = 0, tid = 0;
};

inline pid_t current_tid() { return static_cast<pid_t>(::syscall(SYS_gettid)); }

/// A sample of a thread's CPU time; nothing if it is gone.
struct cpu_sample {
    double on_cpu = 0;         ///< seconds, exact
    double user = 0, sys = 0;  ///< seconds, in clock ticks
};

inline std::optional<cpu_sample> read_cpu(thread_ref t) {
    std::string dir = "/proc/" + std::to_string(t.pid) + "/task/" + std::to_string(t.tid);
    std::ifstream sched(dir + "/schedstat");
    unsigned long long on_cpu_ns = 0;
    if (!(sched >> on_cpu_ns)) return std::nullopt;
    std::ifstream in(dir + "/stat");
    std::string line;
    if (!std::getline(in, line)) return std::nullopt;
    // The command name (field 2) may hold spaces: fields are counted after its closing parenthesis.
    auto close = line.rfind(')');
    if (close == std::string::npos) return std::nullopt;
    std::istringstream rest(line.substr(close + 2));
    std::string field;
    unsigned long long utime = 0, stime = 0;
    for (int i = 3; i <= 15 && rest >> field; ++i) {
        if (i == 14) utime = std::stoull(field);
        if (i == 15) stime = std::stoull(field);
    }
    static const double hz = static_cast<double>(::sysconf(_SC_CLK_TCK));
    return cpu_sample{static_cast<double>(on_cpu_ns) / 1e9, static_cast<double>(utime) / hz,
                      static_cast<double>(stime) / hz};
}

/// CPU time between two samples of the same threads: the exact total, split in the proportion
/// of the ticks (all system time if no tick fell in between).
inline cpu_times cpu_between(const cpu_sample& before, const cpu_sample& after) {
    double total = after.on_cpu - before.on_cpu;
    double u = after.user - before.user, k = after.sys - before.sys;
    double user_share = u + k > 0 ? u / (u + k) : 0.0;
    return {total * user_share, total * (1 - user_share)};
}

}  // namespace swbench
