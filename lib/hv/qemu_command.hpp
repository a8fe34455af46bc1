// The QEMU command line as a pure function of a spec and the launch-time resources (inherited
// fds, socket paths, the accelerator): unit-testable without starting anything.
//
// What the command line is built on (measured on these machines, shared/reference/real-guests.md):
// `-nodefaults -no-user-config -display none` (no stray devices, no HMP on stdio), QMP on an
// inherited, already-connected socket (no socket path to race for or clean up), the console on a
// file chardev opened in append mode (the manager truncates it before the launch and tails it),
// virtio devices only, `romfile=` on virtio-net (no iPXE), no vhost (absent on this kernel).
#pragma once

#include <vmrt/vm_spec.hpp>

#include <boost/system/result.hpp>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace vmrt::hv {

/// Everything the command line needs that is not in the spec.
struct qemu_runtime {
    std::string accelerator = "tcg";                      ///< "tcg" or "kvm"
    int qmp_fd = -1;                                      ///< child's end of the QMP socketpair
    std::vector<int> nic_fds;                             ///< per spec.networks entry: inherited fd or -1
    std::vector<std::filesystem::path> virtiofs_sockets;  ///< per spec.shared_dirs entry
    /// restore: inherited fd of a saved state (QEMU 7.2 has no file: URI); -incoming defer
    int incoming_fd = -1;
    /// uefi boot: the firmware code and this VM's variable store (see qemu_firmware.hpp)
    std::filesystem::path uefi_code;
    std::filesystem::path uefi_vars;
    /// spec.control_channel: inherited fd of the listening socket behind the virtio-serial port
    int control_listen_fd = -1;
};

/// The name of the control channel's virtio-serial port, as the guest sees it in
/// /sys/class/virtio-ports/*/name.
inline constexpr const char* control_port_name = "org.vmrt.control";

/// argv[1..] for qemu-system-x86_64, or the spec field that cannot be expressed.
boost::system::result<std::vector<std::string>, spec_error> build_qemu_args(const vm_spec& spec,
                                                                            const qemu_runtime& rt);

/// The kernel command line used when the spec sets none: serial console, reboot on panic (so a
/// crash ends the VM instead of hanging it), and `no_timer_check` under TCG, whose slow timer
/// calibration otherwise hangs guests on a loaded host.
std::string default_qemu_cmdline(const std::string& accelerator);

/// "qcow2" if the file starts with the qcow2 magic, else "raw" (QEMU refuses to guess for us).
std::string sniff_disk_format(const std::filesystem::path& file);

/// Chooses the accelerator: KVM only when /dev/kvm exists AND the CPU advertises vmx or svm;
/// here /dev/kvm is a paravirtual (PVM) host on which stock guests crash, hence the CPU check.
std::string choose_accelerator(const std::filesystem::path& dev_kvm = "/dev/kvm",
                               const std::filesystem::path& cpuinfo = "/proc/cpuinfo");

}  // namespace vmrt::hv
