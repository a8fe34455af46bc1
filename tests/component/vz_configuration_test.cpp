// The VZ configuration builder (lib/hv/apple_vz/vz_configuration.*) against the simulated
// Virtualization.framework (tests/sim/vz): specs go through make_vz_plan and build_vz_configuration,
// and the object graph is read back through Apple's getters (sim::vz::inspect_configuration). Real
// files (kernel, raw and qcow2 images, EFI variable stores, identifier files) and real sockets
// (socket pairs for NICs and the control port) are used; the Objective-C objects are the simulation's.
// Every test checks that no simulated object outlives it. Nothing here ran on a Mac.
#include "hv/apple_vz/vz_configuration.hpp"
#include "sim/objc/sim.hpp"
#include "sim/vz/vz_sim.hpp"
#include "support/test_support.hpp"

#include <vmrt/io/unique_fd.hpp>

#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
namespace vz = vmrt::hv::vz;
namespace sim = vmrt::objc::sim;
namespace simvz = vmrt::objc::sim::vz;
using vmrt::io::unique_fd;
using vmrt::test::read_file;
using vmrt::test::write_file;

constexpr std::uint64_t mib = 1ull << 20;

/// A temp dir, the simulation installed, and the live-object count at the start: every test ends
/// with the simulation's objects back at that count (nothing leaked, on success or failure paths).
struct vz_env {
    vmrt::test::temp_dir dir;
    long live_at_start = 0;
    vz_env() {
        simvz::install();
        live_at_start = sim::live_instances_total();
    }
    ~vz_env() { BOOST_TEST(sim::live_instances_total() == live_at_start, "simulated objects leaked"); }
    fs::path file(const std::string& name, const std::string& content) const {
        write_file(dir / name, content);
        return dir / name;
    }
    /// A raw disk image: 64 KiB of zeros.
    fs::path raw_image(const std::string& name) const { return file(name, std::string(64 * 1024, '\0')); }
    fs::path directory(const std::string& name) const {
        fs::create_directories(dir / name);
        return dir / name;
    }
};

struct socket_pair {
    unique_fd vm;    ///< the end given to VZ (a dup of it)
    unique_fd peer;  ///< the host's end
    explicit socket_pair(int type) {
        int fds[2];
        if (::socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, fds) != 0)
            throw std::runtime_error(std::string("socketpair: ") + std::strerror(errno));
        vm.reset(fds[0]);
        peer.reset(fds[1]);
    }
};

vmrt::vm_spec direct_spec(const vz_env& env) {
    vmrt::vm_spec s;
    s.name = "vm1";
    s.kernel = env.file("Image", "kernel");
    s.initramfs = env.file("initrd.img", "initramfs");
    s.cmdline = "console=hvc0 root=/dev/vda";
    s.cpus = 2;
    s.memory_mib = 1024;
    s.serial_log = env.dir / "serial.log";
    return s;
}

vz::vz_plan plan_of(const vmrt::vm_spec& s, const vz_env& env) {
    auto p = vz::make_vz_plan(s, env.dir / "run");
    if (!p) throw std::runtime_error("the plan refused " + p.error().field + ": " + p.error().message);
    return *p;
}

vz::vz_configuration build(const vmrt::vm_spec& s, const vz_env& env, const vz::vz_build_resources& r = {}) {
    return vz::build_vz_configuration(plan_of(s, env), r);
}

/// The vmrt::error `f` throws (fails the test if it throws none).
vmrt::error error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const vmrt::error& e) {
        return e;
    }
    throw std::runtime_error("expected a vmrt::error, got none");
}

bool contains(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

int socket_int(int fd, int option) {
    int value = 0;
    socklen_t size = sizeof value;
    BOOST_REQUIRE(::getsockopt(fd, SOL_SOCKET, option, &value, &size) == 0);
    return value;
}

bool fd_open(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

vmrt::mac_address mac(const char* text) { return *vmrt::mac_address::parse(text); }

}  // namespace

BOOST_AUTO_TEST_SUITE(vz_configuration_test)

BOOST_AUTO_TEST_CASE(direct_boot_builds_every_device_of_the_spec) {
    vz_env env;
    socket_pair nic_socket(SOCK_DGRAM);
    socket_pair switch_port(SOCK_DGRAM);
    socket_pair control(SOCK_STREAM);

    vmrt::vm_spec s = direct_spec(env);
    s.root_disk = vmrt::disk_spec{.path = env.raw_image("root.img"), .cache = vmrt::disk_cache::writeback};
    s.data_disks.push_back(vmrt::disk_spec{.path = env.raw_image("nvme.img"),
                                           .cache = vmrt::disk_cache::none,
                                           .interface = vmrt::disk_interface::nvme});
    s.data_disks.push_back(vmrt::disk_spec{
        .path = env.raw_image("data.img"), .read_only = true, .cache = vmrt::disk_cache::unsafe});
    s.seed_iso = env.raw_image("seed.iso");
    s.networks.push_back(vmrt::nic_spec{.kind = vmrt::nic_kind::user, .mac = mac("02:00:00:00:00:01")});
    s.networks.push_back(vmrt::nic_spec{
        .kind = vmrt::nic_kind::fd_dgram, .fd = nic_socket.vm.get(), .mac = mac("02:00:00:00:00:02")});
    s.networks.push_back(vmrt::nic_spec{
        .kind = vmrt::nic_kind::fd_dgram, .mac = mac("02:00:00:00:00:03"), .switch_network = "lan"});
    s.control_channel = true;
    s.balloon = vmrt::balloon_spec{.initial_mib = 256};
    s.shared_dirs.push_back(
        vmrt::shared_dir_spec{.host_path = env.directory("src"), .tag = "src", .read_only = true});
    s.shared_dirs.push_back(
        vmrt::shared_dir_spec{.host_path = env.directory("cache"), .tag = "work", .share_name = "cache"});
    s.shared_dirs.push_back(vmrt::shared_dir_spec{
        .host_path = env.directory("docs"), .tag = "work", .read_only = true, .share_name = "docs"});
    s.rosetta = true;
    s.vsock = vmrt::vsock_spec{};

    vz::vz_build_resources resources;
    resources.switch_port_fds[2] = switch_port.vm.get();
    resources.control_port_fd = control.vm.get();
    vz::vz_configuration built = build(s, env, resources);
    BOOST_REQUIRE(built.configuration);
    const simvz::configuration_view v = simvz::inspect_configuration(built.configuration.get());

    BOOST_TEST(v.boot_loader.class_name == "VZLinuxBootLoader");
    BOOST_TEST(v.boot_loader.kernel == s.kernel.string());
    BOOST_TEST(v.boot_loader.initial_ramdisk == s.initramfs->string());
    BOOST_TEST(v.boot_loader.command_line == "console=hvc0 root=/dev/vda");
    BOOST_TEST(v.cpu_count == 2u);
    BOOST_TEST(v.memory_size == 1024 * mib);

    // Direct boot without machine_id on macOS 13+: a fresh identity for this boot, reported.
    BOOST_TEST(v.platform.class_name == "VZGenericPlatformConfiguration");
    BOOST_TEST((built.identifier_origin == vz::machine_identifier_origin::fresh));
    BOOST_TEST(!built.machine_identifier.empty());
    BOOST_TEST(v.platform.machine_identifier == built.machine_identifier);
    BOOST_TEST(!built.efi_variable_store_created);

    // Storage in guest order with Apple's enum values (cached/uncached/automatic 2/1/0, full/none 1/3).
    BOOST_REQUIRE(v.storage_devices.size() == 4u);
    const auto& root = v.storage_devices[0];
    BOOST_TEST(root.class_name == "VZVirtioBlockDeviceConfiguration");
    BOOST_TEST(root.attachment_class == "VZDiskImageStorageDeviceAttachment");
    BOOST_TEST(root.url == s.root_disk->path.string());
    BOOST_TEST(!root.read_only);
    BOOST_TEST(root.caching_mode == 2);
    BOOST_TEST(root.synchronization_mode == 1);
    const auto& nvme = v.storage_devices[1];
    BOOST_TEST(nvme.class_name == "VZNVMExpressControllerDeviceConfiguration");
    BOOST_TEST(nvme.url == s.data_disks[0].path.string());
    BOOST_TEST(nvme.caching_mode == 1);
    BOOST_TEST(nvme.synchronization_mode == 1);
    const auto& data = v.storage_devices[2];
    BOOST_TEST(data.class_name == "VZVirtioBlockDeviceConfiguration");
    BOOST_TEST(data.read_only);
    BOOST_TEST(data.caching_mode == 2);
    BOOST_TEST(data.synchronization_mode == 3);
    const auto& seed = v.storage_devices[3];
    BOOST_TEST(seed.url == s.seed_iso->string());
    BOOST_TEST(seed.read_only);
    BOOST_TEST(seed.caching_mode == 0);

    // NICs: the spec's MACs, NAT only where asked, file handles on dups of the datagram sockets.
    BOOST_REQUIRE(v.network_devices.size() == 3u);
    BOOST_TEST(v.network_devices[0].class_name == "VZVirtioNetworkDeviceConfiguration");
    BOOST_TEST(v.network_devices[0].mac == "02:00:00:00:00:01");
    BOOST_TEST(v.network_devices[0].attachment_class == "VZNATNetworkDeviceAttachment");
    const auto& inherited = v.network_devices[1];
    BOOST_TEST(inherited.mac == "02:00:00:00:00:02");
    BOOST_TEST(inherited.attachment_class == "VZFileHandleNetworkDeviceAttachment");
    BOOST_TEST(inherited.socket_type == SOCK_DGRAM);
    BOOST_TEST(inherited.fd != nic_socket.vm.get());  // a dup, owned by the NSFileHandle
    BOOST_TEST(inherited.maximum_transmission_unit == 1500);
    BOOST_TEST(inherited.so_rcvbuf >= 2 * inherited.so_sndbuf);
    const auto& switched = v.network_devices[2];
    BOOST_TEST(switched.mac == "02:00:00:00:00:03");
    BOOST_TEST(switched.attachment_class == "VZFileHandleNetworkDeviceAttachment");
    BOOST_TEST(switched.fd != switch_port.vm.get());
    // Apple's rule on the real sockets: SO_RCVBUF at least twice SO_SNDBUF.
    for (int fd : {nic_socket.vm.get(), switch_port.vm.get()})
        BOOST_TEST(socket_int(fd, SO_RCVBUF) >= 2 * socket_int(fd, SO_SNDBUF));
    // Frames sent on the handle VZ got arrive at the caller's peer end: the same socket.
    BOOST_REQUIRE(::write(inherited.fd, "frame", 5) == 5);
    char frame[8] = {};
    BOOST_TEST(::read(nic_socket.peer.get(), frame, sizeof frame) == 5);

    // The console log, appended to (the manager follows it from the start).
    BOOST_REQUIRE(v.serial_ports.size() == 1u);
    BOOST_TEST(v.serial_ports[0].class_name == "VZVirtioConsoleDeviceSerialPortConfiguration");
    BOOST_TEST(v.serial_ports[0].attachment.class_name == "VZFileSerialPortAttachment");
    BOOST_TEST(v.serial_ports[0].attachment.url == s.serial_log.string());
    BOOST_TEST(v.serial_ports[0].attachment.append);
    BOOST_TEST(fs::exists(s.serial_log));

    // The control port: port 0 of its own virtio console device, named, on one handle for both ways.
    BOOST_REQUIRE(v.console_devices.size() == 1u);
    BOOST_TEST(v.console_devices[0].class_name == "VZVirtioConsoleDeviceConfiguration");
    BOOST_TEST(v.console_devices[0].maximum_port_count == 1u);
    BOOST_REQUIRE(v.console_devices[0].ports.size() == 1u);
    const auto& port = v.console_devices[0].ports[0];
    BOOST_TEST(port.index == 0u);
    BOOST_TEST(port.class_name == "VZVirtioConsolePortConfiguration");
    BOOST_TEST(port.name == "org.vmrt.control");
    BOOST_TEST(!port.is_console);
    BOOST_TEST(port.attachment.class_name == "VZFileHandleSerialPortAttachment");
    BOOST_TEST(port.attachment.same_handle);
    BOOST_TEST(port.attachment.read_fd != control.vm.get());
    BOOST_REQUIRE(::write(port.attachment.write_fd, "ping\n", 5) == 5);
    char line[8] = {};
    BOOST_TEST(::read(control.peer.get(), line, sizeof line) == 5);

    BOOST_TEST(v.entropy_devices == std::vector<std::string>{"VZVirtioEntropyDeviceConfiguration"});
    BOOST_TEST(v.memory_balloon_devices ==
               std::vector<std::string>{"VZVirtioTraditionalMemoryBalloonDeviceConfiguration"});
    BOOST_TEST(v.socket_devices == std::vector<std::string>{"VZVirtioSocketDeviceConfiguration"});

    // Shares, one device per tag in order of first use, Rosetta last.
    BOOST_REQUIRE(v.directory_sharing_devices.size() == 3u);
    const auto& single = v.directory_sharing_devices[0];
    BOOST_TEST(single.class_name == "VZVirtioFileSystemDeviceConfiguration");
    BOOST_TEST(single.tag == "src");
    BOOST_TEST(single.share.class_name == "VZSingleDirectoryShare");
    BOOST_REQUIRE(single.share.directory.has_value());
    BOOST_TEST(single.share.directory->url == (env.dir / "src").string());
    BOOST_TEST(single.share.directory->read_only);
    const auto& multiple = v.directory_sharing_devices[1];
    BOOST_TEST(multiple.tag == "work");
    BOOST_TEST(multiple.share.class_name == "VZMultipleDirectoryShare");
    BOOST_REQUIRE(multiple.share.directories.size() == 2u);
    BOOST_TEST(multiple.share.directories.at("cache").url == (env.dir / "cache").string());
    BOOST_TEST(!multiple.share.directories.at("cache").read_only);
    BOOST_TEST(multiple.share.directories.at("docs").url == (env.dir / "docs").string());
    BOOST_TEST(multiple.share.directories.at("docs").read_only);
    const auto& rosetta = v.directory_sharing_devices[2];
    BOOST_TEST(rosetta.tag == "rosetta");
    BOOST_TEST(rosetta.share.class_name == "VZLinuxRosettaDirectoryShare");

    // Released, the configuration closes the descriptors it was given (dups) and nothing else.
    const int vz_fds[] = {inherited.fd, switched.fd, port.attachment.read_fd};
    built.configuration.reset();
    for (int fd : vz_fds) BOOST_TEST(!fd_open(fd));
    for (int fd : {nic_socket.vm.get(), switch_port.vm.get(), control.vm.get()}) BOOST_TEST(fd_open(fd));
}

BOOST_AUTO_TEST_CASE(a_minimal_spec_gets_no_device_it_did_not_ask_for) {
    vz_env env;
    vz::vz_configuration built = build(direct_spec(env), env);
    const auto v = simvz::inspect_configuration(built.configuration.get());
    BOOST_TEST(v.storage_devices.empty());
    BOOST_TEST(v.network_devices.empty());  // no forced NAT NIC
    BOOST_TEST(v.console_devices.empty());
    BOOST_TEST(v.memory_balloon_devices.empty());
    BOOST_TEST(v.socket_devices.empty());
    BOOST_TEST(v.directory_sharing_devices.empty());
    BOOST_TEST(v.entropy_devices.size() == 1u);
    BOOST_TEST(v.serial_ports.size() == 1u);
}

BOOST_AUTO_TEST_CASE(a_kept_efi_store_is_created_once_and_its_identity_persists) {
    vz_env env;
    vmrt::vm_spec s;
    s.name = "uefi1";
    s.boot = vmrt::boot_mode::uefi;
    s.efi_variable_store = env.dir / "vm.nvram";
    s.root_disk = vmrt::disk_spec{.path = env.raw_image("root.img")};
    s.serial_log = env.dir / "serial.log";
    const fs::path id_file = vz::machine_identifier_file(*s.efi_variable_store);

    vz::vz_configuration first = build(s, env);
    BOOST_TEST(first.efi_variable_store_created);
    BOOST_TEST(read_file(*s.efi_variable_store).starts_with(std::string(simvz::efi_variable_store_magic)));
    BOOST_TEST((first.identifier_origin == vz::machine_identifier_origin::created));
    const std::string persisted = read_file(id_file);
    BOOST_TEST(persisted == std::string(first.machine_identifier.begin(), first.machine_identifier.end()));
    BOOST_TEST(((fs::status(id_file).permissions() & fs::perms::all) ==
                (fs::perms::owner_read | fs::perms::owner_write)));
    const auto v1 = simvz::inspect_configuration(first.configuration.get());
    BOOST_TEST(v1.boot_loader.class_name == "VZEFIBootLoader");
    BOOST_TEST(v1.boot_loader.variable_store == s.efi_variable_store->string());
    BOOST_TEST(v1.platform.machine_identifier == first.machine_identifier);
    first.configuration.reset();

    // The store is written by the guest's firmware: the second boot must open it, not replace it.
    vmrt::test::append_file(*s.efi_variable_store, "variables the guest set");
    vz::vz_configuration second = build(s, env);
    BOOST_TEST(!second.efi_variable_store_created);
    BOOST_TEST(contains(read_file(*s.efi_variable_store), "variables the guest set"));
    BOOST_TEST((second.identifier_origin == vz::machine_identifier_origin::loaded));
    BOOST_TEST(second.machine_identifier == first.machine_identifier);
    const auto v2 = simvz::inspect_configuration(second.configuration.get());
    BOOST_TEST(v2.platform.machine_identifier == first.machine_identifier);
    BOOST_TEST(v2.boot_loader.variable_store == s.efi_variable_store->string());
}

BOOST_AUTO_TEST_CASE(a_uefi_vm_without_a_store_gets_a_fresh_one_and_identity_each_boot) {
    vz_env env;
    vmrt::vm_spec s;
    s.name = "uefi2";
    s.boot = vmrt::boot_mode::uefi;
    s.serial_log = env.dir / "serial.log";
    fs::create_directories(env.dir / "run");
    const fs::path store = env.dir / "run" / "nvram";

    vz::vz_configuration first = build(s, env);
    BOOST_TEST(first.efi_variable_store_created);
    BOOST_TEST((first.identifier_origin == vz::machine_identifier_origin::fresh));
    vmrt::test::append_file(store, "left by the first boot");
    first.configuration.reset();

    vz::vz_configuration second = build(s, env);  // AllowOverwrite: the old store is replaced
    BOOST_TEST(second.efi_variable_store_created);
    BOOST_TEST(!contains(read_file(store), "left by the first boot"));
    BOOST_TEST((second.identifier_origin == vz::machine_identifier_origin::fresh));
    BOOST_TEST(second.machine_identifier != first.machine_identifier);
    BOOST_TEST(!fs::exists(vz::machine_identifier_file(store)));  // nothing promises persistence
}

BOOST_AUTO_TEST_CASE(the_spec_machine_id_is_used_as_is_and_bad_bytes_are_refused) {
    vz_env env;
    vmrt::vm_spec s = direct_spec(env);
    const std::vector<std::uint8_t> reported = build(s, env).machine_identifier;

    s.machine_id = reported;
    vz::vz_configuration pinned = build(s, env);
    BOOST_TEST((pinned.identifier_origin == vz::machine_identifier_origin::from_spec));
    BOOST_TEST(pinned.machine_identifier == reported);
    BOOST_TEST(simvz::inspect_configuration(pinned.configuration.get()).platform.machine_identifier ==
               reported);

    s.machine_id = std::vector<std::uint8_t>{1, 2, 3, 4};
    vmrt::error e = error_of([&] { build(s, env); });
    BOOST_TEST((e.code() == vmrt::errc::invalid_spec));
    BOOST_TEST(e.diag().field == "machine_id");
}

BOOST_AUTO_TEST_CASE(a_corrupt_identifier_file_is_refused_before_anything_is_written) {
    vz_env env;
    vmrt::vm_spec s;
    s.name = "uefi3";
    s.boot = vmrt::boot_mode::uefi;
    s.efi_variable_store = env.dir / "vm.nvram";
    s.serial_log = env.dir / "serial.log";
    write_file(vz::machine_identifier_file(*s.efi_variable_store), "not an identifier");
    vmrt::error e = error_of([&] { build(s, env); });
    BOOST_TEST((e.code() == vmrt::errc::invalid_spec));
    BOOST_TEST(e.diag().field == "efi_variable_store");
    BOOST_TEST(!fs::exists(*s.efi_variable_store));
}

BOOST_AUTO_TEST_CASE(an_older_macos_is_refused_naming_the_field_and_the_version) {
    vz_env env;
    struct row {
        int macos;
        bool apple_silicon;
        std::function<void(vmrt::vm_spec&)> change;
        std::string field;
        std::string api;
        std::string version;
    };
    const std::vector<row> rows = {
        {12, true,
         [&](vmrt::vm_spec& s) {
             s.boot = vmrt::boot_mode::uefi;
             s.kernel.clear();
             s.initramfs.reset();
             s.cmdline.reset();
             s.efi_variable_store = env.dir / "refused.nvram";
         },
         "boot", "VZEFIBootLoader", "macOS 13 or later"},
        {12, true, [](vmrt::vm_spec& s) { s.control_channel = true; }, "control_channel",
         "VZVirtioConsoleDeviceConfiguration", "macOS 13 or later"},
        {12, true, [](vmrt::vm_spec& s) { s.machine_id = std::vector<std::uint8_t>(32, 1); }, "machine_id",
         "VZGenericMachineIdentifier", "macOS 13 or later"},
        {13, true,
         [&](vmrt::vm_spec& s) {
             s.data_disks.push_back(
                 vmrt::disk_spec{.path = env.raw_image("n.img"), .interface = vmrt::disk_interface::nvme});
         },
         "data_disks[0].interface", "VZNVMExpressControllerDeviceConfiguration", "macOS 14 or later"},
        {11, true,
         [&](vmrt::vm_spec& s) {
             s.shared_dirs.push_back(vmrt::shared_dir_spec{.host_path = env.directory("d"), .tag = "d"});
         },
         "", "VZGenericPlatformConfiguration", "macOS 12 or later"},
        {14, false, [](vmrt::vm_spec& s) { s.rosetta = true; }, "rosetta", "VZLinuxRosettaDirectoryShare",
         "macOS 13 or later on Apple silicon"},
    };
    for (const row& r : rows) {
        BOOST_TEST_CONTEXT("macOS " << r.macos << ", " << r.api) {
            vmrt::vm_spec s = direct_spec(env);
            r.change(s);
            simvz::scoped_macos_version older(r.macos, r.apple_silicon);
            vmrt::error e = error_of([&] { build(s, env); });
            BOOST_TEST((e.code() == vmrt::errc::unsupported));
            BOOST_TEST(e.diag().field == r.field);
            BOOST_TEST(contains(e.diag().message, r.api), e.diag().message);
            BOOST_TEST(contains(e.diag().message, r.version), e.diag().message);
        }
    }
    BOOST_TEST(!fs::exists(env.dir / "refused.nvram"));  // refused before anything was written
}

BOOST_AUTO_TEST_CASE(macos_12_builds_what_it_has_and_has_no_identity_to_report) {
    vz_env env;
    vmrt::vm_spec s = direct_spec(env);
    s.shared_dirs.push_back(vmrt::shared_dir_spec{.host_path = env.directory("d"), .tag = "d"});
    simvz::scoped_macos_version monterey(12);
    vz::vz_configuration built = build(s, env);
    BOOST_TEST((built.identifier_origin == vz::machine_identifier_origin::none));
    BOOST_TEST(built.machine_identifier.empty());
    const auto v = simvz::inspect_configuration(built.configuration.get());
    BOOST_TEST(!v.platform.has_machine_identifier);
    BOOST_TEST(v.console_devices.empty());
    BOOST_TEST(v.directory_sharing_devices.size() == 1u);
}

BOOST_AUTO_TEST_CASE(rosetta_that_is_not_installed_or_not_supported_is_refused_clearly) {
    vz_env env;
    vmrt::vm_spec s = direct_spec(env);
    s.rosetta = true;
    {
        simvz::scoped_rosetta_availability missing(simvz::rosetta_availability::not_installed);
        vmrt::error e = error_of([&] { build(s, env); });
        BOOST_TEST((e.code() == vmrt::errc::unsupported));
        BOOST_TEST(e.diag().field == "rosetta");
        BOOST_TEST(contains(e.diag().message, "not installed"), e.diag().message);
        BOOST_TEST(contains(e.diag().message, "softwareupdate --install-rosetta"), e.diag().message);
    }
    {
        simvz::scoped_rosetta_availability unsupported(simvz::rosetta_availability::not_supported);
        vmrt::error e = error_of([&] { build(s, env); });
        BOOST_TEST((e.code() == vmrt::errc::unsupported));
        BOOST_TEST(e.diag().field == "rosetta");
        BOOST_TEST(contains(e.diag().message, "cannot share Rosetta"), e.diag().message);
    }
    {
        // Installed, yet -initWithError: fails: VZ's own words reach the caller.
        simvz::scoped_failure fails(
            "VZLinuxRosettaDirectoryShare",
            "initWithError:", {.domain = "VZErrorDomain", .code = 10, .description = "Rosetta is busy."});
        vmrt::error e = error_of([&] { build(s, env); });
        BOOST_TEST((e.code() == vmrt::errc::unsupported));  // VZErrorNotSupported
        BOOST_TEST(e.diag().field == "rosetta");
        BOOST_TEST(contains(e.diag().message, "VZErrorDomain 10 Rosetta is busy."), e.diag().message);
        BOOST_TEST(fails.remaining() == 0);
    }
}

BOOST_AUTO_TEST_CASE(a_missing_or_qcow2_disk_is_refused_naming_its_field) {
    vz_env env;
    {
        vmrt::vm_spec s = direct_spec(env);
        s.data_disks.push_back(vmrt::disk_spec{.path = env.dir / "absent.img"});
        vmrt::error e = error_of([&] { build(s, env); });
        BOOST_TEST((e.code() == (vmrt::error_code{ENOENT, boost::system::system_category()})));
        BOOST_TEST(e.diag().field == "data_disks[0]");
        BOOST_TEST(contains(e.diag().message, (env.dir / "absent.img").string()), e.diag().message);
    }
    {
        vmrt::vm_spec s = direct_spec(env);
        s.root_disk = vmrt::disk_spec{.path = env.file("root.qcow2", std::string("QFI\xfb\0\0\0\3", 8))};
        vmrt::error e = error_of([&] { build(s, env); });
        BOOST_TEST((e.code() == vmrt::errc::unsupported));
        BOOST_TEST(e.diag().field == "root_disk");
        BOOST_TEST(contains(e.diag().message, "qcow2"), e.diag().message);
        BOOST_TEST(contains(e.diag().message, "raw"), e.diag().message);
    }
    {
        // VZ itself refuses the image: its NSError, against the field.
        vmrt::vm_spec s = direct_spec(env);
        s.root_disk = vmrt::disk_spec{.path = env.raw_image("locked.img")};
        simvz::scoped_failure denied(
            "VZDiskImageStorageDeviceAttachment",
            "initWithURL:readOnly:cachingMode:synchronizationMode:error:",
            {.domain = "NSPOSIXErrorDomain", .code = EACCES, .description = "Permission denied"});
        vmrt::error e = error_of([&] { build(s, env); });
        BOOST_TEST((e.code() == (vmrt::error_code{EACCES, boost::system::system_category()})));
        BOOST_TEST(e.diag().field == "root_disk");
        BOOST_TEST(contains(e.diag().message, "NSPOSIXErrorDomain " + std::to_string(EACCES)),
                   e.diag().message);
    }
    {
        vmrt::vm_spec s = direct_spec(env);
        s.kernel = env.dir / "no-kernel";
        vmrt::error e = error_of([&] { build(s, env); });
        BOOST_TEST(e.diag().field == "kernel");
        BOOST_TEST((e.code() == (vmrt::error_code{ENOENT, boost::system::system_category()})));
    }
}

BOOST_AUTO_TEST_CASE(a_configuration_vz_refuses_maps_to_invalid_spec_with_domain_and_code) {
    vz_env env;
    vmrt::vm_spec s = direct_spec(env);
    s.cpus = 4;
    {
        simvz::scoped_host_limits small_mac({.maximum_cpu_count = 2});
        vmrt::error e = error_of([&] { build(s, env); });
        BOOST_TEST((e.code() == vmrt::errc::invalid_spec));
        BOOST_TEST(contains(e.diag().message, "VZErrorDomain 2 Invalid virtual machine configuration."),
                   e.diag().message);
        BOOST_TEST(contains(e.diag().message, "CPU count 4"), e.diag().message);
    }
    {
        simvz::scoped_failure refused("VZVirtualMachineConfiguration", "validateWithError:",
                                      {.domain = "VZErrorDomain",
                                       .code = 2,
                                       .description = "The storage device attachment is invalid.",
                                       .failure_reason = "The disk is too small."});
        vmrt::error e = error_of([&] { build(s, env); });
        BOOST_TEST((e.code() == vmrt::errc::invalid_spec));
        BOOST_TEST(contains(e.diag().message, "VZErrorDomain 2 The storage device attachment is invalid."),
                   e.diag().message);
        BOOST_TEST(contains(e.diag().message, "The disk is too small."), e.diag().message);
        BOOST_TEST(refused.remaining() == 0);
    }
}

BOOST_AUTO_TEST_CASE(a_nic_socket_must_be_a_datagram_socket_and_switch_ports_must_be_given) {
    vz_env env;
    socket_pair stream(SOCK_STREAM);
    vmrt::vm_spec s = direct_spec(env);
    s.networks.push_back(vmrt::nic_spec{.kind = vmrt::nic_kind::fd_dgram, .fd = stream.vm.get()});
    vmrt::error e = error_of([&] { build(s, env); });
    BOOST_TEST((e.code() == vmrt::errc::invalid_spec));
    BOOST_TEST(e.diag().field == "networks[0].fd");
    BOOST_TEST(contains(e.diag().message, "datagram"), e.diag().message);

    s.networks[0] = vmrt::nic_spec{.kind = vmrt::nic_kind::fd_dgram, .switch_network = "lan"};
    e = error_of([&] { build(s, env); });
    BOOST_TEST(e.diag().field == "networks[0].switch_network");
}

BOOST_AUTO_TEST_CASE(socket_buffers_keep_apples_ratio_even_when_the_kernel_caps_them) {
    socket_pair p(SOCK_DGRAM);
    vz::size_datagram_socket_buffers(p.vm.get(), vz::file_handle_so_sndbuf, vz::file_handle_so_rcvbuf,
                                     "networks[0]");
    BOOST_TEST(socket_int(p.vm.get(), SO_RCVBUF) >= 2 * socket_int(p.vm.get(), SO_SNDBUF));
    // Asked for equal sizes (or capped to equal sizes), the send buffer gives way.
    socket_pair q(SOCK_DGRAM);
    vz::size_datagram_socket_buffers(q.vm.get(), 256 * 1024, 256 * 1024, "networks[0]");
    BOOST_TEST(socket_int(q.vm.get(), SO_RCVBUF) >= 2 * socket_int(q.vm.get(), SO_SNDBUF));
    BOOST_TEST(socket_int(q.vm.get(), SO_SNDBUF) >= 16 * 1024);
}

BOOST_AUTO_TEST_CASE(a_bad_share_name_is_refused_by_vz_before_it_can_raise) {
    vz_env env;
    // Bypasses validate_spec (which refuses the name too) to reach VZ's +validateName:error:.
    vz::vz_plan plan = plan_of(direct_spec(env), env);
    vz::multiple_directory_share multi;
    multi.directories.emplace_back(
        "..", vz::shared_directory{.field = "shared_dirs[0]", .host_path = env.directory("up")});
    plan.directory_sharing_devices.push_back(vz::directory_sharing_device{.tag = "work", .share = multi});
    vmrt::error e = error_of([&] { vz::build_vz_configuration(plan, {}); });
    BOOST_TEST((e.code() == vmrt::errc::invalid_spec));
    BOOST_TEST(e.diag().field == "shared_dirs[0].share_name");
}

BOOST_AUTO_TEST_SUITE_END()
