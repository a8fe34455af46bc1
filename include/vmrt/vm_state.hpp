// The lifecycle state of a VM as the manager sees it, and how a VM ended.
#pragma once

#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace vmrt {

/// How a stop ended.
enum class stop_outcome {
    clean,            ///< the guest powered off (after the power button, or by itself with status 0)
    forced,           ///< the VMM had to be terminated (SIGTERM) or killed (SIGKILL)
    crashed,          ///< the VMM died abnormally while the stop was under way
    already_stopped,  ///< there was nothing to stop
};

/// How the VMM process ended, as the kernel reported it.
struct exit_status {
    bool signaled = false;  ///< true: killed by `signal`; false: exited with `code`
    int code = 0;
    int signal = 0;
    bool success() const noexcept { return !signaled && code == 0; }
    std::string to_string() const;  ///< "exit code 3", "killed by signal 9 (SIGKILL)"
    friend bool operator==(const exit_status&, const exit_status&) = default;
};

namespace state {
struct starting {};
struct running {};
/// The guest printed `VMRS_READY <ip>` (or `VMRS_READY -` for a guest without an address).
struct ready {
    std::optional<std::string> ip;
};
struct paused {};
struct stopping {};
struct stopped {
    stop_outcome outcome = stop_outcome::clean;
    std::optional<exit_status> status;
};
struct failed {
    std::string reason;
    std::optional<exit_status> status;
    std::vector<std::string> serial_tail;  ///< last console lines, the best clue to a crash
};
}  // namespace state

using vm_state = std::variant<state::starting, state::running, state::ready, state::paused, state::stopping,
                              state::stopped, state::failed>;

std::string_view state_name(const vm_state&) noexcept;  ///< "starting", "ready", "failed", ...
std::string to_string(const vm_state&);                 ///< "ready (10.0.0.2)", "failed: ..."
std::string_view to_string(stop_outcome) noexcept;

/// Running or Ready: a guest is executing.
inline bool is_running(const vm_state& s) noexcept {
    return std::holds_alternative<state::running>(s) || std::holds_alternative<state::ready>(s);
}
/// Stopped or Failed: nothing is left running and the VM may be removed or started again.
inline bool is_terminal(const vm_state& s) noexcept {
    return std::holds_alternative<state::stopped>(s) || std::holds_alternative<state::failed>(s);
}

}  // namespace vmrt
