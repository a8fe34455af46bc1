// The simulated Virtualization.framework's configuration classes themselves (tests/sim/vz): that
// they behave as Apple documents where the driver depends on it — initialisers that fail with an
// NSError (set only on failure), getters that return what was set, -validateWithError:'s checks,
// the console port array, identifiers and MAC addresses, availability per macOS version. Real files
// and sockets; no Mac.
#include "hv/apple_vz/objc/foundation.hpp"
#include "hv/apple_vz/objc/ns_error.hpp"
#include "sim/objc/sim.hpp"
#include "sim/vz/vz_sim.hpp"
#include "support/test_support.hpp"

#include <vmrt/io/unique_fd.hpp>

#include <boost/test/unit_test.hpp>

#include <sys/socket.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
namespace objc = vmrt::objc;
namespace sim = vmrt::objc::sim;
namespace simvz = vmrt::objc::sim::vz;
using objc::BOOL;
using objc::id;
using objc::NSInteger;
using objc::NSUInteger;
using objc::sel;
using objc::send;
using objc::strong;

constexpr std::uint64_t mib = 1ull << 20;

struct sim_env {
    vmrt::test::temp_dir dir;
    long live_at_start = 0;
    sim_env() {
        simvz::install();
        live_at_start = sim::live_instances_total();
    }
    ~sim_env() { BOOST_TEST(sim::live_instances_total() == live_at_start, "simulated objects leaked"); }
};

objc::Class vz(const char* name) {
    objc::Class c = objc::cls(name);
    if (!c) throw std::runtime_error(std::string("no class ") + name);
    return c;
}

strong url(const fs::path& p) { return objc::ns_file_url(p); }

/// A sentinel an out-parameter keeps unless the callee reports an error.
id untouched() { return reinterpret_cast<id>(static_cast<std::uintptr_t>(0x5e)); }

/// A configuration that passes validation: Linux boot loader, 2 CPUs, 512 MiB.
strong valid_configuration(const fs::path& kernel) {
    strong c = objc::alloc_init(vz("VZVirtualMachineConfiguration"));
    strong k = url(kernel);
    strong loader = objc::alloc_init<id>(vz("VZLinuxBootLoader"), sel<"initWithKernelURL:">(), k.get());
    send<void, id>(c, sel<"setBootLoader:">(), loader.get());
    send<void, NSUInteger>(c, sel<"setCPUCount:">(), 2);
    send<void, std::uint64_t>(c, sel<"setMemorySize:">(), 512 * mib);
    return c;
}

/// What -validateWithError: says: "" when valid, else the NSError's description (domain and code checked).
std::string validation(const strong& c) {
    objc::autorelease_pool pool;
    id error = untouched();
    if (send<BOOL, id*>(c, sel<"validateWithError:">(), &error)) {
        BOOST_TEST((error == untouched()));  // set only on failure
        return "";
    }
    auto info = objc::read_ns_error(error);
    BOOST_TEST(info.domain == "VZErrorDomain");
    BOOST_TEST(info.code == 2);
    return info.description;
}

void set_list(const strong& c, const char* setter, const std::vector<strong>& items) {
    strong array = objc::ns_array(items);
    send<void, id>(c, objc::sel(setter), array.get());
}

bool contains(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(vz_sim_configuration_test)

BOOST_AUTO_TEST_CASE(an_efi_variable_store_is_created_once_unless_overwrite_is_allowed) {
    sim_env env;
    objc::autorelease_pool pool;
    const fs::path path = env.dir / "nvram";
    strong u = url(path);
    auto create = [&](NSUInteger options, id* error) {
        return strong::adopt(send<id, id, NSUInteger, id*>(
            objc::alloc(vz("VZEFIVariableStore")), sel<"initCreatingVariableStoreAtURL:options:error:">(),
            u.get(), options, error));
    };
    id error = untouched();
    strong store = create(0, &error);
    BOOST_REQUIRE(store);
    BOOST_TEST((error == untouched()));
    BOOST_TEST(vmrt::test::read_file(path).starts_with(std::string(simvz::efi_variable_store_magic)));
    BOOST_TEST(objc::url_path(send<id>(store, sel<"URL">())) == path.string());

    strong again = create(0, &error);
    BOOST_TEST(!again);
    auto info = objc::read_ns_error(error);
    BOOST_TEST(info.domain == "NSCocoaErrorDomain");
    BOOST_TEST(info.code == 516);
    BOOST_TEST(static_cast<bool>(create(1, nullptr)));  // AllowOverwrite; a null error pointer is allowed
}

BOOST_AUTO_TEST_CASE(a_store_opened_by_url_must_exist_when_the_configuration_is_validated) {
    sim_env env;
    vmrt::test::write_file(env.dir / "k", "kernel");
    strong c = valid_configuration(env.dir / "k");
    strong store_url = url(env.dir / "missing.nvram");
    strong store = objc::alloc_init<id>(vz("VZEFIVariableStore"), sel<"initWithURL:">(), store_url.get());
    BOOST_REQUIRE(store);  // no error parameter: it cannot fail
    strong loader = objc::alloc_init(vz("VZEFIBootLoader"));
    send<void, id>(c, sel<"setBootLoader:">(), loader.get());
    BOOST_TEST(contains(validation(c), "has no variable store"));
    send<void, id>(loader, sel<"setVariableStore:">(), store.get());
    BOOST_TEST(contains(validation(c), "does not exist"));
    vmrt::test::write_file(env.dir / "missing.nvram", "store");
    BOOST_TEST(validation(c) == "");
}

BOOST_AUTO_TEST_CASE(generic_machine_identifiers_are_random_and_round_trip) {
    sim_env env;
    objc::autorelease_pool pool;
    strong a = objc::alloc_init(vz("VZGenericMachineIdentifier"));
    strong b = objc::alloc_init(vz("VZGenericMachineIdentifier"));
    auto bytes_a = objc::data_bytes(send<id>(a, sel<"dataRepresentation">()));
    auto bytes_b = objc::data_bytes(send<id>(b, sel<"dataRepresentation">()));
    BOOST_TEST(bytes_a.size() == simvz::machine_identifier_size);
    BOOST_TEST(bytes_a != bytes_b);
    strong data = objc::ns_data(bytes_a);
    strong same = objc::alloc_init<id>(vz("VZGenericMachineIdentifier"), sel<"initWithDataRepresentation:">(),
                                       data.get());
    BOOST_REQUIRE(same);
    BOOST_TEST(objc::is_equal(same.get(), a.get()));
    BOOST_TEST(!objc::is_equal(same.get(), b.get()));
    bytes_a[0] ^= 0xff;
    strong bad_data = objc::ns_data(bytes_a);
    BOOST_TEST(!objc::alloc_init<id>(vz("VZGenericMachineIdentifier"), sel<"initWithDataRepresentation:">(),
                                     bad_data.get()));
    // A new generic platform carries an identifier of its own; setting one copies it in.
    strong platform = objc::alloc_init(vz("VZGenericPlatformConfiguration"));
    BOOST_TEST(send<id>(platform, sel<"machineIdentifier">()) != nullptr);
    send<void, id>(platform, sel<"setMachineIdentifier:">(), same.get());
    BOOST_TEST(objc::is_equal(send<id>(platform, sel<"machineIdentifier">()), a.get()));
}

BOOST_AUTO_TEST_CASE(mac_addresses_parse_print_and_default_to_random_local_unicast) {
    sim_env env;
    objc::autorelease_pool pool;
    auto parse = [](const char* text) {
        strong s = objc::ns_string(text);
        return objc::alloc_init<id>(vz("VZMACAddress"), sel<"initWithString:">(), s.get());
    };
    strong m = parse("02:AB:cd:00:00:01");
    BOOST_REQUIRE(m);
    BOOST_TEST(objc::to_string(send<id>(m, sel<"string">())) == "02:ab:cd:00:00:01");
    BOOST_TEST(send<BOOL>(m, sel<"isLocallyAdministeredAddress">()));
    BOOST_TEST(!parse("02:ab:cd:00:00"));
    BOOST_TEST(!parse("02-ab-cd-00-00-01"));
    BOOST_TEST(!parse("zz:ab:cd:00:00:01"));
    strong nic = objc::alloc_init(vz("VZVirtioNetworkDeviceConfiguration"));
    id random = send<id>(nic, sel<"MACAddress">());
    BOOST_TEST(send<BOOL>(random, sel<"isLocallyAdministeredAddress">()));
    BOOST_TEST(send<BOOL>(random, sel<"isUnicastAddress">()));
    send<void, id>(nic, sel<"setMACAddress:">(), m.get());
    BOOST_TEST(objc::is_equal(send<id>(nic, sel<"MACAddress">()), m.get()));
}

BOOST_AUTO_TEST_CASE(a_disk_image_attachment_opens_its_file_and_keeps_the_modes) {
    sim_env env;
    objc::autorelease_pool pool;
    vmrt::test::write_file(env.dir / "disk.img", std::string(4096, '\0'));
    auto attach = [&](const fs::path& p, NSInteger caching, NSInteger sync, id* error) {
        strong u = url(p);
        return strong::adopt(send<id, id, BOOL, NSInteger, NSInteger, id*>(
            objc::alloc(vz("VZDiskImageStorageDeviceAttachment")),
            sel<"initWithURL:readOnly:cachingMode:synchronizationMode:error:">(), u.get(), objc::YES, caching,
            sync, error));
    };
    id error = untouched();
    strong a = attach(env.dir / "disk.img", 1, 3, &error);
    BOOST_REQUIRE(a);
    BOOST_TEST((error == untouched()));
    BOOST_TEST(send<BOOL>(a, sel<"isReadOnly">()));
    BOOST_TEST(send<NSInteger>(a, sel<"cachingMode">()) == 1);
    BOOST_TEST(send<NSInteger>(a, sel<"synchronizationMode">()) == 3);
    // Apple's misleading answer for a missing image (see vz_sim_storage.cpp).
    BOOST_TEST(!attach(env.dir / "absent.img", 0, 1, &error));
    auto info = objc::read_ns_error(error);
    BOOST_TEST(info.domain == "NSPOSIXErrorDomain");
    BOOST_TEST(info.code == 45);
    BOOST_TEST(!attach(env.dir / "disk.img", 7, 1, &error));
    strong block =
        objc::alloc_init<id>(vz("VZVirtioBlockDeviceConfiguration"), sel<"initWithAttachment:">(), a.get());
    BOOST_TEST(send<id>(block, sel<"attachment">()) == a.get());
}

BOOST_AUTO_TEST_CASE(the_console_port_array_indexes_ports_and_counts_them) {
    sim_env env;
    vmrt::test::write_file(env.dir / "k", "kernel");
    strong c = valid_configuration(env.dir / "k");
    strong device = objc::alloc_init(vz("VZVirtioConsoleDeviceConfiguration"));
    id ports = send<id>(device, sel<"ports">());
    BOOST_TEST(send<std::uint32_t>(ports, sel<"maximumPortCount">()) == 0u);
    strong port = objc::alloc_init(vz("VZVirtioConsolePortConfiguration"));
    strong name = objc::ns_string("org.example.port");
    send<void, id>(port, sel<"setName:">(), name.get());
    send<void, BOOL>(port, sel<"setIsConsole:">(), objc::YES);
    send<void, id, NSUInteger>(ports, sel<"setObject:atIndexedSubscript:">(), port.get(), 2);
    BOOST_TEST(send<std::uint32_t>(ports, sel<"maximumPortCount">()) == 3u);  // highest index + 1
    BOOST_TEST((send<id, NSUInteger>(ports, sel<"objectAtIndexedSubscript:">(), 2) == port.get()));
    BOOST_TEST((send<id, NSUInteger>(ports, sel<"objectAtIndexedSubscript:">(), 0) == nullptr));
    BOOST_TEST(send<BOOL>(port, sel<"isConsole">()));
    BOOST_TEST(objc::to_string(send<id>(port, sel<"name">())) == "org.example.port");
    set_list(c, "setConsoleDevices:", {device});
    BOOST_TEST(validation(c) == "");
    send<void, std::uint32_t>(ports, sel<"setMaximumPortCount:">(), 2);  // not larger than index 2
    BOOST_TEST(contains(validation(c), "maximum port count"));
    send<void, id, NSUInteger>(ports, sel<"setObject:atIndexedSubscript:">(), nullptr, 2);
    BOOST_TEST((send<id, NSUInteger>(ports, sel<"objectAtIndexedSubscript:">(), 2) == nullptr));
}

BOOST_AUTO_TEST_CASE(validation_applies_apples_documented_rules) {
    sim_env env;
    vmrt::test::write_file(env.dir / "k", "kernel");
    {
        strong c = objc::alloc_init(vz("VZVirtualMachineConfiguration"));
        BOOST_TEST(contains(validation(c), "boot loader"));
    }
    {
        strong c = valid_configuration(env.dir / "k");
        BOOST_TEST(validation(c) == "");
        send<void, std::uint64_t>(c, sel<"setMemorySize:">(), 512 * mib + 4096);
        BOOST_TEST(contains(validation(c), "multiple of 1 MiB"));
        const auto limits = simvz::current_host_limits();
        send<void, std::uint64_t>(c, sel<"setMemorySize:">(), limits.maximum_memory_size + mib);
        BOOST_TEST(contains(validation(c), "memory size"));
        send<void, std::uint64_t>(c, sel<"setMemorySize:">(), 512 * mib);
        send<void, NSUInteger>(c, sel<"setCPUCount:">(), limits.maximum_cpu_count + 1);
        BOOST_TEST(contains(validation(c), "CPU count"));
        // The class properties answer the same limits.
        BOOST_TEST(send<NSUInteger>(vz("VZVirtualMachineConfiguration"), sel<"maximumAllowedCPUCount">()) ==
                   limits.maximum_cpu_count);
        BOOST_TEST(send<std::uint64_t>(vz("VZVirtualMachineConfiguration"),
                                       sel<"minimumAllowedMemorySize">()) == limits.minimum_memory_size);
    }
    {
        strong c = valid_configuration(env.dir / "k");
        set_list(c, "setEntropyDevices:",
                 {objc::alloc_init(vz("VZVirtioEntropyDeviceConfiguration")),
                  objc::alloc_init(vz("VZVirtioEntropyDeviceConfiguration"))});
        BOOST_TEST(contains(validation(c), "Only one device"));
    }
    {
        // A file-handle NIC needs a connected datagram socket and an MTU in 1500...65535.
        strong c = valid_configuration(env.dir / "k");
        int fds[2];
        BOOST_REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
        vmrt::io::unique_fd keep(fds[1]);
        vmrt::io::unique_fd stream(fds[0]);
        strong handle = objc::file_handle_owning(stream);
        strong attachment = objc::alloc_init<id>(vz("VZFileHandleNetworkDeviceAttachment"),
                                                 sel<"initWithFileHandle:">(), handle.get());
        strong nic = objc::alloc_init(vz("VZVirtioNetworkDeviceConfiguration"));
        send<void, id>(nic, sel<"setAttachment:">(), attachment.get());
        set_list(c, "setNetworkDevices:", {nic});
        BOOST_TEST(contains(validation(c), "connected datagram socket"));

        BOOST_REQUIRE(::socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, fds) == 0);
        vmrt::io::unique_fd keep_dgram(fds[1]);
        vmrt::io::unique_fd dgram(fds[0]);
        strong dgram_handle = objc::file_handle_owning(dgram);
        strong good = objc::alloc_init<id>(vz("VZFileHandleNetworkDeviceAttachment"),
                                           sel<"initWithFileHandle:">(), dgram_handle.get());
        send<void, id>(nic, sel<"setAttachment:">(), good.get());
        BOOST_TEST(validation(c) == "");
        send<void, NSInteger>(good, sel<"setMaximumTransmissionUnit:">(), 1400);
        BOOST_TEST(contains(validation(c), "maximum transmission unit"));
    }
    {
        // virtio-fs: a valid tag, a share, each tag once.
        strong c = valid_configuration(env.dir / "k");
        auto fs_device = [&](const char* tag) {
            strong t = objc::ns_string(tag);
            strong d = objc::alloc_init<id>(vz("VZVirtioFileSystemDeviceConfiguration"),
                                            sel<"initWithTag:">(), t.get());
            strong u = url(env.dir.path());
            strong dir = objc::alloc_init<id, BOOL>(vz("VZSharedDirectory"), sel<"initWithURL:readOnly:">(),
                                                    u.get(), objc::NO);
            strong share =
                objc::alloc_init<id>(vz("VZSingleDirectoryShare"), sel<"initWithDirectory:">(), dir.get());
            send<void, id>(d, sel<"setShare:">(), share.get());
            return d;
        };
        set_list(c, "setDirectorySharingDevices:", {fs_device("a"), fs_device("a")});
        BOOST_TEST(contains(validation(c), "more than one device"));
        set_list(c, "setDirectorySharingDevices:", {fs_device("0123456789012345678901234567890123456")});
        BOOST_TEST(contains(validation(c), "36 bytes"));
        strong no_share = fs_device("b");
        send<void, id>(no_share, sel<"setShare:">(), nullptr);
        set_list(c, "setDirectorySharingDevices:", {no_share});
        BOOST_TEST(contains(validation(c), "has no share"));
    }
}

BOOST_AUTO_TEST_CASE(tags_and_share_names_validate_as_apple_describes) {
    sim_env env;
    objc::autorelease_pool pool;
    auto tag_ok = [](const std::string& tag) {
        strong t = objc::ns_string(tag);
        id error = untouched();
        BOOL ok = send<BOOL, id, id*>(vz("VZVirtioFileSystemDeviceConfiguration"),
                                      sel<"validateTag:error:">(), t.get(), &error);
        BOOST_TEST(((ok != objc::NO) == (error == untouched())));
        return ok != objc::NO;
    };
    BOOST_TEST(tag_ok("share"));
    BOOST_TEST(tag_ok(std::string(35, 't')));
    BOOST_TEST(!tag_ok(std::string(36, 't')));
    BOOST_TEST(!tag_ok(""));
    auto name_ok = [](const std::string& name) {
        strong n = objc::ns_string(name);
        return send<BOOL, id, id*>(vz("VZMultipleDirectoryShare"), sel<"validateName:error:">(), n.get(),
                                   nullptr) != objc::NO;
    };
    BOOST_TEST(name_ok("docs"));
    BOOST_TEST(!name_ok("a/b"));
    BOOST_TEST(!name_ok(".."));
    BOOST_TEST(!name_ok(""));
    BOOST_TEST(!name_ok(std::string(256, 'n')));
}

BOOST_AUTO_TEST_CASE(rosetta_follows_the_availability_knob) {
    sim_env env;
    objc::autorelease_pool pool;
    objc::Class rosetta = vz("VZLinuxRosettaDirectoryShare");
    auto make = [&](id* error) {
        return strong::adopt(send<id, id*>(objc::alloc(rosetta), sel<"initWithError:">(), error));
    };
    BOOST_TEST(send<NSInteger>(rosetta, sel<"availability">()) == 2);
    BOOST_TEST(static_cast<bool>(make(nullptr)));
    simvz::scoped_rosetta_availability missing(simvz::rosetta_availability::not_installed);
    BOOST_TEST(send<NSInteger>(rosetta, sel<"availability">()) == 1);
    id error = untouched();
    BOOST_TEST(!make(&error));
    BOOST_TEST(objc::read_ns_error(error).domain == "VZErrorDomain");
}

BOOST_AUTO_TEST_CASE(a_copied_configuration_has_the_same_values) {
    sim_env env;
    vmrt::test::write_file(env.dir / "k", "kernel");
    strong c = valid_configuration(env.dir / "k");
    set_list(c, "setSocketDevices:", {objc::alloc_init(vz("VZVirtioSocketDeviceConfiguration"))});
    strong copy = strong::adopt(send<id>(c, sel<"copy">()));
    BOOST_TEST(copy.get() != c.get());
    BOOST_TEST(send<id>(copy, sel<"bootLoader">()) == send<id>(c, sel<"bootLoader">()));
    BOOST_TEST(send<NSUInteger>(copy, sel<"CPUCount">()) == 2u);
    BOOST_TEST(simvz::inspect_configuration(copy.get()).socket_devices.size() == 1u);
    // The copy is independent of later changes to the original.
    send<void, NSUInteger>(c, sel<"setCPUCount:">(), 1);
    BOOST_TEST(send<NSUInteger>(copy, sel<"CPUCount">()) == 2u);
}

BOOST_AUTO_TEST_CASE(an_older_macos_lacks_the_newer_classes_and_methods) {
    sim_env env;
    {
        simvz::scoped_macos_version monterey(12);
        BOOST_TEST(objc::cls("VZEFIBootLoader") == nullptr);
        BOOST_TEST(objc::cls("VZVirtioConsoleDeviceConfiguration") == nullptr);
        BOOST_TEST(objc::cls("VZVirtioFileSystemDeviceConfiguration") != nullptr);
        BOOST_TEST(!objc::instances_respond_to(objc::cls("VZGenericPlatformConfiguration"),
                                               sel<"setMachineIdentifier:">()));
        BOOST_TEST(!objc::instances_respond_to(objc::cls("VZVirtualMachineConfiguration"),
                                               sel<"setConsoleDevices:">()));
        BOOST_TEST(
            objc::instances_respond_to(objc::cls("VZDiskImageStorageDeviceAttachment"),
                                       sel<"initWithURL:readOnly:cachingMode:synchronizationMode:error:">()));
    }
    {
        simvz::scoped_macos_version ventura_intel(13, false);
        BOOST_TEST(objc::cls("VZEFIBootLoader") != nullptr);
        BOOST_TEST(objc::cls("VZLinuxRosettaDirectoryShare") == nullptr);
        BOOST_TEST(objc::cls("VZNVMExpressControllerDeviceConfiguration") == nullptr);
    }
    BOOST_TEST(objc::cls("VZNVMExpressControllerDeviceConfiguration") != nullptr);
    BOOST_TEST(objc::instances_respond_to(objc::cls("VZGenericPlatformConfiguration"),
                                          sel<"setMachineIdentifier:">()));
    for (const auto& api : simvz::availability_table()) {
        BOOST_TEST_CONTEXT(api.class_name << " " << api.selector) {
            objc::Class c = objc::cls(std::string(api.class_name).c_str());
            BOOST_TEST(c != nullptr);
            if (!api.selector.empty() && api.selector[0] != '+')
                BOOST_TEST(objc::instances_respond_to(c, objc::sel(std::string(api.selector).c_str())));
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()
