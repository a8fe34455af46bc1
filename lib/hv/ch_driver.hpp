// The Cloud Hypervisor backend (Linux). CH runs as the VMM with its REST API on a socket vmrt binds
// before CH starts (`--api-socket fd=N`: no start-up race), its event monitor on a pipe
// (`--event-monitor fd=N`: state changes without polling), the serial console in the spec's
// serial log, virtiofsd sidecars for shared directories and pre-opened TAP fds for NICs.
//
// Two launch modes, one VmConfig (hv/ch_config.hpp):
//   command_line — the VM is described by CH's flags and created and booted by CH itself;
//   api          — CH starts bare, then vm.create (typed VmConfig), vm.add-net (TAP fds by
//                  SCM_RIGHTS) and vm.boot.
//
// Verification: CH is not packaged for Debian 12 and needs KVM, so this backend has only run
// against vmrt-fake-cloud-hypervisor (tests/helpers), a protocol double built from
// shared/reference/cloud-hypervisor.md and CH's OpenAPI file. It has never driven a real CH.
#pragma once

#include <vmrt/driver.hpp>

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>

namespace vmrt::hv {

enum class ch_launch_mode { command_line, api };

struct ch_options {
    std::filesystem::path binary;  ///< empty: cloud-hypervisor from PATH
    std::filesystem::path virtiofsd_binary = "/usr/lib/qemu/virtiofsd";
    ch_launch_mode mode = ch_launch_mode::command_line;
    /// Deadline of each API request; vm.boot gets boot_timeout, since CH may wait up to 60 s for
    /// vhost-user backends (§10.7).
    std::chrono::steady_clock::duration request_timeout = std::chrono::seconds(15);
    std::chrono::steady_clock::duration boot_timeout = std::chrono::seconds(75);
};

/// $VMRT_CLOUD_HYPERVISOR if set (and executable), else cloud-hypervisor in PATH, if any.
std::optional<std::filesystem::path> find_cloud_hypervisor();

std::shared_ptr<driver> make_cloud_hypervisor_driver(ch_options opts = {});

}  // namespace vmrt::hv
