// The simulated Virtualization.framework's payloads (private to tests/sim/vz) and the helpers its
// source files share: NSError out-parameters, injected failures, argument reading.
//
// Payloads live at the level of Apple's class that declares the state: VZStorageDeviceConfiguration
// holds `attachment` for both VZVirtioBlockDeviceConfiguration and
// VZNVMExpressControllerDeviceConfiguration, as Apple's base class declares the property.
#pragma once

#include "hv/apple_vz/objc/foundation.hpp"
#include "hv/apple_vz/objc/handle.hpp"
#include "sim/objc/sim.hpp"
#include "vz_sim.hpp"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace vmrt::objc::sim::vz::detail {

inline constexpr const char* vz_domain = "VZErrorDomain";
inline constexpr const char* posix_domain = "NSPOSIXErrorDomain";
inline constexpr const char* cocoa_domain = "NSCocoaErrorDomain";
/// VZErrorCode (VZError.h).
inline constexpr NSInteger vz_invalid_configuration = 2;
inline constexpr NSInteger vz_not_supported = 10;
/// NSFileWriteFileExistsError (FoundationErrors.h).
inline constexpr NSInteger cocoa_file_exists = 516;

// --- payloads ---------------------------------------------------------------------------------

struct linux_boot_loader_payload {
    strong kernel_url;
    strong initial_ramdisk_url;
    strong command_line;  ///< an NSString; "" by default
};

struct efi_boot_loader_payload {
    strong variable_store;
};

struct efi_variable_store_payload {
    strong url;
};

struct generic_platform_payload {
    strong machine_identifier;
};

struct machine_identifier_payload {
    std::vector<std::uint8_t> bytes;
};

struct disk_image_attachment_payload {
    strong url;
    bool read_only = false;
    NSInteger caching_mode = 0;
    NSInteger synchronization_mode = 1;
    int fd = -1;  ///< the image, open while the attachment lives (as VZ keeps it)
    disk_image_attachment_payload() = default;
    disk_image_attachment_payload(const disk_image_attachment_payload&) = delete;
    disk_image_attachment_payload& operator=(const disk_image_attachment_payload&) = delete;
    ~disk_image_attachment_payload();
};

/// VZStorageDeviceConfiguration, VZNetworkDeviceConfiguration (+ MAC), VZSerialPortConfiguration,
/// VZConsolePortConfiguration: the `attachment` property of Apple's base class.
struct attachment_payload {
    strong attachment;
};

struct network_device_payload {
    strong attachment;
    strong mac_address;
};

struct mac_address_payload {
    std::uint8_t octets[6] = {};
};

struct file_handle_network_payload {
    strong file_handle;
    NSInteger maximum_transmission_unit = 1500;  ///< Apple: default 1500, valid 1500...65535
    int socket_type = 0;                         ///< getsockopt(SO_TYPE) at -initWithFileHandle:
    int so_sndbuf = 0;
    int so_rcvbuf = 0;
    bool connected = false;  ///< getpeername() succeeded (Apple: "a connected datagram socket")
};

struct file_serial_attachment_payload {
    strong url;
    bool append = false;
    int fd = -1;
    file_serial_attachment_payload() = default;
    file_serial_attachment_payload(const file_serial_attachment_payload&) = delete;
    file_serial_attachment_payload& operator=(const file_serial_attachment_payload&) = delete;
    ~file_serial_attachment_payload();
};

struct file_handle_serial_attachment_payload {
    strong reading;
    strong writing;
};

struct console_device_payload {
    strong ports;  ///< the VZVirtioConsolePortConfigurationArray
};

struct console_port_array_payload {
    std::map<NSUInteger, strong> ports;
    std::uint32_t maximum_port_count = 0;  ///< 0: not set (the highest index + 1 is used)
};

struct console_port_payload {
    strong name;
    bool is_console = false;
};

struct shared_directory_payload {
    strong url;
    bool read_only = false;
};

struct single_share_payload {
    strong directory;
};

struct multiple_share_payload {
    strong directories;  ///< NSDictionary<NSString*, VZSharedDirectory*>
};

struct file_system_device_payload {
    strong tag;
    strong share;
};

/// The list properties of VZVirtualMachineConfiguration, by getter name.
inline constexpr const char* configuration_lists[] = {
    "storageDevices", "networkDevices",          "serialPorts",
    "consoleDevices", "entropyDevices",          "memoryBalloonDevices",
    "socketDevices",  "directorySharingDevices", "audioDevices",
    "keyboards",      "pointingDevices",         "graphicsDevices",
};

struct configuration_payload {
    strong boot_loader;
    strong platform;
    NSUInteger cpu_count = 1;
    std::uint64_t memory_size = 0;
    std::map<std::string, strong> lists;  ///< getter name -> NSArray
};

// --- helpers ----------------------------------------------------------------------------------

/// An NSError (+1) with NSLocalizedDescription and, when given, NSLocalizedFailureReason.
strong make_error(const std::string& domain, NSInteger code, const std::string& description,
                  const std::string& failure_reason = {});
/// VZErrorInvalidVirtualMachineConfiguration as VZ words it: "Invalid virtual machine
/// configuration. <reason>" with the reason as NSLocalizedFailureReason.
strong invalid_configuration(const std::string& reason);
/// An NSPOSIXErrorDomain error for errno `value`, about `path`.
strong posix_error(int value, const std::string& what, const std::string& path);

/// Reports `error` through an NSError** out-parameter (autoreleased, +0 for the caller, as
/// Cocoa does); does nothing when `out` is null.
void report(id* out, strong error);
/// A failing initialiser: releases the allocated object, reports, returns nil.
id fail_init(id self, id* out, strong error);
/// The injected failure for (class, selector), if one is pending (consumes it).
strong take_injected(const char* class_name, const char* selector);

/// The path of a file URL argument ("" for nil).
std::string path_of(id url);
/// A retained copy (-copy) of an NSCopying argument, or null for nil.
strong copied(id value);
strong retained(id value);

/// Random bytes for identifiers and MAC addresses.
void random_bytes(std::uint8_t* out, std::size_t n);

/// A message Apple marks NS_UNAVAILABLE (a compile error on a Mac): reports it like an uncaught
/// NSInvalidArgumentException and aborts.
[[noreturn]] void unavailable(id self, const char* selector);

/// The class name of an object ("" for nil).
std::string class_name_of(id obj);

/// Why a virtio-fs tag / a VZMultipleDirectoryShare name is invalid ("" when valid).
std::string directory_tag_problem(id tag);
std::string directory_name_problem(const std::string& name);

/// Per-area installers, called once by install().
void install_boot();
void install_platform();
void install_storage();
void install_network();
void install_console();
void install_sharing();
void install_devices();
void install_configuration();
/// The runtime side: VZVirtualMachine, its runtime devices and the guest (vz_sim_machine.cpp).
void install_runtime();

}  // namespace vmrt::objc::sim::vz::detail
