// Devices plugged into a running VM, and the counters a VMM keeps per device.
#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace vmrt {

/// A device added to a running VM (vm_manager::async_add_disk and friends).
struct plugged_device {
    std::string id;           ///< the VMM's device id; pass it to async_remove_device
    std::string bus_address;  ///< PCI address the guest sees ("0000:00:06.0"); empty if unknown
};

/// device id → counter name → value ("disk0" → {"read_bytes": 4096, ...}), as the VMM reports them.
using device_counters = std::map<std::string, std::map<std::string, std::uint64_t>>;

}  // namespace vmrt
