// vmrt-test-child: a predictable child process for the process tests (plain C++, no Boost).
//
// Usage: vmrt-test-child MODE [ARGS...]
//   exit CODE               exit with CODE
//   sleep MS                sleep MS milliseconds, then exit 0
//   signal-self SIG         kill itself with signal SIG (default disposition)
//   ignore-term             ignore SIGTERM and SIGINT, announce "ready", sleep until killed
//   trap-term CODE          on SIGTERM exit with CODE; announce "ready", sleep until then
//   print-args              print argv[2..] to stdout, one per line
//   print-env NAME          print the value of NAME (exit 1 if it is unset)
//   print-cwd               print the working directory
//   write-stderr TEXT       write TEXT and a newline to stderr
//   write-both OUT ERR      write OUT to stdout and ERR to stderr (each with a newline)
//   fork-grandchild         fork a grandchild (same process group) that sleeps until killed,
//                           announce its pid, then sleep until killed
//   check-fd N              exit 0 if fd N is open, 1 if not
//   print-ppid-then-sleep   announce the parent's pid, then sleep until killed
//
// "Announce" means: print the line to stdout and, if the environment variable
// VMRT_CHILD_NOTIFY_FD names a descriptor, write it there too and close it, so that a test can
// wait for the child to be ready without polling.
// "Until killed" is bounded (10 minutes) so that a leaked helper cannot live forever.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

namespace {

constexpr auto forever = std::chrono::minutes(10);

void write_all(int fd, const std::string& text) {
    const char* p = text.data();
    std::size_t left = text.size();
    while (left > 0) {
        ssize_t n = ::write(fd, p, left);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;
        p += n;
        left -= static_cast<std::size_t>(n);
    }
}

int notify_fd() {
    const char* fd_text = std::getenv("VMRT_CHILD_NOTIFY_FD");
    return fd_text ? std::atoi(fd_text) : -1;
}

void announce(const std::string& line) {
    write_all(1, line + "\n");
    if (int fd = notify_fd(); fd >= 0) {
        write_all(fd, line + "\n");
        ::close(fd);
    }
}

[[noreturn]] void sleep_until_killed() {
    std::this_thread::sleep_for(forever);
    std::_Exit(3);
}

volatile std::sig_atomic_t trap_code = 0;
void exit_with_trap_code(int) { ::_exit(trap_code); }

int usage() {
    write_all(2, "usage: vmrt-test-child MODE [ARGS...] (see test_child.cpp)\n");
    return 2;
}

int run(int argc, char** argv) {
    if (argc < 2) return usage();
    const std::string mode = argv[1];
    const char* arg = argc > 2 ? argv[2] : nullptr;
    if (mode == "exit" && arg) return std::atoi(arg);
    if (mode == "sleep" && arg) {
        std::this_thread::sleep_for(std::chrono::milliseconds(std::atol(arg)));
        return 0;
    }
    if (mode == "signal-self" && arg) {
        int sig = std::atoi(arg);
        std::signal(sig, SIG_DFL);
        ::raise(sig);
        return 1;  // the signal did not kill us
    }
    if (mode == "ignore-term") {
        std::signal(SIGTERM, SIG_IGN);
        std::signal(SIGINT, SIG_IGN);
        announce("ready");
        sleep_until_killed();
    }
    if (mode == "trap-term" && arg) {
        trap_code = std::atoi(arg);
        std::signal(SIGTERM, exit_with_trap_code);
        announce("ready");
        sleep_until_killed();
    }
    if (mode == "print-args") {
        for (int i = 2; i < argc; ++i) write_all(1, std::string(argv[i]) + "\n");
        return 0;
    }
    if (mode == "print-env" && arg) {
        const char* value = std::getenv(arg);
        if (!value) return 1;
        write_all(1, std::string(value) + "\n");
        return 0;
    }
    if (mode == "print-cwd") {
        char buf[4096];
        if (!::getcwd(buf, sizeof buf)) return 1;
        write_all(1, std::string(buf) + "\n");
        return 0;
    }
    if (mode == "write-stderr" && arg) {
        write_all(2, std::string(arg) + "\n");
        return 0;
    }
    if (mode == "write-both" && argc > 3) {
        write_all(1, std::string(argv[2]) + "\n");
        write_all(2, std::string(argv[3]) + "\n");
        return 0;
    }
    if (mode == "fork-grandchild") {
        pid_t pid = ::fork();
        if (pid < 0) return 1;
        if (pid == 0) {
            if (int fd = notify_fd(); fd >= 0) ::close(fd);  // the test waits for EOF on it
            sleep_until_killed();
        }
        announce(std::to_string(pid));
        sleep_until_killed();
    }
    if (mode == "check-fd" && arg) return ::fcntl(std::atoi(arg), F_GETFD) >= 0 ? 0 : 1;
    if (mode == "print-ppid-then-sleep") {
        announce(std::to_string(::getppid()));
        sleep_until_killed();
    }
    return usage();
}

}  // namespace

int main(int argc, char** argv) { return run(argc, argv); }
