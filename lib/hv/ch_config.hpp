// What Cloud Hypervisor is told about a VM, derived from a vm_spec in one place for both launch
// modes: `make_vm_config` builds the typed VmConfig (API mode sends it as vm.create), and
// `command_line` renders the same VmConfig as CH's flags (CLI mode), so the two modes cannot
// drift apart. Sans-I/O; facts from shared/reference/cloud-hypervisor.md §3.
#pragma once

#include "hv/ch_api.hpp"

#include <vmrt/vm_spec.hpp>

#include <boost/system/result.hpp>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace vmrt::hv::ch {

/// Why CH cannot run this spec as written (first field it cannot honour), or nullopt.
/// `virtiofsd_read_only`: whether the installed virtiofsd can export a directory read-only.
std::optional<spec_error> check_spec_for_ch(const vm_spec& spec, bool virtiofsd_read_only);

/// Resources the driver prepared before CH starts.
struct launch_resources {
    std::vector<int> tap_fds;                       ///< one open TAP fd per NIC, in spec order
    std::vector<std::filesystem::path> fs_sockets;  ///< one virtiofsd socket per shared dir
};

/// The device ids vmrt gives CH's devices, so that events, counters and remove-device name
/// them predictably: "disk0" (root), "disk1".., "seed", "net0".., "fs0".., "vsock", "balloon".
std::string disk_id(std::size_t index);
std::string net_id(std::size_t index);
std::string fs_id(std::size_t index);

/// The VmConfig for a spec that passed check_spec_for_ch. Every NIC gets its MAC (spec or
/// default_mac). NICs carry their fds for the command line; API mode plugs them separately.
vm_config make_vm_config(const vm_spec& spec, const launch_resources& resources);

/// CH's flags for `config` (§3), every path quoted where CH's option parser needs it (`ch_option_value`).
/// `api_fd` / `event_fd`: the inherited pre-bound API listener and event-monitor pipe (-1: none).
/// The spec field whose value cannot be represented in CH's option syntax, as an error.
boost::system::result<std::vector<std::string>, spec_error> command_line(const vm_config& config, int api_fd,
                                                                         int event_fd);

/// CH's size syntax: a bare number of bytes, or with a binary K/M/G suffix when exact ("512M").
std::string size_option(std::uint64_t bytes);

}  // namespace vmrt::hv::ch
