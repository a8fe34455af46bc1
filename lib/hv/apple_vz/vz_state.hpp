// VZVirtualMachineState (VZVirtualMachine.h) and how the apple-vz driver reads it (sans-I/O).
//
// The manager's state is the actor's (lib/vm_actor.cpp): the *last completed* lifecycle step.
// A VZ transition state therefore maps to the state the VM was in before it, until the step that
// began it completes: Pausing is still running, Resuming still paused, Saving paused (a save starts
// and ends paused), Restoring still starting (the launch is not done). Stopping maps to stopping.
// Stopped and Error are terminal: Error is the VM failing (VZVirtualMachineStateError: "The
// virtual machine has encountered an internal error").
#pragma once

#include <vmrt/vm_state.hpp>

#include <cstdint>
#include <optional>
#include <string_view>

namespace vmrt::hv::vz {

/// Apple's raw values (NSInteger). Stopping is macOS 12, Saving and Restoring macOS 14.
enum class machine_state : std::int64_t {
    stopped = 0,
    running = 1,
    paused = 2,
    error = 3,
    starting = 4,
    pausing = 5,
    resuming = 6,
    stopping = 7,
    saving = 8,
    restoring = 9,
};

/// Apple's name without the prefix ("Running"), or "unknown (<value>)" for a value this code does
/// not know (a newer macOS may add states).
std::string_view state_name(machine_state s) noexcept;

/// A raw `state` value as a machine_state, or nothing for a value outside Apple's list.
std::optional<machine_state> machine_state_from(std::int64_t raw) noexcept;

/// The manager's state for a VZ state (see the file comment). `ready_ip`: the guest's ready
/// line, if one was seen this boot (a running VM whose guest is ready is Ready).
vm_state to_vm_state(machine_state s, const std::optional<std::string>& ready_ip = std::nullopt);

/// Stopped or Error: the VM has ended.
bool has_ended(machine_state s) noexcept;

}  // namespace vmrt::hv::vz
