// The fake backend: runs `vmrt-fake-guest`, a real child process of the project's own that plays
// both VMM and guest. It writes a console log with a kernel banner and the VMRS_READY line,
// treats SIGUSR1 as the ACPI power button, exits on SIGTERM like QEMU does, and can be told
// through the kernel command line to crash, hang, reboot or never become ready. The manager is
// thereby tested against real processes, signals, pidfds and inotify — everything but a hypervisor.
//
// Honoured spec fields: name, namespace, kernel, initramfs, cmdline, cpus, memory_mib, root_disk,
// data_disks, seed_iso (opened by the fake guest, which fails like a VMM if it cannot), serial_log.
// Every other field is refused by check_spec, naming it.
#pragma once

#include <vmrt/driver.hpp>

#include <filesystem>
#include <memory>
#include <optional>

namespace vmrt::hv {

/// $VMRT_FAKE_GUEST, else `vmrt-fake-guest` next to the running executable (or in ../tools
/// from a build tree's tests/ or bench/), else in PATH.
std::optional<std::filesystem::path> find_fake_guest_program();

std::shared_ptr<driver> make_fake_driver(std::filesystem::path guest_program);

}  // namespace vmrt::hv
