// inspect_configuration(): a configuration object graph read back into plain C++ through Apple's
// public getters (a getter the running "macOS" lacks is skipped, as a client would have to).
#include "vz_sim_model.hpp"

namespace vmrt::objc::sim::vz {

namespace {

using detail::class_name_of;

bool kind_of(id obj, const char* class_name) {
    Class c = sim::detail::existing_class(class_name);
    return obj && send<BOOL, Class>(obj, sel<"isKindOfClass:">(), c);
}

id get(id obj, SEL getter) { return obj ? send<id>(obj, getter) : nullptr; }

bool flag(id obj, SEL getter) { return obj && send<BOOL>(obj, getter) != NO; }

std::vector<strong> items(id configuration, SEL getter) {
    if (!responds_to(configuration, getter)) return {};
    return array_items(send<id>(configuration, getter));
}

serial_attachment_view serial_attachment(id attachment) {
    serial_attachment_view v;
    v.class_name = class_name_of(attachment);
    if (kind_of(attachment, "VZFileSerialPortAttachment")) {
        v.url = url_path(get(attachment, sel<"URL">()));
        v.append = flag(attachment, sel<"append">());
    } else if (kind_of(attachment, "VZFileHandleSerialPortAttachment")) {
        id reading = get(attachment, sel<"fileHandleForReading">());
        id writing = get(attachment, sel<"fileHandleForWriting">());
        v.read_fd = file_handle_fd(reading);
        v.write_fd = file_handle_fd(writing);
        v.same_handle = reading && reading == writing;
    }
    return v;
}

boot_loader_view boot_loader(id loader) {
    boot_loader_view v;
    v.class_name = class_name_of(loader);
    if (kind_of(loader, "VZLinuxBootLoader")) {
        v.kernel = url_path(get(loader, sel<"kernelURL">()));
        v.initial_ramdisk = url_path(get(loader, sel<"initialRamdiskURL">()));
        v.command_line = to_string(get(loader, sel<"commandLine">()));
    } else if (kind_of(loader, "VZEFIBootLoader")) {
        v.variable_store = url_path(get(get(loader, sel<"variableStore">()), sel<"URL">()));
    }
    return v;
}

platform_view platform(id configuration) {
    platform_view v;
    if (!responds_to(configuration, sel<"platform">())) return v;
    id p = send<id>(configuration, sel<"platform">());
    v.class_name = class_name_of(p);
    v.has_machine_identifier = p && responds_to(p, sel<"machineIdentifier">());
    if (v.has_machine_identifier)
        v.machine_identifier =
            data_bytes(get(get(p, sel<"machineIdentifier">()), sel<"dataRepresentation">()));
    return v;
}

storage_view storage(id device) {
    storage_view v;
    v.class_name = class_name_of(device);
    id attachment = get(device, sel<"attachment">());
    v.attachment_class = class_name_of(attachment);
    if (kind_of(attachment, "VZDiskImageStorageDeviceAttachment")) {
        v.url = url_path(get(attachment, sel<"URL">()));
        v.read_only = flag(attachment, sel<"isReadOnly">());
        if (responds_to(attachment, sel<"cachingMode">())) {
            v.caching_mode = send<NSInteger>(attachment, sel<"cachingMode">());
            v.synchronization_mode = send<NSInteger>(attachment, sel<"synchronizationMode">());
        }
    }
    return v;
}

network_view network(id device) {
    network_view v;
    v.class_name = class_name_of(device);
    v.mac = to_string(get(get(device, sel<"MACAddress">()), sel<"string">()));
    id attachment = get(device, sel<"attachment">());
    v.attachment_class = class_name_of(attachment);
    if (kind_of(attachment, "VZFileHandleNetworkDeviceAttachment")) {
        v.fd = file_handle_fd(get(attachment, sel<"fileHandle">()));
        if (responds_to(attachment, sel<"maximumTransmissionUnit">()))
            v.maximum_transmission_unit = send<NSInteger>(attachment, sel<"maximumTransmissionUnit">());
        // Apple has no getter for what the socket looked like; the simulation recorded it.
        const auto* recorded = payload<detail::file_handle_network_payload>(attachment);
        v.socket_type = recorded->socket_type;
        v.so_sndbuf = recorded->so_sndbuf;
        v.so_rcvbuf = recorded->so_rcvbuf;
    }
    return v;
}

console_device_view console_device(id device) {
    console_device_view v;
    v.class_name = class_name_of(device);
    if (!kind_of(device, "VZVirtioConsoleDeviceConfiguration")) return v;
    id ports = get(device, sel<"ports">());
    v.maximum_port_count = send<std::uint32_t>(ports, sel<"maximumPortCount">());
    for (NSUInteger i = 0; i < v.maximum_port_count; ++i) {
        id port = send<id, NSUInteger>(ports, sel<"objectAtIndexedSubscript:">(), i);
        if (!port) continue;
        console_port_view p;
        p.index = i;
        p.class_name = class_name_of(port);
        p.name = to_string(get(port, sel<"name">()));
        p.is_console = flag(port, sel<"isConsole">());
        p.attachment = serial_attachment(get(port, sel<"attachment">()));
        v.ports.push_back(std::move(p));
    }
    return v;
}

shared_directory_view shared_directory(id directory) {
    return shared_directory_view{.url = url_path(get(directory, sel<"URL">())),
                                 .read_only = flag(directory, sel<"isReadOnly">())};
}

directory_sharing_view directory_sharing(id device) {
    directory_sharing_view v;
    v.class_name = class_name_of(device);
    if (!kind_of(device, "VZVirtioFileSystemDeviceConfiguration")) return v;
    v.tag = to_string(get(device, sel<"tag">()));
    id share = get(device, sel<"share">());
    v.share.class_name = class_name_of(share);
    if (kind_of(share, "VZSingleDirectoryShare")) {
        v.share.directory = shared_directory(get(share, sel<"directory">()));
    } else if (kind_of(share, "VZMultipleDirectoryShare")) {
        id directories = get(share, sel<"directories">());
        for (const strong& key : array_items(get(directories, sel<"allKeys">())))
            v.share.directories[to_string(key.get())] =
                shared_directory(dictionary_value(directories, to_string(key.get())).get());
    }
    return v;
}

std::vector<std::string> class_names(const std::vector<strong>& objects) {
    std::vector<std::string> names;
    for (const strong& obj : objects) names.push_back(class_name_of(obj.get()));
    return names;
}

}  // namespace

configuration_view inspect_configuration(id c) {
    autorelease_pool pool;
    configuration_view v;
    v.boot_loader = boot_loader(get(c, sel<"bootLoader">()));
    v.platform = platform(c);
    v.cpu_count = send<NSUInteger>(c, sel<"CPUCount">());
    v.memory_size = send<std::uint64_t>(c, sel<"memorySize">());
    for (const strong& d : items(c, sel<"storageDevices">())) v.storage_devices.push_back(storage(d.get()));
    for (const strong& d : items(c, sel<"networkDevices">())) v.network_devices.push_back(network(d.get()));
    for (const strong& d : items(c, sel<"serialPorts">()))
        v.serial_ports.push_back(
            serial_port_view{class_name_of(d.get()), serial_attachment(get(d.get(), sel<"attachment">()))});
    for (const strong& d : items(c, sel<"consoleDevices">()))
        v.console_devices.push_back(console_device(d.get()));
    v.entropy_devices = class_names(items(c, sel<"entropyDevices">()));
    v.memory_balloon_devices = class_names(items(c, sel<"memoryBalloonDevices">()));
    v.socket_devices = class_names(items(c, sel<"socketDevices">()));
    for (const strong& d : items(c, sel<"directorySharingDevices">()))
        v.directory_sharing_devices.push_back(directory_sharing(d.get()));
    return v;
}

}  // namespace vmrt::objc::sim::vz
