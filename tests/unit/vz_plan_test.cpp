// The Virtualization.framework plan of a spec (lib/hv/apple_vz/vz_plan.hpp): for every spec field,
// either the VZ element it becomes (with Apple's enum values and the macOS version it needs) or
// a refusal naming the field. Pure data: nothing here needs a Mac, and nothing here proves that
// a Mac accepts the plan; the driver's tests against the simulated VZ object model do the rest.
#include "hv/apple_vz/vz_plan.hpp"

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <functional>
#include <string>
#include <vector>

namespace {

namespace vz = vmrt::hv::vz;
namespace fs = std::filesystem;

const fs::path run_dir = "/run/vmrt/vm1";
constexpr std::uint64_t mib = 1ull << 20;

vmrt::vm_spec base() {
    vmrt::vm_spec s;
    s.name = "vm1";
    s.kernel = "/boot/Image";
    s.serial_log = "/var/log/vm1.serial";
    s.cpus = 2;
    s.memory_mib = 1024;
    return s;
}

vz::vz_plan plan_of(const vmrt::vm_spec& s) {
    auto p = vz::make_vz_plan(s, run_dir);
    BOOST_TEST_REQUIRE(p.has_value(), "refused: " << (p ? "" : p.error().field + ": " + p.error().message));
    return *p;
}

/// The requirement for `class_name` (and `selector`) asked for by `field`, or null.
const vz::requirement* find_requirement(const vz::vz_plan& p, std::string_view class_name,
                                        const std::string& field, std::string_view selector = "") {
    auto it = std::find_if(p.requirements.begin(), p.requirements.end(), [&](const vz::requirement& r) {
        return r.api.class_name == class_name && r.field == field && r.api.selector == selector;
    });
    return it == p.requirements.end() ? nullptr : &*it;
}

void expect_requirement(const vz::vz_plan& p, std::string_view class_name, const std::string& field,
                        int macos, std::string_view selector = "") {
    const auto* r = find_requirement(p, class_name, field, selector);
    BOOST_TEST_REQUIRE(r != nullptr,
                       "no requirement " << class_name << " " << selector << " for \"" << field << "\"");
    BOOST_TEST(r->api.macos == macos);
}

std::int64_t raw(vz::disk_image_caching_mode m) { return static_cast<std::int64_t>(m); }
std::int64_t raw(vz::disk_image_synchronization_mode m) { return static_cast<std::int64_t>(m); }

struct refused_row {
    std::string what;
    std::function<void(vmrt::vm_spec&)> change;
    std::string field;
    std::string fragment;  ///< part of the reason
};

struct honoured_row {
    std::string field;
    std::function<void(vmrt::vm_spec&)> change;
    std::function<void(const vz::vz_plan&)> check;
};

vmrt::shared_dir_spec share(const char* path, const char* tag, const char* name = "",
                            bool read_only = false) {
    return vmrt::shared_dir_spec{.host_path = path, .tag = tag, .read_only = read_only, .share_name = name};
}

}  // namespace

BOOST_AUTO_TEST_SUITE(vz_plan_test)

BOOST_AUTO_TEST_CASE(apples_enum_values) {
    // VZDiskImageStorageDeviceAttachment.h (macOS 12+ SDK).
    BOOST_TEST(raw(vz::disk_image_caching_mode::automatic) == 0);
    BOOST_TEST(raw(vz::disk_image_caching_mode::uncached) == 1);
    BOOST_TEST(raw(vz::disk_image_caching_mode::cached) == 2);
    BOOST_TEST(raw(vz::disk_image_synchronization_mode::full) == 1);
    BOOST_TEST(raw(vz::disk_image_synchronization_mode::fsync) == 2);
    BOOST_TEST(raw(vz::disk_image_synchronization_mode::none) == 3);
    BOOST_TEST(vz::efi_variable_store_allow_overwrite == 1u);
}

BOOST_AUTO_TEST_CASE(every_field_vz_cannot_honour_is_refused_by_name) {
    const std::vector<refused_row> rows = {
        {"a firmware file", [](auto& s) { s.firmware = "/fw/OVMF.fd"; }, "firmware", "EFI ROM"},
        {"uefi with a kernel", [](auto& s) { s.boot = vmrt::boot_mode::uefi; }, "kernel",
         "boots from its disks"},
        {"uefi with an initramfs",
         [](auto& s) {
             s.boot = vmrt::boot_mode::uefi;
             s.kernel.clear();
             s.initramfs = "/boot/initrd";
         },
         "initramfs", "no initramfs"},
        {"uefi with a command line",
         [](auto& s) {
             s.boot = vmrt::boot_mode::uefi;
             s.kernel.clear();
             s.cmdline = "quiet";
         },
         "cmdline", "command line"},
        {"direct boot with a variable store", [](auto& s) { s.efi_variable_store = "/vms/vm1/nvram"; },
         "efi_variable_store", "uefi"},
        {"direct boot without a kernel", [](auto& s) { s.kernel.clear(); }, "kernel", "needs a kernel"},
        {"vCPU hotplug room", [](auto& s) { s.max_cpus = 4; }, "max_cpus",
         "cannot change a running VM's devices"},
        {"memory hotplug room", [](auto& s) { s.max_memory_mib = 2048; }, "max_memory_mib",
         "cannot change a running VM's devices"},
        {"balloon without deflate-on-oom",
         [](auto& s) { s.balloon = vmrt::balloon_spec{.deflate_on_oom = false}; }, "balloon.deflate_on_oom",
         "no settings"},
        {"balloon with free page reporting",
         [](auto& s) { s.balloon = vmrt::balloon_spec{.free_page_reporting = true}; },
         "balloon.free_page_reporting", "no settings"},
        {"balloon as large as the memory",
         [](auto& s) { s.balloon = vmrt::balloon_spec{.initial_mib = 1024}; }, "balloon.initial_mib",
         "less than memory_mib"},
        {"root disk writethrough",
         [](auto& s) {
             s.root_disk = vmrt::disk_spec{.path = "/r.img", .cache = vmrt::disk_cache::writethrough};
         },
         "root_disk.cache", "writethrough"},
        {"data disk writethrough",
         [](auto& s) {
             s.data_disks.push_back({.path = "/d0.img"});
             s.data_disks.push_back({.path = "/d1.img", .cache = vmrt::disk_cache::writethrough});
         },
         "data_disks[1].cache", "writethrough"},
        {"a TAP NIC",
         [](auto& s) { s.networks.push_back({.kind = vmrt::nic_kind::tap, .tap_name = "tap0"}); },
         "networks[0].kind", "no TAP"},
        {"a stream socket NIC",
         [](auto& s) { s.networks.push_back({.kind = vmrt::nic_kind::fd_stream, .fd = 5}); },
         "networks[0].kind", "datagram"},
        {"a stream port of the switch",
         [](auto& s) {
             s.networks.push_back({.kind = vmrt::nic_kind::user});
             s.networks.push_back({.kind = vmrt::nic_kind::fd_stream, .switch_network = "lan"});
         },
         "networks[1].kind", "datagram"},
        {"an isolated NAT NIC",
         [](auto& s) { s.networks.push_back({.kind = vmrt::nic_kind::user, .isolated = true}); },
         "networks[0].isolated", "always reaches the host"},
        {"a datagram NIC without a socket",
         [](auto& s) { s.networks.push_back({.kind = vmrt::nic_kind::fd_dgram}); }, "networks[0].fd",
         "inherited socket"},
        {"two NICs with one MAC",
         [](auto& s) {
             s.networks.push_back({.kind = vmrt::nic_kind::user, .mac = vmrt::default_mac("vm1", 1)});
             s.networks.push_back({.kind = vmrt::nic_kind::user});
         },
         "networks[1].mac", "already used"},
        {"a 36-byte tag",
         [](auto& s) { s.shared_dirs.push_back(share("/srv", std::string(36, 't').c_str())); },
         "shared_dirs[0].tag", "shorter than 36 bytes"},
        {"a share tagged rosetta beside Rosetta",
         [](auto& s) {
             s.rosetta = true;
             s.shared_dirs.push_back(share("/srv", "rosetta"));
         },
         "shared_dirs[0].tag", "Rosetta share"},
        {"a repeated tag without share names",
         [](auto& s) {
             s.shared_dirs.push_back(share("/srv/a", "data", "a"));
             s.shared_dirs.push_back(share("/srv/b", "data"));
         },
         "shared_dirs[1].share_name", "each needs a share_name"},
        {"a share name used twice in a tag",
         [](auto& s) {
             s.shared_dirs.push_back(share("/srv/a", "data", "same"));
             s.shared_dirs.push_back(share("/srv/b", "data", "same"));
         },
         "shared_dirs[1].share_name", "used twice"},
        {"a vsock CID of our choosing", [](auto& s) { s.vsock = vmrt::vsock_spec{.cid = 7}; }, "vsock.cid",
         "assigns the guest's CID"},
        {"a vsock host socket",
         [](auto& s) { s.vsock = vmrt::vsock_spec{.cid = 3, .socket = "/run/vm1.vsock"}; }, "vsock.socket",
         "no host-side socket"},
        {"a network namespace", [](auto& s) { s.netns = "ns1"; }, "netns", "no network namespaces"},
        {"no console file", [](auto& s) { s.serial_log.clear(); }, "serial_log", "needs a file"},
    };
    for (const auto& row : rows) {
        BOOST_TEST_CONTEXT(row.what) {
            auto s = base();
            row.change(s);
            auto p = vz::make_vz_plan(s, run_dir);
            BOOST_TEST_REQUIRE(p.has_error());
            BOOST_TEST(p.error().field == row.field);
            BOOST_TEST(p.error().message.find(row.fragment) != std::string::npos,
                       "\"" << p.error().message << "\" lacks \"" << row.fragment << "\"");
        }
    }
}

BOOST_AUTO_TEST_CASE(every_field_vz_can_honour_becomes_its_element) {
    using caching = vz::disk_image_caching_mode;
    using sync = vz::disk_image_synchronization_mode;
    const auto disk_modes = [](vmrt::disk_cache cache, caching c, sync y) {
        return honoured_row{
            "root_disk.cache=" + std::string(to_string(cache)),
            [cache](auto& s) { s.root_disk = vmrt::disk_spec{.path = "/r.img", .cache = cache}; },
            [c, y](const vz::vz_plan& p) {
                BOOST_TEST_REQUIRE(p.storage_devices.size() == 1u);
                BOOST_TEST(raw(p.storage_devices[0].caching_mode) == raw(c));
                BOOST_TEST(raw(p.storage_devices[0].synchronization_mode) == raw(y));
            }};
    };
    const std::vector<honoured_row> rows = {
        {"name",
         [](auto& s) {
             s.name = "other";
             s.networks.push_back({.kind = vmrt::nic_kind::user});
         },
         [](const vz::vz_plan& p) {
             BOOST_TEST(p.network_devices.at(0).mac.to_string() == vmrt::default_mac("other", 0).to_string());
         }},
        // The namespace and the backend choice are the manager's: the plan is made as for any VM.
        {"namespace", [](auto& s) { s.namespace_ = "team-a"; },
         [](const vz::vz_plan& p) {
             BOOST_TEST(p.cpu_count == 2u);
         }},
        {"backend", [](auto& s) { s.backend = vmrt::backend_kind::apple_vz; },
         [](const vz::vz_plan& p) {
             BOOST_TEST(p.cpu_count == 2u);
         }},
        {"boot=direct, kernel", [](auto&) {},
         [](const vz::vz_plan& p) {
             const auto* direct = std::get_if<vz::linux_boot_loader>(&p.boot_loader);
             BOOST_TEST_REQUIRE(direct != nullptr);
             BOOST_TEST(direct->kernel == "/boot/Image");
             BOOST_TEST(!direct->initial_ramdisk.has_value());
             BOOST_TEST(direct->command_line == "console=hvc0");  // the backend's default
             expect_requirement(p, "VZLinuxBootLoader", "boot", 11);
         }},
        {"initramfs", [](auto& s) { s.initramfs = "/boot/initrd.img"; },
         [](const vz::vz_plan& p) {
             BOOST_TEST(std::get<vz::linux_boot_loader>(p.boot_loader).initial_ramdisk.value_or("") ==
                        "/boot/initrd.img");
         }},
        {"cmdline", [](auto& s) { s.cmdline = "console=hvc0 root=/dev/vda rw"; },
         [](const vz::vz_plan& p) {
             BOOST_TEST(std::get<vz::linux_boot_loader>(p.boot_loader).command_line ==
                        "console=hvc0 root=/dev/vda rw");
         }},
        {"boot=uefi",
         [](auto& s) {
             s.boot = vmrt::boot_mode::uefi;
             s.kernel.clear();
         },
         [](const vz::vz_plan& p) {
             const auto* efi = std::get_if<vz::efi_boot_loader>(&p.boot_loader);
             BOOST_TEST_REQUIRE(efi != nullptr);
             // A fresh store per boot, as with QEMU; nothing in the run dir is kept.
             BOOST_TEST(efi->variable_store == run_dir / "nvram");
             BOOST_TEST((efi->mode == vz::efi_boot_loader::store_mode::create_fresh));
             BOOST_TEST((p.platform.source == vz::generic_platform::identifier_source::fresh_reported));
             expect_requirement(p, "VZEFIBootLoader", "boot", 13);
             expect_requirement(p, "VZEFIVariableStore", "boot", 13);
         }},
        {"efi_variable_store",
         [](auto& s) {
             s.boot = vmrt::boot_mode::uefi;
             s.kernel.clear();
             s.efi_variable_store = "/vms/vm1/nvram";
         },
         [](const vz::vz_plan& p) {
             const auto& efi = std::get<vz::efi_boot_loader>(p.boot_loader);
             BOOST_TEST(efi.variable_store == "/vms/vm1/nvram");
             BOOST_TEST((efi.mode == vz::efi_boot_loader::store_mode::open_or_create));
             // The machine identity is kept beside the store.
             BOOST_TEST((p.platform.source == vz::generic_platform::identifier_source::load_or_create));
             BOOST_TEST(p.platform.persist_file == "/vms/vm1/nvram.machine-id");
             expect_requirement(p, "VZEFIVariableStore", "efi_variable_store", 13);
             expect_requirement(p, "VZGenericMachineIdentifier", "efi_variable_store", 13);
         }},
        {"machine_id",
         [](auto& s) {
             s.machine_id = std::vector<std::uint8_t>{1, 2, 3, 250};
         },
         [](const vz::vz_plan& p) {
             BOOST_TEST((p.platform.source == vz::generic_platform::identifier_source::from_spec));
             BOOST_TEST(p.platform.data == (std::vector<std::uint8_t>{1, 2, 3, 250}),
                        boost::test_tools::per_element());
             expect_requirement(p, "VZGenericMachineIdentifier", "machine_id", 13);
             expect_requirement(p, "VZGenericPlatformConfiguration", "machine_id", 13,
                                "setMachineIdentifier:");
         }},
        {"cpus", [](auto& s) { s.cpus = 6; },
         [](const vz::vz_plan& p) {
             BOOST_TEST(p.cpu_count == 6u);
         }},
        {"max_cpus=cpus", [](auto& s) { s.max_cpus = 2; },
         [](const vz::vz_plan& p) {
             BOOST_TEST(p.cpu_count == 2u);
         }},
        {"memory_mib", [](auto& s) { s.memory_mib = 3072; },
         [](const vz::vz_plan& p) {
             BOOST_TEST(p.memory_size == 3072 * mib);
         }},
        {"max_memory_mib=memory_mib", [](auto& s) { s.max_memory_mib = 1024; },
         [](const vz::vz_plan& p) {
             BOOST_TEST(p.memory_size == 1024 * mib);
         }},
        {"balloon (defaults)", [](auto& s) { s.balloon = vmrt::balloon_spec{}; },
         [](const vz::vz_plan& p) {
             BOOST_TEST_REQUIRE(p.balloon.has_value());
             BOOST_TEST(!p.balloon->target_after_start_bytes.has_value());
             expect_requirement(p, "VZVirtioTraditionalMemoryBalloonDeviceConfiguration", "balloon", 11);
         }},
        {"balloon.initial_mib", [](auto& s) { s.balloon = vmrt::balloon_spec{.initial_mib = 256}; },
         [](const vz::vz_plan& p) {
             BOOST_TEST_REQUIRE(p.balloon.has_value());
             BOOST_TEST(p.balloon->target_after_start_bytes.value_or(0) == 768 * mib);
         }},
        {"root_disk.path, read_only",
         [](auto& s) { s.root_disk = vmrt::disk_spec{.path = "/vms/root.img", .read_only = true}; },
         [](const vz::vz_plan& p) {
             BOOST_TEST_REQUIRE(p.storage_devices.size() == 1u);
             const auto& d = p.storage_devices[0];
             BOOST_TEST(d.field == "root_disk");
             BOOST_TEST(d.image == "/vms/root.img");
             BOOST_TEST(d.read_only);
             BOOST_TEST((d.controller == vz::storage_controller::virtio_block));
             expect_requirement(p, "VZVirtioBlockDeviceConfiguration", "root_disk", 11);
             expect_requirement(p, "VZDiskImageStorageDeviceAttachment", "root_disk", 12,
                                "initWithURL:readOnly:cachingMode:synchronizationMode:error:");
         }},
        disk_modes(vmrt::disk_cache::automatic, caching::automatic, sync::full),
        disk_modes(vmrt::disk_cache::none, caching::uncached, sync::full),
        disk_modes(vmrt::disk_cache::writeback, caching::cached, sync::full),
        disk_modes(vmrt::disk_cache::unsafe, caching::cached, sync::none),
        {"root_disk.interface=nvme",
         [](auto& s) {
             s.root_disk = vmrt::disk_spec{.path = "/r.img", .interface = vmrt::disk_interface::nvme};
         },
         [](const vz::vz_plan& p) {
             BOOST_TEST((p.storage_devices.at(0).controller == vz::storage_controller::nvme));
             expect_requirement(p, "VZNVMExpressControllerDeviceConfiguration", "root_disk.interface", 14);
             BOOST_TEST(!find_requirement(p, "VZVirtioBlockDeviceConfiguration", "root_disk"));
         }},
        {"data_disks (in order, after the root disk)",
         [](auto& s) {
             s.root_disk = vmrt::disk_spec{.path = "/r.img"};
             s.data_disks.push_back({.path = "/d0.img", .cache = vmrt::disk_cache::none});
             s.data_disks.push_back(
                 {.path = "/d1.img", .read_only = true, .interface = vmrt::disk_interface::nvme});
         },
         [](const vz::vz_plan& p) {
             BOOST_TEST_REQUIRE(p.storage_devices.size() == 3u);
             BOOST_TEST(p.storage_devices[1].field == "data_disks[0]");
             BOOST_TEST(p.storage_devices[1].image == "/d0.img");
             BOOST_TEST(raw(p.storage_devices[1].caching_mode) == 1);
             BOOST_TEST(p.storage_devices[2].field == "data_disks[1]");
             BOOST_TEST(p.storage_devices[2].read_only);
             BOOST_TEST((p.storage_devices[2].controller == vz::storage_controller::nvme));
         }},
        {"seed_iso (read-only, last)",
         [](auto& s) {
             s.seed_iso = "/vms/seed.iso";
             s.data_disks.push_back({.path = "/d0.img"});
         },
         [](const vz::vz_plan& p) {
             BOOST_TEST_REQUIRE(p.storage_devices.size() == 2u);
             const auto& seed = p.storage_devices[1];
             BOOST_TEST(seed.field == "seed_iso");
             BOOST_TEST(seed.image == "/vms/seed.iso");
             BOOST_TEST(seed.read_only);
             BOOST_TEST((seed.controller == vz::storage_controller::virtio_block));
         }},
        {"networks: none asked, none made", [](auto&) {},
         [](const vz::vz_plan& p) {
             BOOST_TEST(p.network_devices.empty());
             BOOST_TEST(!find_requirement(p, "VZNATNetworkDeviceAttachment", "networks[0]"));
         }},
        {"networks[].kind=user", [](auto& s) { s.networks.push_back({.kind = vmrt::nic_kind::user}); },
         [](const vz::vz_plan& p) {
             BOOST_TEST_REQUIRE(p.network_devices.size() == 1u);
             BOOST_TEST(std::holds_alternative<vz::nat_attachment>(p.network_devices[0].attachment));
             BOOST_TEST(p.network_devices[0].mac.to_string() == vmrt::default_mac("vm1", 0).to_string());
             expect_requirement(p, "VZNATNetworkDeviceAttachment", "networks[0]", 11);
             expect_requirement(p, "VZVirtioNetworkDeviceConfiguration", "networks[0]", 11);
         }},
        {"networks[].kind=fd-dgram, fd",
         [](auto& s) { s.networks.push_back({.kind = vmrt::nic_kind::fd_dgram, .fd = 7}); },
         [](const vz::vz_plan& p) {
             const auto& a = std::get<vz::file_handle_attachment>(p.network_devices.at(0).attachment);
             BOOST_TEST(a.fd == 7);
             BOOST_TEST(a.switch_network.empty());
             BOOST_TEST(a.so_sndbuf == 1 << 20);
             BOOST_TEST(a.so_rcvbuf == 4 << 20);
             BOOST_TEST(a.so_rcvbuf >= 2 * a.so_sndbuf);  // Apple's minimum; 4x is its recommendation
             expect_requirement(p, "VZFileHandleNetworkDeviceAttachment", "networks[0]", 11);
         }},
        {"networks[].switch_network",
         [](auto& s) { s.networks.push_back({.kind = vmrt::nic_kind::fd_dgram, .switch_network = "lan"}); },
         [](const vz::vz_plan& p) {
             const auto& a = std::get<vz::file_handle_attachment>(p.network_devices.at(0).attachment);
             BOOST_TEST(a.fd == -1);  // the manager makes the port at start
             BOOST_TEST(a.switch_network == "lan");
             BOOST_TEST(a.so_rcvbuf == 4 * a.so_sndbuf);
         }},
        {"networks[].mac",
         [](auto& s) {
             s.networks.push_back(
                 {.kind = vmrt::nic_kind::user, .mac = vmrt::mac_address::parse("02:aa:bb:cc:dd:ee")});
             s.networks.push_back({.kind = vmrt::nic_kind::user});
         },
         [](const vz::vz_plan& p) {
             BOOST_TEST_REQUIRE(p.network_devices.size() == 2u);
             BOOST_TEST(p.network_devices[0].mac.to_string() == "02:aa:bb:cc:dd:ee");
             BOOST_TEST(p.network_devices[1].mac.to_string() == vmrt::default_mac("vm1", 1).to_string());
             BOOST_TEST(p.network_devices[1].field == "networks[1]");
         }},
        {"shared_dirs: one directory per tag",
         [](auto& s) {
             s.shared_dirs.push_back(share("/srv/www", "www", "", true));
             s.shared_dirs.push_back(share("/srv/logs", "logs"));
         },
         [](const vz::vz_plan& p) {
             BOOST_TEST_REQUIRE(p.directory_sharing_devices.size() == 2u);
             BOOST_TEST(p.directory_sharing_devices[0].tag == "www");
             const auto& single = std::get<vz::single_directory_share>(p.directory_sharing_devices[0].share);
             BOOST_TEST(single.directory.host_path == "/srv/www");
             BOOST_TEST(single.directory.read_only);
             BOOST_TEST(single.directory.field == "shared_dirs[0]");
             BOOST_TEST(!std::get<vz::single_directory_share>(p.directory_sharing_devices[1].share)
                             .directory.read_only);
             expect_requirement(p, "VZVirtioFileSystemDeviceConfiguration", "shared_dirs[0]", 12);
             expect_requirement(p, "VZSingleDirectoryShare", "shared_dirs[1]", 12);
         }},
        {"shared_dirs[].share_name: several directories behind one tag",
         [](auto& s) {
             s.shared_dirs.push_back(share("/srv/a", "data", "alpha"));
             s.shared_dirs.push_back(share("/srv/www", "www"));
             s.shared_dirs.push_back(share("/srv/b", "data", "beta", true));
         },
         [](const vz::vz_plan& p) {
             BOOST_TEST_REQUIRE(p.directory_sharing_devices.size() == 2u);  // one device per tag
             BOOST_TEST(p.directory_sharing_devices[0].tag == "data");
             const auto& multi = std::get<vz::multiple_directory_share>(p.directory_sharing_devices[0].share);
             BOOST_TEST_REQUIRE(multi.directories.size() == 2u);
             BOOST_TEST(multi.directories[0].first == "alpha");
             BOOST_TEST(multi.directories[0].second.host_path == "/srv/a");
             BOOST_TEST(multi.directories[1].first == "beta");
             BOOST_TEST(multi.directories[1].second.read_only);
             BOOST_TEST(multi.directories[1].second.field == "shared_dirs[2]");
             BOOST_TEST(
                 std::holds_alternative<vz::single_directory_share>(p.directory_sharing_devices[1].share));
             expect_requirement(p, "VZMultipleDirectoryShare", "shared_dirs[0]", 12);
         }},
        {"shared_dirs[].share_name on a tag of its own",
         [](auto& s) { s.shared_dirs.push_back(share("/srv/a", "data", "alpha")); },
         [](const vz::vz_plan& p) {
             // A name asks for a subdirectory, so even one directory goes into a multiple share.
             const auto& multi =
                 std::get<vz::multiple_directory_share>(p.directory_sharing_devices.at(0).share);
             BOOST_TEST_REQUIRE(multi.directories.size() == 1u);
             BOOST_TEST(multi.directories[0].first == "alpha");
         }},
        {"rosetta",
         [](auto& s) {
             s.rosetta = true;
             s.shared_dirs.push_back(share("/srv", "srv"));
         },
         [](const vz::vz_plan& p) {
             BOOST_TEST_REQUIRE(p.directory_sharing_devices.size() == 2u);
             BOOST_TEST(p.directory_sharing_devices[1].tag == "rosetta");
             BOOST_TEST(std::holds_alternative<vz::rosetta_share>(p.directory_sharing_devices[1].share));
             expect_requirement(p, "VZLinuxRosettaDirectoryShare", "rosetta", 13);
             BOOST_TEST(p.needs_apple_silicon());
         }},
        {"vsock (cid 3)", [](auto& s) { s.vsock = vmrt::vsock_spec{}; },
         [](const vz::vz_plan& p) {
             BOOST_TEST(p.socket.has_value());
             expect_requirement(p, "VZVirtioSocketDeviceConfiguration", "vsock", 11);
         }},
        {"control_channel", [](auto& s) { s.control_channel = true; },
         [](const vz::vz_plan& p) {
             BOOST_TEST_REQUIRE(p.control.has_value());
             BOOST_TEST(p.control->name == "org.vmrt.control");
             BOOST_TEST(p.control->socket == run_dir / "control.sock");
             expect_requirement(p, "VZVirtioConsoleDeviceConfiguration", "control_channel", 13);
             expect_requirement(p, "VZVirtioConsolePortConfiguration", "control_channel", 13);
             BOOST_TEST(p.minimum_macos() == 13);
         }},
        {"serial_log", [](auto& s) { s.serial_log = "/logs/console.log"; },
         [](const vz::vz_plan& p) {
             BOOST_TEST(p.serial.log == "/logs/console.log");
             BOOST_TEST(p.serial.append);
             expect_requirement(p, "VZFileSerialPortAttachment", "serial_log", 11,
                                "initWithURL:append:error:");
             expect_requirement(p, "VZVirtioConsoleDeviceSerialPortConfiguration", "serial_log", 11);
         }},
    };
    for (const auto& row : rows) {
        BOOST_TEST_CONTEXT(row.field) {
            auto s = base();
            row.change(s);
            row.check(plan_of(s));
        }
    }
}

BOOST_AUTO_TEST_CASE(what_every_vm_gets) {
    const auto p = plan_of(base());
    BOOST_TEST(p.entropy);
    expect_requirement(p, "VZVirtioEntropyDeviceConfiguration", "", 11);
    expect_requirement(p, "VZGenericPlatformConfiguration", "", 12);
    BOOST_TEST(!p.balloon.has_value());
    BOOST_TEST(!p.socket.has_value());
    BOOST_TEST(!p.control.has_value());
    BOOST_TEST(p.directory_sharing_devices.empty());
    BOOST_TEST(p.storage_devices.empty());
    BOOST_TEST((p.platform.source == vz::generic_platform::identifier_source::fresh_reported));
    BOOST_TEST(p.minimum_macos() == 12);  // the generic platform
    BOOST_TEST(!p.needs_apple_silicon());
}

BOOST_AUTO_TEST_CASE(a_direct_boot_linux_vm_with_every_device) {
    auto s = base();
    s.initramfs = "/boot/initrd.img";
    s.cpus = 4;
    s.memory_mib = 4096;
    s.balloon = vmrt::balloon_spec{.initial_mib = 1024};
    s.root_disk = vmrt::disk_spec{.path = "/vms/vm1/root.img", .cache = vmrt::disk_cache::writeback};
    s.data_disks.push_back({.path = "/vms/vm1/data.img", .cache = vmrt::disk_cache::none});
    s.data_disks.push_back({.path = "/vms/vm1/scratch.img", .cache = vmrt::disk_cache::unsafe});
    s.seed_iso = "/vms/vm1/seed.iso";
    s.networks.push_back({.kind = vmrt::nic_kind::user});
    s.networks.push_back({.kind = vmrt::nic_kind::fd_dgram, .switch_network = "backend"});
    s.shared_dirs.push_back(share("/srv/code", "code", "", true));
    s.shared_dirs.push_back(share("/srv/in", "io", "in", true));
    s.shared_dirs.push_back(share("/srv/out", "io", "out"));
    s.vsock = vmrt::vsock_spec{};
    s.control_channel = true;

    const auto p = plan_of(s);
    const auto& direct = std::get<vz::linux_boot_loader>(p.boot_loader);
    BOOST_TEST(direct.kernel == "/boot/Image");
    BOOST_TEST(direct.initial_ramdisk.value_or("") == "/boot/initrd.img");
    BOOST_TEST(direct.command_line == "console=hvc0");
    BOOST_TEST(p.cpu_count == 4u);
    BOOST_TEST(p.memory_size == 4096 * mib);
    BOOST_TEST(p.balloon->target_after_start_bytes.value_or(0) == 3072 * mib);

    BOOST_TEST_REQUIRE(p.storage_devices.size() == 4u);
    std::vector<std::string> order;
    for (const auto& d : p.storage_devices) order.push_back(d.field);
    BOOST_TEST(order == (std::vector<std::string>{"root_disk", "data_disks[0]", "data_disks[1]", "seed_iso"}),
               boost::test_tools::per_element());
    BOOST_TEST(raw(p.storage_devices[0].caching_mode) == 2);          // writeback: cached
    BOOST_TEST(raw(p.storage_devices[0].synchronization_mode) == 1);  // full
    BOOST_TEST(raw(p.storage_devices[1].caching_mode) == 1);          // none: uncached
    BOOST_TEST(raw(p.storage_devices[2].synchronization_mode) == 3);  // unsafe: no sync
    BOOST_TEST(p.storage_devices[3].read_only);

    BOOST_TEST_REQUIRE(p.network_devices.size() == 2u);
    BOOST_TEST(std::holds_alternative<vz::nat_attachment>(p.network_devices[0].attachment));
    BOOST_TEST(std::get<vz::file_handle_attachment>(p.network_devices[1].attachment).switch_network ==
               "backend");
    BOOST_TEST(p.network_devices[0].mac.to_string() != p.network_devices[1].mac.to_string());

    BOOST_TEST_REQUIRE(p.directory_sharing_devices.size() == 2u);
    BOOST_TEST(p.directory_sharing_devices[0].tag == "code");
    BOOST_TEST(p.directory_sharing_devices[1].tag == "io");
    BOOST_TEST(
        std::get<vz::multiple_directory_share>(p.directory_sharing_devices[1].share).directories.size() ==
        2u);
    BOOST_TEST(p.socket.has_value());
    BOOST_TEST(p.control.has_value());
    BOOST_TEST(p.serial.log == "/var/log/vm1.serial");
    BOOST_TEST(p.entropy);
    BOOST_TEST(p.minimum_macos() == 13);  // the named console port
    BOOST_TEST(!p.needs_apple_silicon());
}

BOOST_AUTO_TEST_CASE(a_uefi_vm_with_a_persisted_variable_store_and_machine_identity) {
    auto s = base();
    s.boot = vmrt::boot_mode::uefi;
    s.kernel.clear();
    s.efi_variable_store = "/vms/vm1/nvram";
    s.root_disk = vmrt::disk_spec{.path = "/vms/vm1/disk.img", .interface = vmrt::disk_interface::nvme};
    s.networks.push_back({.kind = vmrt::nic_kind::user});

    auto p = plan_of(s);
    const auto& efi = std::get<vz::efi_boot_loader>(p.boot_loader);
    BOOST_TEST(efi.variable_store == "/vms/vm1/nvram");
    BOOST_TEST((efi.mode == vz::efi_boot_loader::store_mode::open_or_create));
    BOOST_TEST((p.platform.source == vz::generic_platform::identifier_source::load_or_create));
    BOOST_TEST(p.platform.persist_file == vz::machine_identifier_file("/vms/vm1/nvram"));
    BOOST_TEST(p.minimum_macos() == 14);  // NVMe
    expect_requirement(p, "VZNVMExpressControllerDeviceConfiguration", "root_disk.interface", 14);

    // With the identity pinned in the spec, nothing is persisted by vmrt.
    s.machine_id = std::vector<std::uint8_t>(48, 0x5a);
    p = plan_of(s);
    BOOST_TEST((p.platform.source == vz::generic_platform::identifier_source::from_spec));
    BOOST_TEST(p.platform.data.size() == 48u);
    BOOST_TEST(p.platform.persist_file.empty());
    BOOST_TEST(std::get<vz::efi_boot_loader>(p.boot_loader).variable_store == "/vms/vm1/nvram");
}

BOOST_AUTO_TEST_CASE(requirements_name_apples_classes_and_versions) {
    auto s = base();
    s.rosetta = true;
    s.root_disk = vmrt::disk_spec{.path = "/r.img"};
    const auto p = plan_of(s);
    for (const auto& r : p.requirements) {
        BOOST_TEST_CONTEXT(r.api.class_name << " " << r.api.selector) {
            BOOST_TEST(r.api.class_name.starts_with("VZ"));
            BOOST_TEST(r.api.macos >= 11);
            BOOST_TEST(r.api.macos <= 14);
        }
    }
    BOOST_TEST(p.minimum_macos() == 13);
    BOOST_TEST(p.needs_apple_silicon());
    BOOST_TEST(vz::save_restore_api.macos == 14);
    BOOST_TEST(vz::save_restore_api.apple_silicon_only);
}

BOOST_AUTO_TEST_CASE(capabilities) {
    const auto caps = vz::vz_capabilities();
    for (auto op :
         {vmrt::operation::start, vmrt::operation::stop_graceful, vmrt::operation::kill,
          vmrt::operation::pause, vmrt::operation::resume, vmrt::operation::snapshot,
          vmrt::operation::restore, vmrt::operation::resize_balloon, vmrt::operation::vsock_connect})
        BOOST_TEST(caps.supports(op), to_string(op));
    for (auto op :
         {vmrt::operation::resize_cpus, vmrt::operation::resize_memory, vmrt::operation::hotplug_disk,
          vmrt::operation::hotplug_net, vmrt::operation::hotplug_fs}) {
        BOOST_TEST(!caps.supports(op), to_string(op));
        BOOST_TEST(caps.get(op).why_not == "Virtualization.framework cannot change a running VM's devices");
    }
    BOOST_TEST(!caps.supports(vmrt::operation::counters));
    BOOST_TEST(!caps.get(vmrt::operation::counters).why_not.empty());
}

BOOST_AUTO_TEST_SUITE_END()
