#include "hv/apple_vz/vz_plan.hpp"

#include <algorithm>
#include <map>

namespace vmrt::hv::vz {

namespace {

namespace fs = std::filesystem;

constexpr std::uint64_t mib = 1ull << 20;

// The Apple API each element uses and the first macOS that has it, from API_AVAILABLE in the
// macOS 14 SDK headers (Virtualization.framework/Headers/<class>.h).
constexpr apple_api linux_boot_loader_api{"VZLinuxBootLoader", "", 11};
constexpr apple_api efi_boot_loader_api{"VZEFIBootLoader", "", 13};
constexpr apple_api efi_variable_store_api{"VZEFIVariableStore", "", 13};
constexpr apple_api generic_platform_api{"VZGenericPlatformConfiguration", "", 12};
constexpr apple_api machine_identifier_api{"VZGenericMachineIdentifier", "", 13};
// The property arrived a version after its class.
constexpr apple_api platform_machine_identifier_api{"VZGenericPlatformConfiguration",
                                                    "setMachineIdentifier:", 13};
constexpr apple_api virtio_block_api{"VZVirtioBlockDeviceConfiguration", "", 11};
constexpr apple_api nvme_api{"VZNVMExpressControllerDeviceConfiguration", "", 14};
// The class is macOS 11; the initialiser that takes the caching and synchronisation modes is 12.
constexpr apple_api disk_image_modes_api{"VZDiskImageStorageDeviceAttachment",
                                         "initWithURL:readOnly:cachingMode:synchronizationMode:error:", 12};
constexpr apple_api virtio_network_api{"VZVirtioNetworkDeviceConfiguration", "", 11};
constexpr apple_api nat_api{"VZNATNetworkDeviceAttachment", "", 11};
constexpr apple_api file_handle_network_api{"VZFileHandleNetworkDeviceAttachment", "", 11};
constexpr apple_api console_serial_port_api{"VZVirtioConsoleDeviceSerialPortConfiguration", "", 11};
constexpr apple_api file_serial_api{"VZFileSerialPortAttachment", "initWithURL:append:error:", 11};
constexpr apple_api console_device_api{"VZVirtioConsoleDeviceConfiguration", "", 13};
constexpr apple_api console_port_api{"VZVirtioConsolePortConfiguration", "", 13};
constexpr apple_api file_handle_serial_api{"VZFileHandleSerialPortAttachment", "", 11};
constexpr apple_api entropy_api{"VZVirtioEntropyDeviceConfiguration", "", 11};
constexpr apple_api balloon_api{"VZVirtioTraditionalMemoryBalloonDeviceConfiguration", "", 11};
constexpr apple_api file_system_api{"VZVirtioFileSystemDeviceConfiguration", "", 12};
constexpr apple_api shared_directory_api{"VZSharedDirectory", "", 12};
constexpr apple_api single_share_api{"VZSingleDirectoryShare", "", 12};
constexpr apple_api multiple_share_api{"VZMultipleDirectoryShare", "", 12};
// VZLinuxRosettaDirectoryShare.h declares the class inside `#ifdef __arm64__`.
constexpr apple_api rosetta_api{"VZLinuxRosettaDirectoryShare", "", 13, true};
constexpr apple_api socket_api{"VZVirtioSocketDeviceConfiguration", "", 11};

// Apple: the tag "must be non-empty and less than 36 bytes when encoded in UTF-8"
// (+[VZVirtioFileSystemDeviceConfiguration validateTag:error:]); the spec allows 36.
constexpr std::size_t max_vz_tag_bytes = 35;
// VZ assigns the guest's CID itself; a Linux guest reads 3 (the first guest CID).
constexpr std::uint32_t vz_guest_cid = 3;

const std::string devices_reason = "Virtualization.framework cannot change a running VM's devices";

using refusal = std::optional<spec_error>;

std::string at(std::string_view list, std::size_t i) {
    return std::string(list) + "[" + std::to_string(i) + "]";
}

spec_error refuse(std::string field, std::string why) { return spec_error{std::move(field), std::move(why)}; }

void need(vz_plan& p, const apple_api& api, std::string field) {
    p.requirements.push_back(requirement{api, std::move(field)});
}

// What the host process is, rather than what the guest gets: refused before any device.
refusal plan_host(const vm_spec& s, vz_plan&) {
    if (s.netns)
        return refuse("netns", "macOS has no network namespaces; a VZ VM runs inside vmrt's own process "
                               "(Virtualization.framework), not in a VMM process that could be moved");
    return std::nullopt;
}

refusal plan_boot(const vm_spec& s, const fs::path& run_dir, vz_plan& p) {
    if (s.firmware)
        return refuse("firmware",
                      "Virtualization.framework boots UEFI guests with its own EFI ROM and takes no "
                      "firmware file; leave \"firmware\" unset");
    if (s.boot == boot_mode::uefi) {
        // VZEFIBootLoader has a variable store and nothing else: the OS comes from a disk.
        if (!s.kernel.empty())
            return refuse("kernel", "VZEFIBootLoader takes no kernel: a UEFI VM boots from its disks "
                                    "(use \"boot\": \"direct\" to boot a kernel)");
        if (s.initramfs)
            return refuse("initramfs", "VZEFIBootLoader takes no initramfs: a UEFI VM boots from its disks");
        if (s.cmdline)
            return refuse("cmdline", "VZEFIBootLoader takes no kernel command line: the guest's boot "
                                     "loader (on its disk) sets it");
        efi_boot_loader efi;
        if (s.efi_variable_store) {
            efi.variable_store = *s.efi_variable_store;
            efi.mode = efi_boot_loader::store_mode::open_or_create;
        } else {
            // As with QEMU: no store named, a fresh one for every boot.
            efi.variable_store = run_dir / "nvram";
            efi.mode = efi_boot_loader::store_mode::create_fresh;
        }
        p.boot_loader = std::move(efi);
        need(p, efi_boot_loader_api, "boot");
        need(p, efi_variable_store_api, s.efi_variable_store ? "efi_variable_store" : "boot");
        return std::nullopt;
    }
    if (s.efi_variable_store)
        return refuse("efi_variable_store", "an EFI variable store needs \"boot\": \"uefi\"");
    if (s.kernel.empty()) return refuse("kernel", "direct boot needs a kernel");
    p.boot_loader = linux_boot_loader{.kernel = s.kernel,
                                      .initial_ramdisk = s.initramfs,
                                      .command_line = s.cmdline.value_or(default_command_line)};
    need(p, linux_boot_loader_api, "boot");
    return std::nullopt;
}

// The decision and its reasons are in vz_plan.hpp ("The machine identifier").
refusal plan_platform(const vm_spec& s, vz_plan& p) {
    need(p, generic_platform_api, "");
    auto& platform = p.platform;
    if (s.machine_id) {
        // The bytes are opaque to vmrt: initWithDataRepresentation: returns nil for data that no
        // VZGenericMachineIdentifier produced, and the driver reports that against "machine_id".
        platform.source = generic_platform::identifier_source::from_spec;
        platform.data = *s.machine_id;
        need(p, machine_identifier_api, "machine_id");
        need(p, platform_machine_identifier_api, "machine_id");
    } else if (s.boot == boot_mode::uefi && s.efi_variable_store) {
        platform.source = generic_platform::identifier_source::load_or_create;
        platform.persist_file = machine_identifier_file(*s.efi_variable_store);
        need(p, machine_identifier_api, "efi_variable_store");
        need(p, platform_machine_identifier_api, "efi_variable_store");
    } else {
        // No requirement: on macOS 12 VZ picks the identity itself and there is nothing to
        // report; from 13 on the driver makes it and reports its bytes.
        platform.source = generic_platform::identifier_source::fresh_reported;
    }
    return std::nullopt;
}

refusal plan_cpu_memory(const vm_spec& s, vz_plan& p) {
    // No hotplug in VZ: a VM keeps the CPUs and memory it was configured with.
    if (s.max_cpus && *s.max_cpus > s.cpus)
        return refuse("max_cpus",
                      devices_reason + ": it has no vCPU hotplug, so max_cpus cannot exceed cpus");
    if (s.max_memory_mib && *s.max_memory_mib > s.memory_mib)
        return refuse("max_memory_mib", devices_reason +
                                            ": it has no memory hotplug, so max_memory_mib cannot exceed "
                                            "memory_mib (a balloon can lend memory back instead)");
    p.cpu_count = s.cpus;
    p.memory_size = s.memory_mib * mib;
    return std::nullopt;
}

refusal plan_balloon(const vm_spec& s, vz_plan& p) {
    if (!s.balloon) return std::nullopt;
    const auto& b = *s.balloon;
    // VZVirtioTraditionalMemoryBalloonDeviceConfiguration has no properties at all: the feature
    // bits it offers are VZ's choice. The defaults are accepted so that a balloon is usable at
    // all; a value that asks for something else cannot be promised.
    if (!b.deflate_on_oom)
        return refuse("balloon.deflate_on_oom", "Virtualization.framework's balloon device has no settings; "
                                                "vmrt cannot turn deflate-on-OOM off");
    if (b.free_page_reporting)
        return refuse("balloon.free_page_reporting", "Virtualization.framework's balloon device has no "
                                                     "settings; vmrt cannot turn free page reporting on");
    if (b.initial_mib >= s.memory_mib) return refuse("balloon.initial_mib", "must be less than memory_mib");
    memory_balloon balloon;
    if (b.initial_mib > 0) balloon.target_after_start_bytes = (s.memory_mib - b.initial_mib) * mib;
    p.balloon = balloon;
    need(p, balloon_api, "balloon");
    return std::nullopt;
}

// disk_cache -> (caching mode, synchronisation mode). The spec's names are QEMU's, so each is
// mapped to the VZ pair that keeps the same promise to the guest:
//   automatic    -> Automatic + Full: "the backend chooses" is VZ's own choice of caching, and
//                   guest flushes reach stable storage (VZ's default for -initWithURL:readOnly:error:).
//   none         -> Uncached + Full: no host page cache (QEMU: O_DIRECT), flushes honoured.
//   writeback    -> Cached + Full: host page cache, flushes honoured. Full (F_FULLFSYNC) rather
//                   than Fsync: on macOS fsync() leaves data in the drive's cache, while QEMU's
//                   writeback flush on Linux (fdatasync) empties it; Full keeps that promise.
//   writethrough -> refused: it promises that a write is stable once acknowledged, with no flush
//                   needed; VZ has no per-write synchronisation, only flush handling, so neither
//                   cached nor uncached mode keeps that promise.
//   unsafe       -> Cached + None: host page cache and guest flushes ignored, exactly QEMU's unsafe.
// Fsync is used by none of them: its guarantee (the drive's cache may lose flushed data) is
// weaker than every mode that honours flushes and stronger than unsafe's.
refusal map_cache(disk_cache cache, const std::string& field, storage_device& d) {
    using caching = disk_image_caching_mode;
    using sync = disk_image_synchronization_mode;
    switch (cache) {
    case disk_cache::automatic:
        d.caching_mode = caching::automatic;
        d.synchronization_mode = sync::full;
        return std::nullopt;
    case disk_cache::none:
        d.caching_mode = caching::uncached;
        d.synchronization_mode = sync::full;
        return std::nullopt;
    case disk_cache::writeback:
        d.caching_mode = caching::cached;
        d.synchronization_mode = sync::full;
        return std::nullopt;
    case disk_cache::unsafe:
        d.caching_mode = caching::cached;
        d.synchronization_mode = sync::none;
        return std::nullopt;
    case disk_cache::writethrough:
        break;
    }
    return refuse(field + ".cache", "Virtualization.framework cannot make every write synchronous "
                                    "(writethrough); use \"writeback\" (cached, guest flushes reach "
                                    "the disk) or \"none\" (uncached, guest flushes reach the disk)");
}

refusal add_disk(const disk_spec& disk, const std::string& field, vz_plan& p) {
    storage_device d{.field = field, .image = disk.path, .read_only = disk.read_only};
    if (auto e = map_cache(disk.cache, field, d)) return e;
    need(p, disk_image_modes_api, field);
    if (disk.interface == disk_interface::nvme) {
        d.controller = storage_controller::nvme;
        need(p, nvme_api, field + ".interface");
    } else {
        need(p, virtio_block_api, field);
    }
    p.storage_devices.push_back(std::move(d));
    return std::nullopt;
}

refusal plan_storage(const vm_spec& s, vz_plan& p) {
    // VZ attaches storageDevices in array order, so this is the guest's order: the root disk
    // first (/dev/vda when it is virtio), data disks in spec order, the seed ISO last so that it
    // never shifts a data disk's name (cloud-init finds it by its label anyway).
    if (s.root_disk)
        if (auto e = add_disk(*s.root_disk, "root_disk", p)) return e;
    for (std::size_t i = 0; i < s.data_disks.size(); ++i)
        if (auto e = add_disk(s.data_disks[i], at("data_disks", i), p)) return e;
    if (s.seed_iso) return add_disk(disk_spec{.path = *s.seed_iso, .read_only = true}, "seed_iso", p);
    return std::nullopt;
}

refusal plan_networks(const vm_spec& s, vz_plan& p) {
    auto macs = nic_macs(s);
    if (!macs) return macs.error();
    for (std::size_t i = 0; i < s.networks.size(); ++i) {
        const auto& nic = s.networks[i];
        const std::string field = at("networks", i);
        network_device dev{.field = field, .mac = (*macs)[i], .attachment = nat_attachment{}};
        switch (nic.kind) {
        case nic_kind::tap:
            return refuse(field + ".kind", "macOS has no TAP devices; use \"user\" (VZ's NAT) or a datagram "
                                           "socket (fd-dgram, or a port of the manager's switch)");
        case nic_kind::fd_stream:
            return refuse(field + ".kind", "VZFileHandleNetworkDeviceAttachment needs a datagram socket "
                                           "(one Ethernet frame per datagram); use fd-dgram");
        case nic_kind::user:
            if (nic.isolated)
                return refuse(field + ".isolated", "VZ's NAT attachment always reaches the host and "
                                                   "beyond; it cannot be isolated");
            need(p, nat_api, field);
            break;
        case nic_kind::fd_dgram:
            if (nic.fd < 0 && nic.switch_network.empty())
                return refuse(field + ".fd", "a datagram NIC needs an inherited socket or a switch network");
            dev.attachment = file_handle_attachment{.fd = nic.fd,
                                                    .switch_network = nic.switch_network,
                                                    .so_sndbuf = file_handle_so_sndbuf,
                                                    .so_rcvbuf = file_handle_so_rcvbuf};
            need(p, file_handle_network_api, field);
            break;
        }
        need(p, virtio_network_api, field);
        p.network_devices.push_back(std::move(dev));
    }
    return std::nullopt;
}

refusal plan_consoles(const vm_spec& s, const fs::path& run_dir, vz_plan& p) {
    if (s.serial_log.empty())
        return refuse("serial_log", "the guest console needs a file (the manager sets one when the spec has "
                                    "none)");
    p.serial = serial_console{.log = s.serial_log, .append = true};
    need(p, console_serial_port_api, "serial_log");
    need(p, file_serial_api, "serial_log");
    if (s.control_channel) {
        // The same socket name as QEMU's, so vm_info::control_socket looks alike on both.
        p.control = control_port{.name = control_port_name, .socket = run_dir / "control.sock"};
        need(p, console_device_api, "control_channel");
        need(p, console_port_api, "control_channel");
        need(p, file_handle_serial_api, "control_channel");
    }
    need(p, entropy_api, "");
    return std::nullopt;
}

shared_directory shared(const shared_dir_spec& d, std::size_t i) {
    return shared_directory{
        .field = at("shared_dirs", i), .host_path = d.host_path, .read_only = d.read_only};
}

// One VZVirtioFileSystemDeviceConfiguration per tag, in the order tags first appear. A tag with
// share names becomes a VZMultipleDirectoryShare (validate_spec has made sure that then every
// entry of the tag has a distinct name; the checks below keep the plan sound on its own).
refusal plan_shares(const vm_spec& s, vz_plan& p) {
    std::map<std::string, std::vector<std::size_t>> entries;  // tag -> indexes in spec order
    std::vector<std::string> tag_order;
    for (std::size_t i = 0; i < s.shared_dirs.size(); ++i) {
        const auto& d = s.shared_dirs[i];
        const std::string field = at("shared_dirs", i);
        if (d.tag.size() > max_vz_tag_bytes)
            return refuse(field + ".tag",
                          "Virtualization.framework takes tags shorter than 36 bytes; found " +
                              std::to_string(d.tag.size()) + " bytes");
        if (s.rosetta && d.tag == rosetta_tag)
            return refuse(field + ".tag",
                          "the tag \"rosetta\" belongs to the Rosetta share (\"rosetta\": true)");
        auto& list = entries[d.tag];
        if (list.empty()) tag_order.push_back(d.tag);
        list.push_back(i);
    }
    for (const auto& tag : tag_order) {
        const auto& list = entries[tag];
        const auto& first = s.shared_dirs[list.front()];
        directory_sharing_device dev{.tag = tag, .share = rosetta_share{}};
        const std::string first_field = at("shared_dirs", list.front());
        if (list.size() == 1 && first.share_name.empty()) {
            dev.share = single_directory_share{shared(first, list.front())};
            need(p, single_share_api, first_field);
        } else {
            multiple_directory_share multi;
            for (auto i : list) {
                const auto& d = s.shared_dirs[i];
                const std::string field = at("shared_dirs", i);
                if (d.share_name.empty())
                    return refuse(field + ".share_name", "the tag \"" + tag +
                                                             "\" holds several directories: each needs a "
                                                             "share_name");
                const bool taken =
                    std::any_of(multi.directories.begin(), multi.directories.end(),
                                [&](const auto& named) { return named.first == d.share_name; });
                if (taken)
                    return refuse(field + ".share_name", "the name \"" + d.share_name +
                                                             "\" is used twice in the tag \"" + tag + "\"");
                multi.directories.emplace_back(d.share_name, shared(d, i));
            }
            dev.share = std::move(multi);
            need(p, multiple_share_api, first_field);
        }
        need(p, file_system_api, first_field);
        need(p, shared_directory_api, first_field);
        p.directory_sharing_devices.push_back(std::move(dev));
    }
    if (s.rosetta) {
        // Whether Rosetta is installed (+[VZLinuxRosettaDirectoryShare availability]) is a fact of
        // the host at launch time; the driver checks it then.
        p.directory_sharing_devices.push_back(
            directory_sharing_device{.tag = rosetta_tag, .share = rosetta_share{}});
        need(p, file_system_api, "rosetta");
        need(p, rosetta_api, "rosetta");
    }
    return std::nullopt;
}

refusal plan_vsock(const vm_spec& s, vz_plan& p) {
    if (!s.vsock) return std::nullopt;
    if (s.vsock->cid != vz_guest_cid)
        return refuse("vsock.cid", "Virtualization.framework assigns the guest's CID itself (3); leave "
                                   "\"cid\" at 3");
    if (!s.vsock->socket.empty())
        return refuse("vsock.socket", "Virtualization.framework has no host-side socket file for vsock; omit "
                                      "\"socket\" and connect with vmrt (vm_manager vsock_connect)");
    p.socket = socket_device{};
    need(p, socket_api, "vsock");
    return std::nullopt;
}

}  // namespace

int vz_plan::minimum_macos() const noexcept {
    int version = 11;
    for (const auto& r : requirements) version = std::max(version, r.api.macos);
    return version;
}

bool vz_plan::needs_apple_silicon() const noexcept {
    return std::any_of(requirements.begin(), requirements.end(),
                       [](const requirement& r) { return r.api.apple_silicon_only; });
}

fs::path machine_identifier_file(const fs::path& efi_variable_store) {
    fs::path file = efi_variable_store;
    file += ".machine-id";
    return file;
}

boost::system::result<vz_plan, spec_error> make_vz_plan(const vm_spec& spec, const fs::path& run_dir) {
    vz_plan p;
    if (auto e = plan_host(spec, p)) return *e;
    if (auto e = plan_boot(spec, run_dir, p)) return *e;
    if (auto e = plan_platform(spec, p)) return *e;
    if (auto e = plan_cpu_memory(spec, p)) return *e;
    if (auto e = plan_balloon(spec, p)) return *e;
    if (auto e = plan_storage(spec, p)) return *e;
    if (auto e = plan_networks(spec, p)) return *e;
    if (auto e = plan_shares(spec, p)) return *e;
    if (auto e = plan_vsock(spec, p)) return *e;
    if (auto e = plan_consoles(spec, run_dir, p)) return *e;
    return p;
}

capability_set vz_capabilities() {
    capability_set caps("not implemented by the apple-vz backend");
    caps.allow(operation::start)
        .allow(operation::stop_graceful)  // -requestStopWithError:, then -stopWithCompletionHandler:
        .allow(operation::kill)           // -stopWithCompletionHandler: (the guest is not asked)
        .allow(operation::pause)
        .allow(operation::resume)
        .allow(operation::snapshot)  // macOS 14, Apple silicon: save_restore_api
        .allow(operation::restore)
        .allow(operation::resize_balloon)  // targetVirtualMachineMemorySize
        .allow(operation::vsock_connect)   // -[VZVirtioSocketDevice connectToPort:completionHandler:]
        .deny(operation::resize_cpus, devices_reason)
        .deny(operation::resize_memory, devices_reason)
        .deny(operation::hotplug_disk, devices_reason)
        .deny(operation::hotplug_net, devices_reason)
        .deny(operation::hotplug_fs, devices_reason)
        .deny(operation::counters, "Virtualization.framework reports no per-device counters");
    return caps;
}

}  // namespace vmrt::hv::vz
