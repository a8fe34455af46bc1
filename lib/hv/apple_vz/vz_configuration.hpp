// The VZ plan materialised: a validated VZVirtualMachineConfiguration built through the vmrt::objc
// layer, ready for -[VZVirtualMachine initWithConfiguration:queue:]. On Linux it is built against the
// simulated framework of the tests (tests/sim/vz); nothing here has run on a Mac.
//
// Contract of build_vz_configuration (for the driver):
//  * Thread: any thread (Apple: configuration objects may be built anywhere; only VZVirtualMachine is
//    bound to its queue). Everything is built inside an autorelease pool of its own, so the caller
//    needs none; the returned configuration is the only object the caller owns (+1, in `strong`).
//  * Order, so that a refusal changes nothing on disk: (1) every Apple API the plan needs is present
//    (objc_getClass / -instancesRespondToSelector:), else errc::unsupported naming the spec field and
//    the macOS version; Rosetta's +availability when the plan shares it; (2) the host files and
//    sockets the plan names are checked: the kernel and initramfs exist, disk images open and are
//    not qcow2 (VZ takes raw images only), file-handle NICs are datagram sockets, the caller supplied
//    every socket the plan leaves to it; (3) devices are built (VZ opens the images and the console
//    log, which it creates when missing); (4) the EFI variable store is opened or created and the
//    machine identifier loaded, created or persisted (the only writes besides the console log);
//    (5) -validateWithError:. A failure in (5) leaves what (3) and (4) wrote: the log file, a new
//    store and its identifier file, which belong together and serve the next attempt.
//  * File descriptors in `vz_build_resources` and the plan stay the caller's: each one handed to VZ
//    is a dup (close-on-exec) owned by an NSFileHandle with closeOnDealloc:YES, closed when the
//    configuration (and any VZVirtualMachine copy of it) is gone. SO_SNDBUF/SO_RCVBUF are set on the
//    socket itself, so the caller's descriptor sees them too.
//  * Errors are vmrt::error: errc::unsupported (missing API, qcow2, Rosetta), errc::invalid_spec
//    (a value VZ refuses: machine_id bytes, a tag or share name, -validateWithError:), system errors
//    (a file that cannot be opened), each with diagnostics.field naming the spec key where there is
//    one; an NSError's domain, code and description are in diagnostics.message.
#pragma once

#include "hv/apple_vz/objc/handle.hpp"
#include "hv/apple_vz/vz_plan.hpp"

#include <cstddef>
#include <cstdint>
#include <map>
#include <vector>

namespace vmrt::hv::vz {

/// What the plan leaves to the caller: sockets made when the VM starts. Borrowed (dup'd when used).
struct vz_build_resources {
    /// The VM's end of each switch port, by index in vz_plan::network_devices, for every
    /// file_handle_attachment whose `fd` is -1.
    std::map<std::size_t, int> switch_port_fds;
    /// The VM's end of the control channel's socket pair, when vz_plan::control is set: it becomes
    /// both file handles of the port's VZFileHandleSerialPortAttachment.
    int control_port_fd = -1;
};

/// Where the configuration's VZGenericMachineIdentifier came from.
enum class machine_identifier_origin {
    none,       ///< macOS 12 without a spec identity: VZ picks one and exposes nothing
    from_spec,  ///< spec.machine_id, used as is
    loaded,     ///< read from the file beside the EFI variable store
    created,    ///< made now and persisted beside the EFI variable store
    fresh,      ///< made now for this boot only: the driver reports it (see vz_plan.hpp)
};

struct vz_configuration {
    objc::strong configuration;  ///< the validated VZVirtualMachineConfiguration
    machine_identifier_origin identifier_origin = machine_identifier_origin::none;
    /// The identifier's dataRepresentation (empty with origin none), in the bytes spec.machine_id takes.
    std::vector<std::uint8_t> machine_identifier;
    /// The EFI variable store was created by this call (UEFI plans only).
    bool efi_variable_store_created = false;
};

/// Builds and validates the configuration of `plan` (see the contract above). Throws vmrt::error.
vz_configuration build_vz_configuration(const vz_plan& plan, const vz_build_resources& resources);

/// Step (1) alone: throws errc::unsupported for the first requirement of `plan` the running
/// Virtualization.framework lacks, naming its field and macOS version.
void check_vz_availability(const vz_plan& plan);

/// Sizes a datagram socket's buffers for VZFileHandleNetworkDeviceAttachment: asks for `sndbuf` and
/// `rcvbuf`, then, as kernels cap or refuse large buffers (Linux: net.core.[rw]mem_max, macOS:
/// kern.ipc.maxsockbuf, ENOBUFS), settles for smaller ones that keep Apple's rule that SO_RCVBUF is
/// at least twice SO_SNDBUF, read back with getsockopt. Throws (with `field`) if no such sizes exist.
void size_datagram_socket_buffers(int fd, int sndbuf, int rcvbuf, const std::string& field);

}  // namespace vmrt::hv::vz
