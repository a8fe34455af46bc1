// What a backend can do, per operation, and why not when it cannot. Queried before an operation
// is attempted so that callers (and the CLI) can explain a refusal instead of failing late.
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <string_view>

namespace vmrt {

enum class operation : std::size_t {
    start,
    stop_graceful,  ///< ACPI power button, wait for the guest
    kill,
    pause,
    resume,
    snapshot,
    restore,
    resize_cpus,
    resize_memory,
    resize_balloon,
    hotplug_disk,
    hotplug_net,
    hotplug_fs,
    counters,
    vsock_connect,
    count_  ///< number of operations (not an operation)
};

std::string_view to_string(operation) noexcept;

struct operation_support {
    bool supported = false;
    std::string why_not;  ///< empty when supported
};

class capability_set {
public:
    /// Everything unsupported, with `reason` as the explanation.
    explicit capability_set(std::string_view reason = "not implemented by this backend");

    capability_set& allow(operation op);
    capability_set& deny(operation op, std::string why_not);

    bool supports(operation op) const noexcept { return ops_[static_cast<std::size_t>(op)].supported; }
    const operation_support& get(operation op) const noexcept { return ops_[static_cast<std::size_t>(op)]; }

private:
    std::array<operation_support, static_cast<std::size_t>(operation::count_)> ops_;
};

}  // namespace vmrt
