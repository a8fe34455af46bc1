#include "hv/apple_vz/vz_state.hpp"

namespace vmrt::hv::vz {

std::string_view state_name(machine_state s) noexcept {
    switch (s) {
    case machine_state::stopped:
        return "Stopped";
    case machine_state::running:
        return "Running";
    case machine_state::paused:
        return "Paused";
    case machine_state::error:
        return "Error";
    case machine_state::starting:
        return "Starting";
    case machine_state::pausing:
        return "Pausing";
    case machine_state::resuming:
        return "Resuming";
    case machine_state::stopping:
        return "Stopping";
    case machine_state::saving:
        return "Saving";
    case machine_state::restoring:
        return "Restoring";
    }
    return "unknown";
}

std::optional<machine_state> machine_state_from(std::int64_t raw) noexcept {
    if (raw < 0 || raw > static_cast<std::int64_t>(machine_state::restoring)) return std::nullopt;
    return static_cast<machine_state>(raw);
}

vm_state to_vm_state(machine_state s, const std::optional<std::string>& ready_ip) {
    auto running = [&]() -> vm_state {
        if (ready_ip) return state::ready{ready_ip->empty() ? std::nullopt : ready_ip};
        return state::running{};
    };
    switch (s) {
    case machine_state::stopped:
        return state::stopped{};
    case machine_state::error:
        return state::failed{.reason = "Virtualization.framework reports the VM in state Error"};
    case machine_state::starting:
    case machine_state::restoring:
        return state::starting{};
    case machine_state::running:
    case machine_state::pausing:
        return running();
    case machine_state::paused:
    case machine_state::resuming:
    case machine_state::saving:
        return state::paused{};
    case machine_state::stopping:
        return state::stopping{};
    }
    return state::failed{.reason = "Virtualization.framework reports an unknown VM state"};
}

bool has_ended(machine_state s) noexcept { return s == machine_state::stopped || s == machine_state::error; }

}  // namespace vmrt::hv::vz
