// The Virtualization.framework configuration for one vm_spec, as plain data (sans-I/O): which VZ
// objects the apple-vz driver builds, with Apple's class names and Apple's enum values, or the
// spec field VZ cannot honour. It touches neither the file system nor the Objective-C runtime, so
// every mapping decision is unit-tested on Linux (tests/unit/vz_plan_test.cpp); the driver only
// materialises the plan (lib/hv/apple_vz/objc is the runtime layer it uses for that).
//
// Sources for Apple facts are the SDK headers of Virtualization.framework (macOS 14 SDK) and
// Apple's documentation; each is cited where it is used. Nothing here has run on a Mac.
//
// Decisions that are not a direct consequence of the spec:
//  * The machine identifier. spec.machine_id is the opaque dataRepresentation of a
//    VZGenericMachineIdentifier and is used as is. Without it, the identifier is created once and
//    persisted *beside the EFI variable store* when the spec names one (`<store>.machine-id`), the
//    layout of Apple's own Linux sample (NVRAM and MachineIdentifier files in one VM bundle): the
//    two make up the identity of a UEFI machine and should live and die together. Otherwise (a
//    fresh store per boot, or direct boot) a fresh identifier is made for this boot only and the
//    driver reports its bytes in an event, in the spelling "machine_id" takes, so that a caller who
//    wants a stable identity pins it in the spec. The run directory is not used: it is removed
//    with the VM, so a file there would promise a persistence it does not have.
//  * vsock. VZ assigns the guest's CID itself (the guest is CID 3, the host CID 2) and offers
//    connect/listen calls instead of a host socket file, so `vsock.cid` other than 3 and
//    `vsock.socket` are refused: a user who names a socket path expects a socket to appear there,
//    and it would not. vm_manager's vsock_connect is the way in.
#pragma once

#include <vmrt/capabilities.hpp>
#include <vmrt/vm_spec.hpp>

#include <boost/system/result.hpp>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace vmrt::hv::vz {

// ---------------------------------------------------------------------------------------------
// Apple's enumerations, with Apple's raw values (NSInteger). VZDiskImageStorageDeviceAttachment.h,
// macOS 12 SDK and later: Automatic = 0, Uncached = 1, Cached = 2; Full = 1, Fsync = 2, None = 3.
// (Some third-party bindings swap Cached and Uncached; these follow Apple's header.)

enum class disk_image_caching_mode : std::int64_t { automatic = 0, uncached = 1, cached = 2 };
enum class disk_image_synchronization_mode : std::int64_t { full = 1, fsync = 2, none = 3 };

/// VZEFIVariableStoreInitializationOptions (macOS 13): the only option, AllowOverwrite = 1 << 0.
inline constexpr std::uint64_t efi_variable_store_allow_overwrite = 1;

// ---------------------------------------------------------------------------------------------
// Availability: every Apple API a plan uses, so that the driver can refuse with a clear message
// (errc::unsupported naming the field and the macOS version) when the running system lacks it.
// The driver tests presence the way Apple recommends for weak-linked API: objc_getClass for a
// class, -instancesRespondToSelector: for a method that arrived later than its class.

struct apple_api {
    std::string_view class_name;  ///< "VZEFIBootLoader"
    std::string_view selector;    ///< empty: the class itself; else an instance method of it
    int macos = 11;               ///< first macOS major version that has it
    bool apple_silicon_only = false;
    friend bool operator==(const apple_api&, const apple_api&) = default;
};

/// One use of an Apple API by a plan element, and the spec field that asked for it ("" for what
/// every VM gets: the platform, the console, the entropy device).
struct requirement {
    apple_api api;
    std::string field;
};

/// Save/restore of a running VM: -[VZVirtualMachine saveMachineStateToURL:completionHandler:]
/// and restoreMachineStateFromURL:, macOS 14, declared only for arm64 (VZVirtualMachine.h).
inline constexpr apple_api save_restore_api{"VZVirtualMachine",
                                            "saveMachineStateToURL:completionHandler:", 14, true};

// ---------------------------------------------------------------------------------------------
// The plan's elements. Each comment names the VZ class it becomes.

/// VZLinuxBootLoader (macOS 11): kernelURL, initialRamdiskURL, commandLine.
struct linux_boot_loader {
    std::filesystem::path kernel;
    std::optional<std::filesystem::path> initial_ramdisk;
    std::string command_line;
};

/// VZEFIBootLoader with a VZEFIVariableStore (macOS 13). VZ brings its own EFI ROM.
struct efi_boot_loader {
    enum class store_mode {
        /// The spec's store, kept across boots: -initWithURL: when the file exists, else
        /// -initCreatingVariableStoreAtURL:options:0 error: (never overwrites).
        open_or_create,
        /// A store for this boot only, in the run directory: created with AllowOverwrite (a store
        /// left by an earlier boot of the same VM is replaced).
        create_fresh,
    };
    std::filesystem::path variable_store;
    store_mode mode = store_mode::open_or_create;
};

/// VZGenericPlatformConfiguration (macOS 12) and its machineIdentifier (macOS 13).
struct generic_platform {
    enum class identifier_source {
        from_spec,       ///< -[VZGenericMachineIdentifier initWithDataRepresentation:] of `data`
        load_or_create,  ///< `persist_file` holds the dataRepresentation; created with -init if absent
        fresh_reported,  ///< -init for this boot; the driver reports its dataRepresentation in an event
    };
    identifier_source source = identifier_source::fresh_reported;
    std::vector<std::uint8_t> data;      ///< from_spec
    std::filesystem::path persist_file;  ///< load_or_create
};

/// VZVirtioBlockDeviceConfiguration (macOS 11) or VZNVMExpressControllerDeviceConfiguration
/// (macOS 14, only with the generic platform, which every plan uses).
enum class storage_controller { virtio_block, nvme };

/// One storage device with a VZDiskImageStorageDeviceAttachment, built with
/// -initWithURL:readOnly:cachingMode:synchronizationMode:error: (macOS 12). VZ takes raw images
/// only ("Only raw data disk images are supported", VZDiskImageStorageDeviceAttachment.h): the
/// driver refuses a qcow2 file when it opens the disks, which the plan does not do.
struct storage_device {
    std::string field;  ///< the spec key it comes from: "root_disk", "data_disks[1]", "seed_iso"
    std::filesystem::path image;
    bool read_only = false;
    disk_image_caching_mode caching_mode = disk_image_caching_mode::automatic;
    disk_image_synchronization_mode synchronization_mode = disk_image_synchronization_mode::full;
    storage_controller controller = storage_controller::virtio_block;
};

/// VZNATNetworkDeviceAttachment (macOS 11): NAT through the host; always reaches the host.
struct nat_attachment {
    friend bool operator==(const nat_attachment&, const nat_attachment&) = default;
};

/// VZFileHandleNetworkDeviceAttachment (macOS 11) over a connected SOCK_DGRAM socket, one Ethernet
/// frame per datagram. Apple (VZFileHandleNetworkDeviceAttachment.h): SO_RCVBUF at least twice
/// SO_SNDBUF, four times recommended. The driver sets both on the socket it hands to VZ, and the
/// switch port (or the caller, for an inherited fd) should size the peer the same way.
struct file_handle_attachment {
    int fd = -1;                 ///< the inherited socket; -1: the port the manager makes at start
    std::string switch_network;  ///< the manager's switch network of that port, if any
    int so_sndbuf = 0;
    int so_rcvbuf = 0;
};

/// The socket buffer sizes of every file-handle NIC: 1 MiB to send (room for ~700 full-size
/// frames, enough to absorb a burst from the guest), 4 MiB to receive (Apple's recommended 4x).
/// Both stay below macOS's default kern.ipc.maxsockbuf (8 MiB), so setsockopt does not fail.
inline constexpr int file_handle_so_sndbuf = 1 << 20;
inline constexpr int file_handle_so_rcvbuf = 4 * file_handle_so_sndbuf;

/// VZVirtioNetworkDeviceConfiguration (macOS 11) with a VZMACAddress.
struct network_device {
    std::string field;  ///< "networks[2]"
    mac_address mac;
    std::variant<nat_attachment, file_handle_attachment> attachment;
};

/// The guest console: VZVirtioConsoleDeviceSerialPortConfiguration (macOS 11, the guest's hvc0)
/// with VZFileSerialPortAttachment -initWithURL:append:error: (macOS 11). Append, because the
/// manager creates the log before the launch and is already following it.
struct serial_console {
    std::filesystem::path log;
    bool append = true;
};

/// The control channel: a VZVirtioConsoleDeviceConfiguration whose port 0 is a
/// VZVirtioConsolePortConfiguration named `name` (both macOS 13; the guest finds it in
/// /sys/class/virtio-ports/*/name, as with QEMU's virtserialport). Its attachment is a
/// VZFileHandleSerialPortAttachment (macOS 11) on one end of a socket pair; the driver listens on
/// `socket` and relays each accepted connection to the other end.
struct control_port {
    std::string name;
    std::filesystem::path socket;
};

/// VZVirtioTraditionalMemoryBalloonDeviceConfiguration (macOS 11). VZ has no balloon settings; the
/// runtime device (VZVirtioTraditionalMemoryBalloonDevice) takes targetVirtualMachineMemorySize.
struct memory_balloon {
    /// spec.balloon.initial_mib > 0: the target the driver sets right after start (memory minus
    /// the balloon), since VZ cannot start a VM with an inflated balloon.
    std::optional<std::uint64_t> target_after_start_bytes;
};

/// A VZSharedDirectory (macOS 12).
struct shared_directory {
    std::string field;  ///< "shared_dirs[0]"
    std::filesystem::path host_path;
    bool read_only = false;
};

/// VZSingleDirectoryShare (macOS 12): the directory is the mount.
struct single_directory_share {
    shared_directory directory;
};

/// VZMultipleDirectoryShare (macOS 12): -initWithDirectories: with name -> directory; each name is
/// a subdirectory of the mount. In spec order (an NSDictionary has none; the order is for tests).
struct multiple_directory_share {
    std::vector<std::pair<std::string, shared_directory>> directories;
};

/// VZLinuxRosettaDirectoryShare (macOS 13, Apple silicon): -initWithError: fails when Rosetta is
/// not installed, which the driver checks (+availability) at launch, not the plan.
struct rosetta_share {
    friend bool operator==(const rosetta_share&, const rosetta_share&) = default;
};

/// VZVirtioFileSystemDeviceConfiguration (macOS 12) -initWithTag:, one per tag.
struct directory_sharing_device {
    std::string tag;
    std::variant<single_directory_share, multiple_directory_share, rosetta_share> share;
};

/// The tag of the Rosetta share: what Apple's documentation and every guest setup guide mount.
inline constexpr const char* rosetta_tag = "rosetta";
/// The control channel's port name, the same as QEMU's (hv/qemu_command.hpp).
inline constexpr const char* control_port_name = "org.vmrt.control";
/// The kernel command line when the spec has none: VZ's console is virtio (hvc0), not a UART.
inline constexpr const char* default_command_line = "console=hvc0";

/// VZVirtioSocketDeviceConfiguration (macOS 11); at most one per VM. The guest is CID 3.
struct socket_device {
    friend bool operator==(const socket_device&, const socket_device&) = default;
};

// ---------------------------------------------------------------------------------------------

/// The whole VZVirtualMachineConfiguration for one spec.
struct vz_plan {
    std::variant<linux_boot_loader, efi_boot_loader> boot_loader;
    generic_platform platform;
    std::uint32_t cpu_count = 1;                  ///< cpuCount
    std::uint64_t memory_size = 0;                ///< memorySize, bytes (a multiple of 1 MiB, as VZ requires)
    std::vector<storage_device> storage_devices;  ///< root disk, data disks, seed ISO (guest order)
    std::vector<network_device> network_devices;  ///< spec.networks order; none unless asked
    serial_console serial;
    std::optional<control_port> control;
    bool entropy = true;  ///< VZVirtioEntropyDeviceConfiguration (macOS 11): always
    std::optional<memory_balloon> balloon;
    std::vector<directory_sharing_device> directory_sharing_devices;  ///< by first use of a tag
    std::optional<socket_device> socket;
    /// Every Apple API the plan needs, with the field that asked for it.
    std::vector<requirement> requirements;

    /// The oldest macOS that has every API of `requirements`.
    int minimum_macos() const noexcept;
    /// Whether some element exists only on Apple silicon (Rosetta).
    bool needs_apple_silicon() const noexcept;
};

/// The plan for `spec` (which passed validate_spec), or the first field VZ cannot honour, with
/// why. `run_dir` is the VM's private directory (sockets, a per-boot EFI store); nothing is
/// created there by this function.
boost::system::result<vz_plan, spec_error> make_vz_plan(const vm_spec& spec,
                                                        const std::filesystem::path& run_dir);

/// What the apple-vz backend can do. Save/restore need macOS 14 on Apple silicon
/// (save_restore_api); the driver refuses them at run time on an older system.
capability_set vz_capabilities();

/// Where a created machine identifier is kept beside an EFI variable store.
std::filesystem::path machine_identifier_file(const std::filesystem::path& efi_variable_store);

}  // namespace vmrt::hv::vz
