// The manager's event stream: every state change of every VM, with its reason, in order.
#pragma once

#include <vmrt/vm_state.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace vmrt {

/// What an event reports: a state change, or a note about a VM whose state did not change
/// (the accelerator a backend chose, a kernel panic seen on the console, a sidecar restart), or
/// the progress of a transfer the manager runs (an image pull: `vm` is then "image:<reference>"
/// and `state` means nothing).
enum class event_kind { state_changed, note, transfer };

/// One object of a transfer (event_kind::transfer): a blob of an image pull.
struct transfer_progress {
    std::string object;  ///< "sha256:..."
    std::string what;    ///< "layer", "config", "manifest", "index"
    std::uint64_t done = 0;
    std::uint64_t total = 0;
    bool finished = false;
    bool cached = false;  ///< already there: nothing was transferred
};

struct vm_event {
    std::uint64_t sequence = 0;  ///< strictly increasing per manager
    event_kind kind = event_kind::state_changed;
    std::chrono::system_clock::time_point time;
    std::string vm;                             ///< VM name
    vm_state state;                             ///< the state entered (for a note: the current state)
    std::string reason;                         ///< why: "VMRS_READY seen on serial", "stop requested", ...
    std::optional<transfer_progress> transfer;  ///< set for event_kind::transfer
};

/// One line of text for an event: "<vm> <state> [<reason>]".
std::string format_event_line(const vm_event&);
/// One JSON object (no newline) for an event, for `vmrt run --json` and log pipelines.
std::string format_event_json(const vm_event&);

}  // namespace vmrt
