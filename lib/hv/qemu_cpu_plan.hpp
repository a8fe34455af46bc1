// vCPU hotplug planning for QEMU, sans-I/O: from the reply of `query-hotpluggable-cpus` and a
// target count to the `device_add` / `device_del` commands that reach it.
//
// QEMU lists every possible vCPU slot (up to -smp maxcpus); a plugged one has a "qom-path". The
// CPUs a VM booted with live under /machine/unattached and cannot be unplugged; the ones vmrt
// hot-adds get a device id and live under /machine/peripheral/<id>, so only those are removed,
// newest first.
#pragma once

#include <vmrt/error.hpp>

#include <boost/json/value.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace vmrt::hv {

struct cpu_slot {
    std::string type;                     ///< QOM type to device_add ("qemu64-x86_64-cpu")
    boost::json::object props;            ///< socket-id / core-id / thread-id (/ die-id ...)
    std::optional<std::string> qom_path;  ///< set when a vCPU is plugged into the slot
};

/// Parses the reply of query-hotpluggable-cpus. Throws vmrt::error(errc::protocol_error) naming
/// what is malformed.
std::vector<cpu_slot> parse_hotpluggable_cpus(const boost::json::value& reply);

struct cpu_resize_plan {
    std::vector<boost::json::object> add;  ///< device_add arguments, in order
    std::vector<std::string> remove;       ///< device ids to device_del, in order
};

/// The device id vmrt gives the vCPU it plugs into `slot` ("vmrt-cpu-<socket>-<core>-<thread>").
std::string cpu_device_id(const cpu_slot& slot);

/// How many vCPUs are plugged.
std::uint32_t plugged_cpus(const std::vector<cpu_slot>& slots);

/// The commands that take the VM from its plugged vCPUs to `target`. Throws vmrt::error:
/// errc::invalid_spec when `target` is 0 or above the slots QEMU has (max_cpus), errc::unsupported
/// when it would unplug a vCPU the VM booted with.
cpu_resize_plan plan_vcpu_resize(const std::vector<cpu_slot>& slots, std::uint32_t target);

}  // namespace vmrt::hv
