// Device builders: storage, network (with the datagram socket's buffer sizes), the console log and
// the control port, and the devices without settings.
#include "hv/apple_vz/objc/foundation.hpp"
#include "hv/apple_vz/vz_build.hpp"

#include <vmrt/io/unique_fd.hpp>

#include <boost/system/system_category.hpp>

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace vmrt::hv::vz {

namespace {

using build::failure;
using build::ns_failure;
using build::vz_class;
using objc::BOOL;
using objc::id;
using objc::NSInteger;
using objc::NSUInteger;
using objc::sel;
using objc::send;
using objc::strong;

error_code system_error(int value) { return {value, boost::system::system_category()}; }

std::string errno_text(int value) { return std::strerror(value); }

// The qcow2 header starts with "QFI\xfb" (QEMU's docs/interop/qcow2.txt). VZ would take such a file
// as a raw disk and show the guest qcow2 metadata instead of its file system.
constexpr unsigned char qcow2_magic[4] = {'Q', 'F', 'I', 0xfb};

void check_raw_image(const storage_device& disk) {
    const std::string path = disk.image.string();
    io::unique_fd fd(::open(disk.image.c_str(), O_RDONLY | O_CLOEXEC));
    // VZ reports a missing image as "Operation not supported" (NSPOSIXErrorDomain 45), which sends
    // people looking for entitlement problems: name the file and the real errno here.
    if (!fd)
        throw failure(system_error(errno), disk.field,
                      "cannot open the disk image " + path + ": " + errno_text(errno));
    unsigned char magic[sizeof qcow2_magic] = {};
    ssize_t n = ::pread(fd.get(), magic, sizeof magic, 0);
    if (n == static_cast<ssize_t>(sizeof magic) && std::memcmp(magic, qcow2_magic, sizeof magic) == 0)
        throw failure(errc::unsupported, disk.field,
                      path +
                          " is a qcow2 image; Virtualization.framework takes raw disk images only "
                          "(convert it with: qemu-img convert -O raw " +
                          path + " <raw file>)");
}

strong dup_file_handle(int fd, const std::string& field) {
    io::unique_fd copy(::fcntl(fd, F_DUPFD_CLOEXEC, 0));
    if (!copy)
        throw failure(system_error(errno), field,
                      "cannot duplicate fd " + std::to_string(fd) + ": " + errno_text(errno));
    // closeOnDealloc:YES: the handle owns the copy from here (it stays with `copy` if none is made).
    strong handle = objc::file_handle_owning(copy);
    if (!handle)
        throw failure(errc::internal, field, "cannot make an NSFileHandle for fd " + std::to_string(fd));
    return handle;
}

int socket_int(int fd, int option) {
    int value = 0;
    socklen_t size = sizeof value;
    if (::getsockopt(fd, SOL_SOCKET, option, &value, &size) != 0) return -1;
    return value;
}

strong make_file_handle_attachment(const file_handle_attachment& plan, const std::string& nic_field,
                                   std::size_t index, const vz_build_resources& resources) {
    int fd = plan.fd;
    std::string field = nic_field + ".fd";
    if (fd < 0) {
        field = nic_field + ".switch_network";
        auto it = resources.switch_port_fds.find(index);
        if (it == resources.switch_port_fds.end() || it->second < 0)
            throw failure(errc::internal, field,
                          "no port of the switch network \"" + plan.switch_network + "\" was given for " +
                              nic_field);
        fd = it->second;
    }
    int type = 0;
    socklen_t size = sizeof type;
    if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &size) != 0)
        throw failure(errc::invalid_spec, field,
                      "fd " + std::to_string(fd) + " is not a socket: " + errno_text(errno));
    if (type != SOCK_DGRAM)
        throw failure(errc::invalid_spec, field,
                      "fd " + std::to_string(fd) +
                          " is not a datagram socket; VZFileHandleNetworkDeviceAttachment takes one Ethernet "
                          "frame per datagram (SOCK_DGRAM)");
    size_datagram_socket_buffers(fd, plan.so_sndbuf, plan.so_rcvbuf, field);
    strong handle = dup_file_handle(fd, field);
    return objc::alloc_init<id>(vz_class("VZFileHandleNetworkDeviceAttachment"), sel<"initWithFileHandle:">(),
                                handle.get());
}

}  // namespace

void size_datagram_socket_buffers(int fd, int sndbuf, int rcvbuf, const std::string& field) {
    // Smallest buffer worth having: a few full-size frames.
    constexpr int floor = 16 * 1024;
    auto fail = [&](const std::string& what, int value) {
        return failure(system_error(errno), field,
                       "cannot set " + what + " to " + std::to_string(value) +
                           " bytes: " + errno_text(errno));
    };
    // macOS refuses (ENOBUFS) a buffer above kern.ipc.maxsockbuf; Linux caps it silently.
    int rcv = rcvbuf;
    while (::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv) != 0) {
        if (errno != ENOBUFS || rcv / 2 < 2 * floor) throw fail("SO_RCVBUF", rcv);
        rcv /= 2;
    }
    // Keep the plan's ratio when the receive buffer had to shrink.
    int snd = std::max(floor, static_cast<int>(static_cast<long long>(sndbuf) * rcv / rcvbuf));
    while (::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &snd, sizeof snd) != 0) {
        if (errno != ENOBUFS || snd / 2 < floor) throw fail("SO_SNDBUF", snd);
        snd /= 2;
    }
    // Apple: "The value of SO_RCVBUF is expected to be at least double the value of SO_SNDBUF"
    // (VZFileHandleNetworkDeviceAttachment.h). Compare what the kernel granted (Linux reports twice
    // the requested sizes, both alike, so the ratio holds either way).
    for (;;) {
        const int granted_snd = socket_int(fd, SO_SNDBUF);
        const int granted_rcv = socket_int(fd, SO_RCVBUF);
        if (granted_snd < 0 || granted_rcv < 0)
            throw failure(system_error(errno), field,
                          "cannot read the socket's buffer sizes: " + errno_text(errno));
        if (static_cast<long long>(granted_rcv) >= 2LL * granted_snd) return;
        if (snd / 2 < floor)
            throw failure(errc::unsupported, field,
                          "the kernel grants SO_RCVBUF " + std::to_string(granted_rcv) +
                              " bytes, less than twice SO_SNDBUF " + std::to_string(granted_snd) +
                              ", as Virtualization.framework requires of a file-handle NIC's socket");
        snd /= 2;
        if (::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &snd, sizeof snd) != 0) throw fail("SO_SNDBUF", snd);
    }
}

namespace build {

strong make_storage_device(const storage_device& disk) {
    check_raw_image(disk);
    strong url = objc::ns_file_url(disk.image);
    id ns_error = nullptr;
    strong attachment = strong::adopt(send<id, id, BOOL, NSInteger, NSInteger, id*>(
        objc::alloc(vz_class("VZDiskImageStorageDeviceAttachment")),
        sel<"initWithURL:readOnly:cachingMode:synchronizationMode:error:">(), url.get(),
        disk.read_only ? objc::YES : objc::NO, static_cast<NSInteger>(disk.caching_mode),
        static_cast<NSInteger>(disk.synchronization_mode), &ns_error));
    if (!attachment) throw ns_failure(ns_error, "attach the disk image " + disk.image.string(), disk.field);
    const char* controller = disk.controller == storage_controller::nvme
                                 ? "VZNVMExpressControllerDeviceConfiguration"
                                 : "VZVirtioBlockDeviceConfiguration";
    return objc::alloc_init<id>(vz_class(controller), sel<"initWithAttachment:">(), attachment.get());
}

strong make_network_device(const network_device& nic, std::size_t index,
                           const vz_build_resources& resources) {
    strong text = objc::ns_string(nic.mac.to_string());
    strong mac = objc::alloc_init<id>(vz_class("VZMACAddress"), sel<"initWithString:">(), text.get());
    if (!mac)
        throw failure(errc::invalid_spec, nic.field + ".mac",
                      "Virtualization.framework does not take the MAC address " + nic.mac.to_string());
    strong attachment;
    if (const auto* fh = std::get_if<file_handle_attachment>(&nic.attachment))
        attachment = make_file_handle_attachment(*fh, nic.field, index, resources);
    else
        attachment = objc::alloc_init(vz_class("VZNATNetworkDeviceAttachment"));
    strong device = objc::alloc_init(vz_class("VZVirtioNetworkDeviceConfiguration"));
    send<void, id>(device, sel<"setMACAddress:">(), mac.get());
    send<void, id>(device, sel<"setAttachment:">(), attachment.get());
    return device;
}

strong make_serial_port(const serial_console& console) {
    strong url = objc::ns_file_url(console.log);
    id ns_error = nullptr;
    strong attachment = strong::adopt(send<id, id, BOOL, id*>(
        objc::alloc(vz_class("VZFileSerialPortAttachment")), sel<"initWithURL:append:error:">(), url.get(),
        console.append ? objc::YES : objc::NO, &ns_error));
    if (!attachment) throw ns_failure(ns_error, "open the console log " + console.log.string(), "serial_log");
    strong port = objc::alloc_init(vz_class("VZVirtioConsoleDeviceSerialPortConfiguration"));
    send<void, id>(port, sel<"setAttachment:">(), attachment.get());
    return port;
}

strong make_control_console(const control_port& control, int fd) {
    if (fd < 0) throw failure(errc::internal, "control_channel", "no socket was given for the control port");
    // One handle for both directions: the socket pair's end is read and written alike.
    strong handle = dup_file_handle(fd, "control_channel");
    strong attachment = objc::alloc_init<id, id>(vz_class("VZFileHandleSerialPortAttachment"),
                                                 sel<"initWithFileHandleForReading:fileHandleForWriting:">(),
                                                 handle.get(), handle.get());
    strong port = objc::alloc_init(vz_class("VZVirtioConsolePortConfiguration"));
    strong name = objc::ns_string(control.name);
    send<void, id>(port, sel<"setName:">(), name.get());
    send<void, id>(port, sel<"setAttachment:">(), attachment.get());
    strong device = objc::alloc_init(vz_class("VZVirtioConsoleDeviceConfiguration"));
    // -ports is +0 and owned by the device.
    send<void, id, NSUInteger>(send<id>(device, sel<"ports">()), sel<"setObject:atIndexedSubscript:">(),
                               port.get(), 0);
    return device;
}

strong make_plain_device(const char* class_name) { return objc::alloc_init(vz_class(class_name)); }

}  // namespace build

}  // namespace vmrt::hv::vz
