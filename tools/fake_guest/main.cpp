// vmrt-fake-guest: a stand-in for "VMM + guest" used by vmrt's fake backend, its tests, its demo
// and bench/ready_latency. It is a real process driven by real signals, so the manager's process
// supervision, readiness tailing and stop escalation are exercised for real.
//
// Usage (built by the fake driver from a vm_spec):
//   vmrt-fake-guest --name N --serial FILE --kernel FILE --cpus N --memory-mib N
//                   [--initramfs FILE] [--cmdline STR] [--disk PATH:ro|rw]...
//
// Console (the serial FILE, appended): a kernel banner, the command line, what it was given, then
// `VMRS_READY <ip>` (ip from vmrs.ip=ADDR[/PREFIX] on the command line, else "-").
// Signals: SIGUSR1 = ACPI power button (prints "reboot: Power down", exits fake.exit_code, default 0);
// SIGTERM/SIGINT = VMM termination (exits 0, as QEMU does).
// Behaviour knobs on the kernel command line (all optional):
//   fake.boot_ms=N        delay before the ready line (default 20)
//   fake.no_ready         never print the ready line
//   fake.split_ready      write the ready line in two writes 30 ms apart
//   fake.ready_stamp      print "fake: ready-write-ns <CLOCK_MONOTONIC ns>" right before the ready line
//   fake.crash_ms=N       N ms after start: print a kernel panic and die by SIGABRT
//   fake.crash=exit:C     ... or instead exit with code C
//   fake.reboot_ms=N      N ms after start: print a new kernel banner, then boot again
//   fake.ignore_powerdown the power button does nothing
//   fake.ignore_term      SIGTERM and SIGINT do nothing (only SIGKILL ends it)
//   fake.powerdown_ms=N   time the guest takes to power off after the button (default 10)
//   fake.exit_code=C      exit code after a power-off (default 0)
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace {

struct options {
    std::string name, serial, kernel, initramfs, cmdline;
    std::string cpus = "1", memory = "512";
    std::vector<std::string> disks;
    std::map<std::string, std::string> params;  // key[=value] words of the kernel command line
};

int console_fd = -1;

std::int64_t now_ms() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

void console(const std::string& line) {
    std::string text = line + "\n";
    // One write per line, as a UART driver would flush a line; errors are not recoverable here.
    if (::write(console_fd, text.data(), text.size()) < 0) std::perror("fake-vmm: console write");
}

[[noreturn]] void die(const std::string& message) {
    std::fprintf(stderr, "fake-vmm: %s\n", message.c_str());
    std::exit(1);
}

options parse(int argc, char** argv) {
    options o;
    for (int i = 1; i < argc; ++i) {
        std::string_view a = argv[i];
        if (i + 1 >= argc) die("missing value after " + std::string(a));
        std::string v = argv[++i];
        if (a == "--name")
            o.name = v;
        else if (a == "--serial")
            o.serial = v;
        else if (a == "--kernel")
            o.kernel = v;
        else if (a == "--initramfs")
            o.initramfs = v;
        else if (a == "--cmdline")
            o.cmdline = v;
        else if (a == "--cpus")
            o.cpus = v;
        else if (a == "--memory-mib")
            o.memory = v;
        else if (a == "--disk")
            o.disks.push_back(v);
        else
            die("unknown option " + std::string(a));
    }
    if (o.serial.empty() || o.kernel.empty()) die("--serial and --kernel are required");
    std::size_t pos = 0;
    while (pos < o.cmdline.size()) {
        auto end = o.cmdline.find(' ', pos);
        if (end == std::string::npos) end = o.cmdline.size();
        std::string word = o.cmdline.substr(pos, end - pos);
        if (!word.empty()) {
            auto eq = word.find('=');
            o.params[word.substr(0, eq)] = eq == std::string::npos ? "" : word.substr(eq + 1);
        }
        pos = end + 1;
    }
    return o;
}

long param(const options& o, const std::string& key, long fallback) {
    auto it = o.params.find(key);
    return it == o.params.end() || it->second.empty() ? fallback
                                                      : std::strtol(it->second.c_str(), nullptr, 10);
}
bool flag(const options& o, const std::string& key) { return o.params.count(key) != 0; }

std::uint64_t file_size_or_die(const std::string& path, bool writable) {
    int fd = ::open(path.c_str(), (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC);
    if (fd < 0) die("cannot open " + path + ": " + std::strerror(errno));
    struct stat st {};
    ::fstat(fd, &st);
    ::close(fd);
    return static_cast<std::uint64_t>(st.st_size);
}

void boot(const options& o) {
    console("Linux version 6.1.0-vmrt-fake (vmrt fake guest) #1 SMP");
    console("Command line: " + o.cmdline);
    console("fake: " + o.cpus + " vCPUs, " + o.memory + " MiB, kernel " + o.kernel + " (" +
            std::to_string(file_size_or_die(o.kernel, false)) + " bytes)");
    if (!o.initramfs.empty())
        console("fake: initramfs " + o.initramfs + " (" +
                std::to_string(file_size_or_die(o.initramfs, false)) + " bytes)");
    char letter = 'a';
    for (auto& d : o.disks) {
        auto colon = d.rfind(':');
        std::string path = d.substr(0, colon), mode = d.substr(colon + 1);
        auto size = file_size_or_die(path, mode == "rw");
        console(std::string("fake: vd") + letter++ + ": " + path + " (" + mode + ", " + std::to_string(size) +
                " bytes)");
    }
}

void print_ready(const options& o) {
    std::string ip = "-";
    if (auto it = o.params.find("vmrs.ip"); it != o.params.end() && !it->second.empty())
        ip = it->second.substr(0, it->second.find('/'));
    if (flag(o, "fake.ready_stamp")) {
        timespec ts{};
        clock_gettime(CLOCK_MONOTONIC, &ts);
        console("fake: ready-write-ns " +
                std::to_string(static_cast<std::int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec));
    }
    std::string line = "VMRS_READY " + ip + "\n";
    if (flag(o, "fake.split_ready")) {
        auto half = line.size() / 2;
        if (::write(console_fd, line.data(), half) < 0) std::perror("fake-vmm: console write");
        timespec gap{0, 30 * 1000000};
        nanosleep(&gap, nullptr);
        if (::write(console_fd, line.data() + half, line.size() - half) < 0)
            std::perror("fake-vmm: console write");
    } else if (::write(console_fd, line.data(), line.size()) < 0) {
        std::perror("fake-vmm: console write");
    }
}

// Waits for one of the blocked signals for at most `ms` (forever if negative); 0 on timeout.
int wait_signal(const sigset_t& set, std::int64_t ms) {
    if (ms < 0) {
        int sig = 0;
        sigwait(&set, &sig);
        return sig;
    }
    timespec ts{static_cast<time_t>(ms / 1000), static_cast<long>((ms % 1000) * 1000000)};
    int sig = sigtimedwait(&set, nullptr, &ts);
    return sig > 0 ? sig : 0;
}

}  // namespace

int main(int argc, char** argv) {
    options o = parse(argc, argv);
    console_fd = ::open(o.serial.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (console_fd < 0) die("cannot open serial log " + o.serial + ": " + std::strerror(errno));

    sigset_t set;
    sigemptyset(&set);
    for (int s : {SIGUSR1, SIGTERM, SIGINT}) sigaddset(&set, s);
    sigprocmask(SIG_BLOCK, &set, nullptr);

    const std::int64_t start = now_ms();
    const long boot_ms = param(o, "fake.boot_ms", 20);
    const long crash_ms = param(o, "fake.crash_ms", -1);
    long reboot_ms = param(o, "fake.reboot_ms", -1);
    boot(o);
    std::int64_t ready_at = flag(o, "fake.no_ready") ? -1 : start + boot_ms;

    for (;;) {
        // The next timed action: ready line, crash or reboot.
        std::int64_t next = -1;
        for (std::int64_t t :
             {ready_at, crash_ms >= 0 ? start + crash_ms : -1, reboot_ms >= 0 ? start + reboot_ms : -1})
            if (t >= 0 && (next < 0 || t < next)) next = t;
        const std::int64_t now = now_ms();
        int sig = wait_signal(set, next < 0 ? -1 : std::max<std::int64_t>(0, next - now));
        if (sig == SIGUSR1) {
            if (flag(o, "fake.ignore_powerdown")) continue;
            console("ACPI: Power Button pressed");
            timespec t{0, param(o, "fake.powerdown_ms", 10) * 1000000};
            nanosleep(&t, nullptr);
            console("reboot: Power down");
            return static_cast<int>(param(o, "fake.exit_code", 0));
        }
        if (sig == SIGTERM || sig == SIGINT) {
            if (flag(o, "fake.ignore_term")) continue;
            std::fprintf(stderr, "fake-vmm: terminating on signal %d\n", sig);
            return 0;
        }
        const std::int64_t t = now_ms();
        if (crash_ms >= 0 && t >= start + crash_ms) {
            console("Kernel panic - not syncing: fake crash requested");
            auto how = o.params["fake.crash"];
            if (how.rfind("exit:", 0) == 0) return std::atoi(how.c_str() + 5);
            // A crashing VMM, without leaving a core file behind in the caller's directory.
            rlimit no_core{0, 0};
            setrlimit(RLIMIT_CORE, &no_core);
            std::signal(SIGABRT, SIG_DFL);
            std::abort();
        }
        if (reboot_ms >= 0 && t >= start + reboot_ms) {
            reboot_ms = -1;
            console("reboot: Restarting system");
            boot(o);
            ready_at = flag(o, "fake.no_ready") ? -1 : t + boot_ms;
            continue;
        }
        if (ready_at >= 0 && t >= ready_at) {
            ready_at = -1;
            print_ready(o);
        }
    }
}
