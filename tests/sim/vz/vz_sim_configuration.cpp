// VZVirtualMachineConfiguration (macOS 11; platform and directorySharingDevices macOS 12,
// consoleDevices macOS 13): every property with Apple's getter and setter, the class properties of
// the host's limits, -copy, and -validateWithError:.
#include "vz_sim_model.hpp"

#include <sys/socket.h>
#include <sys/stat.h>

#include <cctype>
#include <set>

namespace vmrt::objc::sim::vz::detail {

namespace {

using configuration = self_t<configuration_payload>;

constexpr std::uint64_t mib = 1ull << 20;

bool is_kind(id obj, const char* class_name) {
    Class c = sim::detail::existing_class(class_name);
    return obj && c && send<BOOL, Class>(obj, sel<"isKindOfClass:">(), c);
}

std::string setter_for(const std::string& getter) {
    std::string name = "set" + getter + ":";
    name[3] = static_cast<char>(std::toupper(static_cast<unsigned char>(name[3])));
    return name;
}

std::vector<strong> list(const configuration_payload& c, const char* getter) {
    auto it = c.lists.find(getter);
    return it == c.lists.end() ? std::vector<strong>() : array_items(it->second.get());
}

std::string at(const char* getter, std::size_t i) {
    return std::string(getter) + "[" + std::to_string(i) + "]";
}

// The checks of -validateWithError:, in Apple's documented terms; the first problem found is
// reported as VZErrorInvalidVirtualMachineConfiguration. Documented: a boot loader is set
// (VZVirtualMachineConfiguration.h: "Boot loader used when the virtual machine starts"), CPUCount and
// memorySize lie within the class properties' range and memorySize is a multiple of 1 MiB
// (memorySize / CPUCount discussions), a file-handle NIC holds a connected datagram socket and its
// MTU lies within 1500...65535 (VZFileHandleNetworkDeviceAttachment.h: "An invalid MTU value will
// result in an invalid virtual machine configuration"), a console port array's maximumPortCount is
// larger than its highest index (VZVirtioConsolePortConfigurationArray.h), virtio-fs tags are valid
// (+validateTag:error:). Simulation's reading of the rest: at most one entropy, memory balloon and
// socket device each; every storage device has an attachment; an EFI boot loader has a variable
// store whose file exists (-[VZEFIVariableStore initWithURL:] "from the URL of an existing file" has
// no error parameter, so its precondition is checked here) and the generic platform; a virtio-fs
// device has a share, and no two use one tag.
std::string problem_of(const configuration_payload& c) {
    const host_limits limits = current_host_limits();
    if (!c.boot_loader) return "A boot loader must be set.";
    if (c.cpu_count < limits.minimum_cpu_count || c.cpu_count > limits.maximum_cpu_count)
        return "The CPU count " + std::to_string(c.cpu_count) + " is outside the allowed range " +
               std::to_string(limits.minimum_cpu_count) + "..." + std::to_string(limits.maximum_cpu_count) +
               ".";
    if (c.memory_size < limits.minimum_memory_size || c.memory_size > limits.maximum_memory_size)
        return "The memory size " + std::to_string(c.memory_size) + " bytes is outside the allowed range " +
               std::to_string(limits.minimum_memory_size) + "..." +
               std::to_string(limits.maximum_memory_size) + ".";
    if (c.memory_size % mib != 0)
        return "The memory size " + std::to_string(c.memory_size) + " bytes is not a multiple of 1 MiB.";
    if (is_kind(c.boot_loader.get(), "VZEFIBootLoader")) {
        if (!is_kind(c.platform.get(), "VZGenericPlatformConfiguration"))
            return "The EFI boot loader requires the generic platform.";
        id store = payload<efi_boot_loader_payload>(c.boot_loader.get())->variable_store.get();
        if (!store) return "The EFI boot loader has no variable store.";
        const std::string path = path_of(payload<efi_variable_store_payload>(store)->url.get());
        struct stat st {};
        if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode))
            return "The EFI variable store \u201c" + path + "\u201d does not exist.";
    }
    const auto storage = list(c, "storageDevices");
    for (std::size_t i = 0; i < storage.size(); ++i)
        if (!payload<attachment_payload>(storage[i].get())->attachment)
            return "The storage device " + at("storageDevices", i) + " has no attachment.";
    const auto networks = list(c, "networkDevices");
    for (std::size_t i = 0; i < networks.size(); ++i) {
        id attachment = payload<network_device_payload>(networks[i].get())->attachment.get();
        if (!is_kind(attachment, "VZFileHandleNetworkDeviceAttachment")) continue;
        const auto* a = payload<file_handle_network_payload>(attachment);
        if (a->socket_type != SOCK_DGRAM || !a->connected)
            return "The file handle of " + at("networkDevices", i) +
                   " does not hold a connected datagram socket.";
        if (a->maximum_transmission_unit < 1500 || a->maximum_transmission_unit > 65535)
            return "The maximum transmission unit " + std::to_string(a->maximum_transmission_unit) + " of " +
                   at("networkDevices", i) + " is outside 1500...65535.";
    }
    const auto consoles = list(c, "consoleDevices");
    for (std::size_t i = 0; i < consoles.size(); ++i) {
        auto* device = payload<console_device_payload>(consoles[i].get());
        if (!device) continue;
        const auto* ports = payload<console_port_array_payload>(device->ports.get());
        if (ports->maximum_port_count != 0 && !ports->ports.empty() &&
            ports->ports.rbegin()->first >= ports->maximum_port_count)
            return "The maximum port count of " + at("consoleDevices", i) +
                   " is not larger than its highest port index.";
    }
    for (const char* single : {"entropyDevices", "memoryBalloonDevices", "socketDevices"})
        if (list(c, single).size() > 1) return std::string("Only one device is supported in ") + single + ".";
    const auto shares = list(c, "directorySharingDevices");
    std::set<std::string> tags;
    for (std::size_t i = 0; i < shares.size(); ++i) {
        auto* device = payload<file_system_device_payload>(shares[i].get());
        if (!device) continue;
        const std::string problem = directory_tag_problem(device->tag.get());
        if (!problem.empty()) return problem;
        if (!device->share)
            return "The directory sharing device " + at("directorySharingDevices", i) + " has no share.";
        if (!tags.insert(to_string(device->tag.get())).second)
            return "The tag \u201c" + to_string(device->tag.get()) +
                   "\u201d is used by more than one device.";
    }
    return {};
}

void copy_into(configuration_payload& to, const configuration_payload& from) {
    to.boot_loader = from.boot_loader;
    to.platform = from.platform;
    to.cpu_count = from.cpu_count;
    to.memory_size = from.memory_size;
    to.lists = from.lists;  // immutable NSArrays: sharing them is what -copy of an NSArray does
}

}  // namespace

void install_configuration() {
    auto def = class_def<configuration_payload>("VZVirtualMachineConfiguration");
    def.method("init",
               [](configuration self) -> id {
                   // Apple: the platform "Defaults to VZGenericPlatformConfiguration"; every list is
                   // "Empty by default". Simulation: 1 CPU and the minimum memory until set.
                   self->platform = alloc_init(sim::detail::existing_class("VZGenericPlatformConfiguration"));
                   self->memory_size = current_host_limits().minimum_memory_size;
                   for (const char* name : configuration_lists)
                       self->lists[name] = ns_array(std::vector<strong>{});
                   return self;
               })
        .method("bootLoader", [](configuration self) -> id { return self->boot_loader.get(); })
        .method("setBootLoader:", [](configuration self, id value) { self->boot_loader = retained(value); })
        .method("platform", [](configuration self) -> id { return self->platform.get(); })
        .method("setPlatform:", [](configuration self, id value) { self->platform = retained(value); })
        .method("CPUCount", [](configuration self) -> NSUInteger { return self->cpu_count; })
        .method("setCPUCount:", [](configuration self, NSUInteger value) { self->cpu_count = value; })
        .method("memorySize", [](configuration self) -> std::uint64_t { return self->memory_size; })
        .method("setMemorySize:", [](configuration self, std::uint64_t value) { self->memory_size = value; })
        .method("validateWithError:",
                [](configuration self, id* error) -> BOOL {
                    if (strong injected =
                            take_injected("VZVirtualMachineConfiguration", "validateWithError:")) {
                        report(error, std::move(injected));
                        return NO;
                    }
                    const std::string problem = problem_of(*self);
                    if (problem.empty()) return YES;
                    report(error, invalid_configuration(problem));
                    return NO;
                })
        // arm64, macOS 14. Simulation: every configuration the simulation builds can be saved.
        .method("validateSaveRestoreSupportWithError:",
                [](configuration, id* error) -> BOOL {
                    if (strong injected = take_injected("VZVirtualMachineConfiguration",
                                                        "validateSaveRestoreSupportWithError:")) {
                        report(error, std::move(injected));
                        return NO;
                    }
                    return YES;
                })
        // NSCopying: VZVirtualMachine's initialiser copies its configuration.
        .method("copyWithZone:",
                [](configuration self, void*) -> id {
                    id copy = send<id>(object_getClass(self), sel<"alloc">());
                    copy_into(*payload<configuration_payload>(copy), *self);
                    return copy;
                })
        .class_method("minimumAllowedCPUCount",
                      [](Class) -> NSUInteger { return current_host_limits().minimum_cpu_count; })
        .class_method("maximumAllowedCPUCount",
                      [](Class) -> NSUInteger { return current_host_limits().maximum_cpu_count; })
        .class_method("minimumAllowedMemorySize",
                      [](Class) -> std::uint64_t { return current_host_limits().minimum_memory_size; })
        .class_method("maximumAllowedMemorySize",
                      [](Class) -> std::uint64_t { return current_host_limits().maximum_memory_size; });
    for (const char* name : configuration_lists) {
        const std::string getter = name;
        def.method(getter.c_str(), [getter](configuration self) -> id { return self->lists[getter].get(); });
        def.method(setter_for(getter).c_str(), [getter](configuration self, id value) {
            // The properties are nonnull `copy` NSArrays.
            self->lists[getter] = value ? copied(value) : ns_array(std::vector<strong>{});
        });
    }
    def.done();
}

}  // namespace vmrt::objc::sim::vz::detail
