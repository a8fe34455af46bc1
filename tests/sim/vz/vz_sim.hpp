// The simulated Virtualization.framework, configuration side (Linux, tests only; target vmrt_vz_sim):
// every class the VZ plan (lib/hv/apple_vz/vz_plan.hpp) names, defined with sim::class_def on the
// simulated Objective-C runtime (tests/sim/objc), with Apple's class hierarchy, initialisers,
// property getters and setters, class methods and NSError out-parameters. The driver builds a
// configuration exactly as it would on a Mac; the simulated VZVirtualMachine (the driver helper's
// side) reads it back through the same public getters real VZ offers.
//
// Faithfulness. Selectors, argument types and macOS versions follow the SDK headers of
// Virtualization.framework (macOS 11.0-14.4 SDKs: VZVirtualMachineConfiguration.h,
// VZDiskImageStorageDeviceAttachment.h, VZFileHandleNetworkDeviceAttachment.h,
// VZVirtioConsolePortConfigurationArray.h, VZVirtioFileSystemDeviceConfiguration.h,
// VZMultipleDirectoryShare.h, VZLinuxRosettaDirectoryShare.h, ...). What Apple does not document
// (the exact NSError a failing initialiser reports, the byte format of a machine identifier, the
// host's CPU and memory limits) is the simulation's choice; each is marked "simulation:" where it is
// made. Nothing here has been compared with a real Mac.
//
// Using it
// --------
//   vmrt::objc::sim::vz::install();       // once per process, before the first objc_getClass("VZ...")
//   ... build a configuration through vmrt::objc ...
//   auto view = vmrt::objc::sim::vz::inspect_configuration(configuration.get());
//   BOOST_TEST(view.storage_devices[0].read_only);
//
// Play an older macOS with `scoped_macos_version v(12);` (hides every class and method newer than
// macOS 12, via sim::scoped_hidden_class / scoped_hidden_method), or hide one class yourself.
//
// What the simulation checks (so a test can rely on it): initialisers with an `error:` argument fail
// as Apple's do (nil + NSError, the out-parameter untouched on success): a disk image that cannot be
// opened, an EFI variable store that exists (without AllowOverwrite) or cannot be created, a console
// log that cannot be opened, Rosetta that is not installed; -[VZVirtualMachineConfiguration
// validateWithError:] refuses (VZErrorDomain 2, "Invalid virtual machine configuration. <reason>"):
// no boot loader, CPUCount or memorySize outside the class properties' range, memorySize not a
// multiple of 1 MiB, an EFI boot loader without a store file or without the generic platform, a
// storage device without attachment, a file-handle NIC whose socket is not a connected SOCK_DGRAM
// socket or whose MTU is outside 1500...65535, a console port array whose maximumPortCount is not
// larger than its highest index, more than one entropy / balloon / socket device, an invalid or
// repeated virtio-fs tag, a virtio-fs device without a share (vz_sim_configuration.cpp).
//
// The VZVirtualMachine side (the driver helper's) belongs in this library too: its classes read
// configurations through the getters above (or the payloads in vz_sim_model.hpp, private to
// tests/sim/vz) and its installer is called from install() in vz_sim_knobs.cpp.
#pragma once

#include "hv/apple_vz/objc/runtime.hpp"

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace vmrt::objc::sim::vz {

/// Defines every simulated configuration class (idempotent, thread-safe). Classes are permanent once
/// defined, as on a Mac; tests change behaviour through the knobs below.
void install();

// --- knobs ------------------------------------------------------------------------------------

/// VZLinuxRosettaAvailability (VZLinuxRosettaDirectoryShare.h, macOS 13): NotSupported 0,
/// NotInstalled 1, Installed 2.
enum class rosetta_availability : NSInteger { not_supported = 0, not_installed = 1, installed = 2 };

/// What +[VZLinuxRosettaDirectoryShare availability] answers (default: installed), and therefore
/// whether -initWithError: succeeds.
void set_rosetta_availability(rosetta_availability value);
rosetta_availability current_rosetta_availability();

class scoped_rosetta_availability {
public:
    explicit scoped_rosetta_availability(rosetta_availability value);
    scoped_rosetta_availability(const scoped_rosetta_availability&) = delete;
    scoped_rosetta_availability& operator=(const scoped_rosetta_availability&) = delete;
    ~scoped_rosetta_availability();

private:
    rosetta_availability previous_;
};

/// The class properties +[VZVirtualMachineConfiguration minimumAllowedCPUCount] and friends.
/// Simulation: Apple documents no values (they depend on the host); these defaults are a small Mac's.
struct host_limits {
    NSUInteger minimum_cpu_count = 1;
    NSUInteger maximum_cpu_count = 8;
    std::uint64_t minimum_memory_size = 128ull << 20;
    std::uint64_t maximum_memory_size = 16ull << 30;
};
host_limits current_host_limits();

class scoped_host_limits {
public:
    explicit scoped_host_limits(host_limits limits);
    scoped_host_limits(const scoped_host_limits&) = delete;
    scoped_host_limits& operator=(const scoped_host_limits&) = delete;
    ~scoped_host_limits();

private:
    host_limits previous_;
};

/// An NSError for a simulated method to report instead of doing its work.
struct injected_error {
    std::string domain = "VZErrorDomain";
    NSInteger code = 1;
    std::string description;     ///< NSLocalizedDescription
    std::string failure_reason;  ///< NSLocalizedFailureReason (optional)
};

/// While alive, the next `times` calls of `selector` (a method with an NSError** out-parameter, on
/// the class that declares it: "VZVirtualMachineConfiguration", "validateWithError:") fail with
/// `error`: the method sets the out-parameter and returns NO / nil, as a real failure would.
/// Methods that can be made to fail this way: every initialiser and validator with an `error:`
/// argument in this simulation.
class scoped_failure {
public:
    scoped_failure(std::string class_name, std::string selector, injected_error error, int times = 1);
    scoped_failure(const scoped_failure&) = delete;
    scoped_failure& operator=(const scoped_failure&) = delete;
    ~scoped_failure();
    /// How many of the injected failures have not happened yet.
    int remaining() const;

private:
    std::shared_ptr<struct failure_slot> slot_;
};

// --- availability -------------------------------------------------------------------------------

/// When Apple introduced a class (selector empty) or a method of it ("+name" for a class method):
/// API_AVAILABLE in the SDK headers. `arm64_only`: declared inside `#ifdef __arm64__`.
struct api_version {
    std::string_view class_name;
    std::string_view selector;
    int macos;
    bool arm64_only = false;
};

/// Every class and every later-added method of this simulation, with its macOS version.
std::span<const api_version> availability_table();

/// While alive, the runtime looks like Virtualization.framework on macOS `major` (11-14): every
/// class and method of availability_table() newer than that is hidden. `apple_silicon = false`
/// also hides what exists only on arm64 (VZLinuxRosettaDirectoryShare).
class scoped_macos_version {
public:
    explicit scoped_macos_version(int major, bool apple_silicon = true);
    scoped_macos_version(const scoped_macos_version&) = delete;
    scoped_macos_version& operator=(const scoped_macos_version&) = delete;
    ~scoped_macos_version();

private:
    struct hidden;
    std::unique_ptr<hidden> hidden_;
};

// --- introspection ------------------------------------------------------------------------------
// A configuration object graph read back into plain C++, through Apple's public getters (so that the
// getters are exercised too) plus, where Apple has no getter, what the simulation recorded.
// Class names are the objects' runtime classes; "" stands for nil.

/// A VZSerialPortAttachment (serial ports and console ports).
struct serial_attachment_view {
    std::string class_name;
    std::string url;           ///< VZFileSerialPortAttachment: URL.path
    bool append = false;       ///< VZFileSerialPortAttachment: append
    int read_fd = -1;          ///< VZFileHandleSerialPortAttachment: fileHandleForReading.fileDescriptor
    int write_fd = -1;         ///< ... fileHandleForWriting.fileDescriptor
    bool same_handle = false;  ///< both directions use one NSFileHandle
};

struct boot_loader_view {
    std::string class_name;
    // VZLinuxBootLoader
    std::string kernel;           ///< kernelURL.path
    std::string initial_ramdisk;  ///< initialRamdiskURL.path ("" when nil)
    std::string command_line;
    // VZEFIBootLoader
    std::string variable_store;  ///< variableStore.URL.path ("" when no store)
};

struct platform_view {
    std::string class_name;
    bool has_machine_identifier = false;           ///< the property exists (macOS 13)
    std::vector<std::uint8_t> machine_identifier;  ///< machineIdentifier.dataRepresentation
};

struct storage_view {
    std::string class_name;  ///< VZVirtioBlockDeviceConfiguration, VZNVMExpressControllerDeviceConfiguration
    std::string attachment_class;
    std::string url;
    bool read_only = false;
    NSInteger caching_mode = -1;
    NSInteger synchronization_mode = -1;
};

struct network_view {
    std::string class_name;
    std::string mac;  ///< MACAddress.string
    std::string attachment_class;
    // VZFileHandleNetworkDeviceAttachment
    int fd = -1;                              ///< fileHandle.fileDescriptor
    NSInteger maximum_transmission_unit = 0;  ///< 0 when the property does not exist (macOS 12)
    int socket_type = 0;                      ///< recorded by -initWithFileHandle: (SOCK_DGRAM expected)
    int so_sndbuf = 0;                        ///< recorded by -initWithFileHandle: (getsockopt)
    int so_rcvbuf = 0;
};

struct serial_port_view {
    std::string class_name;
    serial_attachment_view attachment;
};

struct console_port_view {
    NSUInteger index = 0;
    std::string class_name;
    std::string name;  ///< "" when nil
    bool is_console = false;
    serial_attachment_view attachment;
};

struct console_device_view {
    std::string class_name;
    std::uint32_t maximum_port_count = 0;
    std::vector<console_port_view> ports;  ///< the set ports, by index
};

struct shared_directory_view {
    std::string url;
    bool read_only = false;
    friend bool operator==(const shared_directory_view&, const shared_directory_view&) = default;
};

struct directory_share_view {
    std::string
        class_name;  ///< VZSingleDirectoryShare, VZMultipleDirectoryShare, VZLinuxRosettaDirectoryShare
    std::optional<shared_directory_view> directory;            ///< single
    std::map<std::string, shared_directory_view> directories;  ///< multiple, by name
};

struct directory_sharing_view {
    std::string class_name;
    std::string tag;
    directory_share_view share;
};

struct configuration_view {
    boot_loader_view boot_loader;
    platform_view platform;
    NSUInteger cpu_count = 0;
    std::uint64_t memory_size = 0;
    std::vector<storage_view> storage_devices;
    std::vector<network_view> network_devices;
    std::vector<serial_port_view> serial_ports;
    std::vector<console_device_view> console_devices;  ///< empty when the property does not exist
    std::vector<std::string> entropy_devices;          ///< class names
    std::vector<std::string> memory_balloon_devices;
    std::vector<std::string> socket_devices;
    std::vector<directory_sharing_view> directory_sharing_devices;
};

/// Reads a VZVirtualMachineConfiguration back (leaves it unchanged; no objects leak).
configuration_view inspect_configuration(id configuration);

/// The byte format of a simulated VZGenericMachineIdentifier's dataRepresentation (simulation: Apple
/// documents none; the bytes are opaque to clients): a magic prefix and 16 random bytes.
inline constexpr std::string_view machine_identifier_magic = "vmrt-sim-vzgmid:";
inline constexpr std::size_t machine_identifier_size = 32;

/// What -[VZEFIVariableStore initCreatingVariableStoreAtURL:options:error:] writes (simulation).
inline constexpr std::string_view efi_variable_store_magic = "vmrt-sim-efi-variable-store\n";

}  // namespace vmrt::objc::sim::vz
