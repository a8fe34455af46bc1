// A child process owned by vmrt: spawned from an argv (never through a shell), in its own
// process group, with a parent-death signal, its stdout/stderr appended to a log file, and its
// exit awaited through a pidfd on the caller's executor. Signals go through the pidfd, so a
// reused PID can never make us signal a stranger.
//
// Ownership: destroying a `process` that is still running kills its whole process group with
// SIGKILL and reaps it, so no child outlives its owner.
//
// Thread safety: a `process` is not thread-safe. Use it, start its waits and emit the
// cancellations bound to them from one executor (a strand if its io_context runs on several
// threads). Waits complete through the process's executor (never inside the initiating call).
#pragma once

#include <vmrt/error.hpp>
#include <vmrt/vm_state.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>

#include <sys/types.h>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace vmrt::io {

struct process_options {
    std::filesystem::path program;                  ///< a path, or a bare name looked up in our PATH
    std::vector<std::string> args;                  ///< argv[1..]; argv[0] is `program`
    std::optional<std::filesystem::path> log_file;  ///< stdout+stderr (truncated); unset: /dev/null
    bool append_log = false;  ///< append to `log_file` instead of truncating it (a restarted daemon)
    std::vector<std::pair<std::string, std::string>> env_overrides;  ///< added to the inherited environment
    std::vector<int> inherited_fds;  ///< kept open in the child at the same number
    /// If >= 0, the child's stdin (instead of /dev/null): e.g. the read end of a pipe. The caller
    /// keeps ownership; the child gets a duplicate.
    int stdin_fd = -1;
    /// If >= 0, the child's stdout (stderr still goes to `log_file`): e.g. the write end of a
    /// pipe, so that output holding secrets never touches a file. The caller keeps ownership.
    int stdout_fd = -1;
    std::optional<std::filesystem::path> working_dir;
    bool new_process_group = true;  ///< child becomes leader of its own group
    /// Sent to the child if vmrt dies; 0: none. Linux sends it when the *thread* that called
    /// spawn() exits, so spawn from a long-lived thread (the one running the io_context).
    int parent_death_signal = SIGKILL;
};

/// (pid, start time in clock ticks since boot: field 22 of /proc/PID/stat). Two processes with
/// the same pid but different start times are different processes.
struct process_identity {
    pid_t pid = 0;
    std::uint64_t start_time_ticks = 0;
    friend bool operator==(const process_identity&, const process_identity&) = default;
};

/// Reads the identity of a live process from /proc; empty if it does not exist.
std::optional<process_identity> read_process_identity(pid_t pid);

/// How a cancellation of `async_wait_escalating` is mapped onto signals, after Boost.Process
/// v2's execute: total → graceful_signal, partial → SIGTERM, terminal → SIGKILL.
struct escalation_signals {
    int graceful_signal = SIGINT;
};

class process {
public:
    using executor_type = boost::asio::any_io_executor;

    /// Starts the child. Errors (program missing, exec failure, bad fd) are reported
    /// synchronously: the exec error of the child is passed back through a CLOEXEC pipe, so
    /// "no such file" is an error here, not a mysterious exit code 127 later.
    static process spawn(executor_type ex, const process_options& opts);
    static process spawn(executor_type ex, const process_options& opts, error_code& ec);

    process() = default;
    process(process&&) noexcept;
    process& operator=(process&&) noexcept;
    ~process();

    bool valid() const noexcept { return impl_ != nullptr; }
    pid_t pid() const noexcept;
    process_identity identity() const noexcept;
    executor_type get_executor() const noexcept;

    /// True until the exit has been observed (and the child reaped).
    bool running() const noexcept;
    /// Set once the child has exited.
    std::optional<exit_status> status() const noexcept;

    /// Sends `sig` to the process (through its pidfd). Sending to an exited process is a no-op
    /// that returns success: there is nothing left to signal.
    error_code signal(int sig) noexcept;
    /// Sends `sig` to the process group (the VMM and anything it forked). Only done while the
    /// leader has not been reaped: until then its pid, which is the group id, cannot be reused,
    /// so the signal cannot reach a stranger's group. After the exit this is a no-op returning
    /// success (members the leader left behind are out of reach). errc::invalid_state if the
    /// child was spawned without a process group of its own (its group is the caller's).
    error_code signal_group(int sig) noexcept;

    /// Waits for the exit. Any number of waits may be outstanding at once; all complete with the
    /// exit status. Cancellation (any type) aborts only the wait, with
    /// boost::asio::error::operation_aborted; the process is left alone.
    /// Signature: void(error_code, exit_status).
    template <typename CompletionToken>
    auto async_wait(CompletionToken&& token) {
        return boost::asio::async_initiate<CompletionToken, void(error_code, exit_status)>(
            [this](auto handler) { async_wait_impl(std::move(handler)); }, token);
    }

    /// Waits for the exit, and maps cancellation onto signals instead of aborting:
    /// total → `graceful_signal`, partial → SIGTERM, terminal → SIGKILL; the wait then goes on
    /// until the process has actually exited. Signature: void(error_code, exit_status).
    template <typename CompletionToken>
    auto async_wait_escalating(escalation_signals sigs, CompletionToken&& token) {
        return boost::asio::async_initiate<CompletionToken, void(error_code, exit_status)>(
            [this](auto handler, escalation_signals s) { async_wait_escalating_impl(s, std::move(handler)); },
            token, sigs);
    }

    /// Kills the process group with SIGKILL and reaps the child synchronously. Idempotent.
    void kill_and_reap() noexcept;

    struct impl;

private:
    explicit process(std::shared_ptr<impl> p) : impl_(std::move(p)) {}
    void async_wait_impl(boost::asio::any_completion_handler<void(error_code, exit_status)> h);
    void async_wait_escalating_impl(escalation_signals s,
                                    boost::asio::any_completion_handler<void(error_code, exit_status)> h);

    std::shared_ptr<impl> impl_;
};

/// Last `max_bytes` of a (log) file, for diagnostics. Empty if it cannot be read.
std::string read_file_tail(const std::filesystem::path& file, std::size_t max_bytes = 4096);

}  // namespace vmrt::io
