// Where the time goes: CPU time of one thread (or of a single-threaded process) from /proc, user
// and system apart, so the bench can show whether a forwarder spends its core in its own code or
// in the kernel's socket paths. Resolution: one clock tick (10 ms at USER_HZ 100).
#pragma once

#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>

namespace swbench {

struct cpu_times {
    double user = 0, sys = 0;  ///< seconds
    cpu_times operator-(const cpu_times& o) const { return {user - o.user, sys - o.sys}; }
    cpu_times& operator+=(const cpu_times& o) {
        user += o.user;
        sys += o.sys;
        return *this;
    }
};

/// A thread to account: /proc/<pid>/task/<tid>.
struct thread_ref {
    pid_t pid = 0, tid = 0;
};

inline pid_t current_tid() { return static_cast<pid_t>(::syscall(SYS_gettid)); }

/// utime and stime (fields 14 and 15 of stat) of a thread; nothing if it is gone.
inline std::optional<cpu_times> read_cpu(thread_ref t) {
    std::ifstream in("/proc/" + std::to_string(t.pid) + "/task/" + std::to_string(t.tid) + "/stat");
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
    return cpu_times{static_cast<double>(utime) / hz, static_cast<double>(stime) / hz};
}

}  // namespace swbench
