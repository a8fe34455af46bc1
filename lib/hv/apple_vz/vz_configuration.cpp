#include "hv/apple_vz/vz_configuration.hpp"

#include "hv/apple_vz/objc/foundation.hpp"
#include "hv/apple_vz/objc/ns_error.hpp"
#include "hv/apple_vz/vz_build.hpp"

#include <vmrt/io/atomic_file.hpp>
#include <vmrt/io/unique_fd.hpp>

#include <boost/system/system_category.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace vmrt::hv::vz {

namespace build {

error failure(error_code code, std::string field, std::string message) {
    return error(code, diagnostics{.message = std::move(message), .field = std::move(field)});
}

error ns_failure(objc::id ns_error, std::string_view what, std::string field) {
    error e = objc::to_error(ns_error, what);
    return failure(e.code(), std::move(field), e.diag().message);
}

objc::Class vz_class(const char* name) {
    objc::Class c = objc::cls(name);
    if (!c)
        throw error(errc::internal, {.message = std::string("Virtualization.framework class ") + name +
                                                " vanished after the availability check"});
    return c;
}

}  // namespace build

namespace {

namespace fs = std::filesystem;
using build::failure;
using build::ns_failure;
using build::vz_class;
using objc::id;
using objc::NSInteger;
using objc::NSUInteger;
using objc::sel;
using objc::SEL;
using objc::send;
using objc::strong;

error_code system_error(int value) { return {value, boost::system::system_category()}; }

/// The configuration itself, which every plan needs (macOS 11).
constexpr apple_api configuration_api{"VZVirtualMachineConfiguration", "", 11};

void require(const apple_api& api, const std::string& field) {
    const std::string class_name(api.class_name);
    const std::string selector(api.selector);
    objc::Class c = objc::cls(class_name.c_str());
    if (c && (selector.empty() || objc::instances_respond_to(c, objc::sel(selector.c_str())))) return;
    const std::string what = selector.empty() ? class_name : "-[" + class_name + " " + selector + "]";
    std::string needs = "macOS " + std::to_string(api.macos) + " or later";
    if (api.apple_silicon_only) needs += " on Apple silicon";
    const std::string who =
        field.empty() ? std::string("every Virtualization.framework VM") : "\"" + field + "\"";
    throw failure(errc::unsupported, field,
                  who + " needs " + what + ", which this Mac's Virtualization.framework lacks (" + needs +
                      ")");
}

// VZLinuxRosettaAvailability (VZLinuxRosettaDirectoryShare.h): NotSupported 0, NotInstalled 1,
// Installed 2. Checked before anything is built, since it is a fact of the host; -initWithError:
// would report the same, less clearly.
void check_rosetta(const vz_plan& plan) {
    const bool wanted =
        std::any_of(plan.directory_sharing_devices.begin(), plan.directory_sharing_devices.end(),
                    [](const auto& d) { return std::holds_alternative<rosetta_share>(d.share); });
    if (!wanted) return;
    switch (send<NSInteger>(vz_class("VZLinuxRosettaDirectoryShare"), sel<"availability">())) {
    case 2:
        return;
    case 1:
        throw failure(
            errc::unsupported, "rosetta",
            "Rosetta is not installed on this Mac (VZLinuxRosettaAvailabilityNotInstalled): install it "
            "(softwareupdate --install-rosetta) and start the VM again, or leave \"rosetta\" unset");
    default:
        throw failure(errc::unsupported, "rosetta",
                      "this Mac cannot share Rosetta with Linux guests "
                      "(VZLinuxRosettaAvailabilityNotSupported); leave \"rosetta\" unset");
    }
}

void check_readable(const fs::path& file, const std::string& field, const char* what) {
    io::unique_fd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd)
        throw failure(system_error(errno), field,
                      std::string("cannot read the ") + what + " " + file.string() + ": " +
                          std::strerror(errno));
}

strong make_linux_boot_loader(const linux_boot_loader& plan) {
    // VZ reads the kernel and initramfs only when the VM starts, and then says little about a
    // missing file: check them here, against their fields.
    check_readable(plan.kernel, "kernel", "kernel");
    if (plan.initial_ramdisk) check_readable(*plan.initial_ramdisk, "initramfs", "initramfs");
    strong kernel = objc::ns_file_url(plan.kernel);
    strong loader =
        objc::alloc_init<id>(vz_class("VZLinuxBootLoader"), sel<"initWithKernelURL:">(), kernel.get());
    if (plan.initial_ramdisk) {
        strong initrd = objc::ns_file_url(*plan.initial_ramdisk);
        send<void, id>(loader, sel<"setInitialRamdiskURL:">(), initrd.get());
    }
    strong command_line = objc::ns_string(plan.command_line);
    send<void, id>(loader, sel<"setCommandLine:">(), command_line.get());
    return loader;
}

struct efi_result {
    strong loader;
    bool created = false;
};

efi_result make_efi_boot_loader(const efi_boot_loader& plan) {
    const bool keep = plan.mode == efi_boot_loader::store_mode::open_or_create;
    const std::string field = keep ? "efi_variable_store" : "boot";
    const std::string path = plan.variable_store.string();
    strong url = objc::ns_file_url(plan.variable_store);
    objc::Class store_class = vz_class("VZEFIVariableStore");
    efi_result result;
    strong store;
    std::error_code ec;
    if (keep && fs::exists(plan.variable_store, ec)) {
        store = objc::alloc_init<id>(store_class, sel<"initWithURL:">(), url.get());
    } else {
        // A fresh store replaces one an earlier boot left in the run directory; a kept store is
        // never overwritten (a file appearing meanwhile makes VZ fail rather than lose it).
        const NSUInteger options = keep ? 0 : efi_variable_store_allow_overwrite;
        id ns_error = nullptr;
        store = strong::adopt(send<id, id, NSUInteger, id*>(
            objc::alloc(store_class), sel<"initCreatingVariableStoreAtURL:options:error:">(), url.get(),
            options, &ns_error));
        if (!store) throw ns_failure(ns_error, "create the EFI variable store " + path, field);
        result.created = true;
    }
    result.loader = objc::alloc_init(vz_class("VZEFIBootLoader"));
    send<void, id>(result.loader, sel<"setVariableStore:">(), store.get());
    return result;
}

struct identity {
    strong identifier;
    machine_identifier_origin origin = machine_identifier_origin::none;
    std::vector<std::uint8_t> bytes;
};

strong identifier_from(const std::vector<std::uint8_t>& bytes) {
    strong data = objc::ns_data(bytes);
    return objc::alloc_init<id>(vz_class("VZGenericMachineIdentifier"), sel<"initWithDataRepresentation:">(),
                                data.get());
}

strong new_identifier(std::vector<std::uint8_t>& bytes) {
    strong identifier = objc::alloc_init(vz_class("VZGenericMachineIdentifier"));
    objc::autorelease_pool pool;  // -dataRepresentation is +0
    bytes = objc::data_bytes(send<id>(identifier, sel<"dataRepresentation">()));
    return identifier;
}

std::optional<std::vector<std::uint8_t>> read_identifier_file(const fs::path& file) {
    io::unique_fd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
        if (errno == ENOENT) return std::nullopt;
        throw failure(system_error(errno), "efi_variable_store",
                      "cannot read the machine identifier " + file.string() + ": " + std::strerror(errno));
    }
    std::vector<std::uint8_t> bytes;
    std::uint8_t chunk[4096];
    for (;;) {
        ssize_t n = ::read(fd.get(), chunk, sizeof chunk);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0)
            throw failure(system_error(errno), "efi_variable_store",
                          "cannot read the machine identifier " + file.string() + ": " +
                              std::strerror(errno));
        if (n == 0) break;
        bytes.insert(bytes.end(), chunk, chunk + n);
        if (bytes.size() > (1u << 20))
            throw failure(errc::invalid_spec, "efi_variable_store",
                          "the machine identifier " + file.string() + " is too large to be one");
    }
    return bytes;
}

// The decision and its reasons are in vz_plan.hpp ("The machine identifier"). A created identifier
// is persisted later (persist_identifier), once the variable store it belongs with exists.
identity resolve_identifier(const generic_platform& plan) {
    identity id_;
    switch (plan.source) {
    case generic_platform::identifier_source::from_spec:
        id_.identifier = identifier_from(plan.data);
        if (!id_.identifier)
            throw failure(
                errc::invalid_spec, "machine_id",
                "Virtualization.framework does not take these " + std::to_string(plan.data.size()) +
                    " bytes as a VZGenericMachineIdentifier: machine_id must be the dataRepresentation "
                    "vmrt reported for an earlier boot");
        id_.bytes = plan.data;
        id_.origin = machine_identifier_origin::from_spec;
        return id_;
    case generic_platform::identifier_source::load_or_create:
        if (auto bytes = read_identifier_file(plan.persist_file)) {
            id_.identifier = identifier_from(*bytes);
            if (!id_.identifier)
                throw failure(
                    errc::invalid_spec, "efi_variable_store",
                    "the machine identifier " + plan.persist_file.string() +
                        " beside the EFI variable store is not a VZGenericMachineIdentifier; restore it, "
                        "or remove it to give the VM a new identity");
            id_.bytes = std::move(*bytes);
            id_.origin = machine_identifier_origin::loaded;
        } else {
            id_.identifier = new_identifier(id_.bytes);
            id_.origin = machine_identifier_origin::created;
        }
        return id_;
    case generic_platform::identifier_source::fresh_reported:
        // macOS 12 has neither the class nor the property: VZ chooses, and there is nothing to report.
        if (!objc::cls("VZGenericMachineIdentifier") ||
            !objc::instances_respond_to(vz_class("VZGenericPlatformConfiguration"),
                                        sel<"setMachineIdentifier:">()))
            return id_;
        id_.identifier = new_identifier(id_.bytes);
        id_.origin = machine_identifier_origin::fresh;
        return id_;
    }
    return id_;
}

void persist_identifier(const generic_platform& plan, const identity& id_) {
    if (id_.origin != machine_identifier_origin::created) return;
    const std::string_view text(reinterpret_cast<const char*>(id_.bytes.data()), id_.bytes.size());
    error_code ec;
    io::write_file_atomically(plan.persist_file, text, fs::perms::owner_read | fs::perms::owner_write, ec);
    if (ec)
        throw failure(ec, "efi_variable_store",
                      "cannot keep the machine identifier in " + plan.persist_file.string() + ": " +
                          ec.message());
}

strong make_platform(const identity& id_) {
    strong platform = objc::alloc_init(vz_class("VZGenericPlatformConfiguration"));
    if (id_.identifier) send<void, id>(platform, sel<"setMachineIdentifier:">(), id_.identifier.get());
    return platform;
}

void set_list(const strong& configuration, SEL setter, const std::vector<strong>& items) {
    strong array = objc::ns_array(items);
    send<void, id>(configuration, setter, array.get());
}

}  // namespace

void check_vz_availability(const vz_plan& plan) {
    require(configuration_api, "");
    for (const requirement& r : plan.requirements) require(r.api, r.field);
}

vz_configuration build_vz_configuration(const vz_plan& plan, const vz_build_resources& resources) {
    objc::autorelease_pool pool;
    // (1) what the running framework offers.
    check_vz_availability(plan);
    check_rosetta(plan);

    // (2)+(3) the devices, each checking its host files first.
    strong linux_loader;
    if (const auto* l = std::get_if<linux_boot_loader>(&plan.boot_loader))
        linux_loader = make_linux_boot_loader(*l);
    std::vector<strong> storage;
    for (const storage_device& d : plan.storage_devices) storage.push_back(build::make_storage_device(d));
    std::vector<strong> networks;
    for (std::size_t i = 0; i < plan.network_devices.size(); ++i)
        networks.push_back(build::make_network_device(plan.network_devices[i], i, resources));
    std::vector<strong> sharing;
    for (const directory_sharing_device& d : plan.directory_sharing_devices)
        sharing.push_back(build::make_directory_sharing_device(d));
    std::vector<strong> consoles;
    if (plan.control)
        consoles.push_back(build::make_control_console(*plan.control, resources.control_port_fd));
    std::vector<strong> serial{build::make_serial_port(plan.serial)};

    // (4) the identity: the EFI variable store, then the machine identifier beside it.
    vz_configuration result;
    identity id_ = resolve_identifier(plan.platform);
    strong loader = linux_loader;
    if (const auto* e = std::get_if<efi_boot_loader>(&plan.boot_loader)) {
        efi_result efi = make_efi_boot_loader(*e);
        loader = std::move(efi.loader);
        result.efi_variable_store_created = efi.created;
    }
    persist_identifier(plan.platform, id_);

    strong configuration = objc::alloc_init(vz_class("VZVirtualMachineConfiguration"));
    send<void, id>(configuration, sel<"setBootLoader:">(), loader.get());
    strong platform = make_platform(id_);
    send<void, id>(configuration, sel<"setPlatform:">(), platform.get());
    send<void, NSUInteger>(configuration, sel<"setCPUCount:">(), plan.cpu_count);
    send<void, std::uint64_t>(configuration, sel<"setMemorySize:">(), plan.memory_size);
    set_list(configuration, sel<"setStorageDevices:">(), storage);
    set_list(configuration, sel<"setNetworkDevices:">(), networks);
    set_list(configuration, sel<"setSerialPorts:">(), serial);
    // consoleDevices (macOS 13) and directorySharingDevices (macOS 12) are set only when used, so a
    // plan without them runs on a framework without the properties.
    if (!consoles.empty()) set_list(configuration, sel<"setConsoleDevices:">(), consoles);
    if (!sharing.empty()) set_list(configuration, sel<"setDirectorySharingDevices:">(), sharing);
    if (plan.entropy)
        set_list(configuration, sel<"setEntropyDevices:">(),
                 {build::make_plain_device("VZVirtioEntropyDeviceConfiguration")});
    if (plan.balloon)
        set_list(configuration, sel<"setMemoryBalloonDevices:">(),
                 {build::make_plain_device("VZVirtioTraditionalMemoryBalloonDeviceConfiguration")});
    if (plan.socket)
        set_list(configuration, sel<"setSocketDevices:">(),
                 {build::make_plain_device("VZVirtioSocketDeviceConfiguration")});

    // (5) VZ's own verdict.
    id ns_error = nullptr;
    if (!send<objc::BOOL, id*>(configuration, sel<"validateWithError:">(), &ns_error))
        throw ns_failure(ns_error, "Virtualization.framework refused the VM configuration", "");

    result.configuration = std::move(configuration);
    result.identifier_origin = id_.origin;
    result.machine_identifier = std::move(id_.bytes);
    return result;
}

}  // namespace vmrt::hv::vz
