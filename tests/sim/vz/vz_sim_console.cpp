// Serial ports and consoles: VZSerialPortAttachment, VZFileSerialPortAttachment,
// VZFileHandleSerialPortAttachment, VZSerialPortConfiguration,
// VZVirtioConsoleDeviceSerialPortConfiguration (macOS 11); VZConsoleDeviceConfiguration,
// VZVirtioConsoleDeviceConfiguration, VZConsolePortConfiguration, VZVirtioConsolePortConfiguration,
// VZVirtioConsolePortConfigurationArray (macOS 13).
#include "vz_sim_model.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

namespace vmrt::objc::sim::vz::detail {

file_serial_attachment_payload::~file_serial_attachment_payload() {
    if (fd >= 0) ::close(fd);
}

namespace {

using file_serial = self_t<file_serial_attachment_payload>;
using handle_serial = self_t<file_handle_serial_attachment_payload>;
using port_array = self_t<console_port_array_payload>;
using console_port = self_t<console_port_payload>;

// -initWithURL:append:error: "Initialize the VZFileSerialPortAttachment from a URL of a file":
// the file is created when missing; with append:NO an existing file is truncated.
id init_file_serial(file_serial self, id url, BOOL append, id* error) {
    if (strong injected = take_injected("VZFileSerialPortAttachment", "initWithURL:append:error:"))
        return fail_init(self, error, std::move(injected));
    const std::string path = path_of(url);
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC), 0644);
    if (fd < 0) return fail_init(self, error, posix_error(errno, "Cannot open the serial port file", path));
    self->fd = fd;
    self->url = copied(url);
    self->append = append != NO;
    return self;
}

id make_port_array() {
    return send<id>(sim::detail::existing_class("VZVirtioConsolePortConfigurationArray"), sel<"alloc">());
}

}  // namespace

void install_console() {
    class_def<>("VZSerialPortAttachment")
        .method("init", [](self_t<> self) -> id { unavailable(self, "init"); })
        .done();

    class_def<file_serial_attachment_payload>("VZFileSerialPortAttachment", "VZSerialPortAttachment")
        .method("initWithURL:append:error:", &init_file_serial)
        .method("URL", [](file_serial self) -> id { return self->url.get(); })
        .method("append", [](file_serial self) -> BOOL { return self->append ? YES : NO; })
        .done();

    class_def<file_handle_serial_attachment_payload>("VZFileHandleSerialPortAttachment",
                                                     "VZSerialPortAttachment")
        .method("initWithFileHandleForReading:fileHandleForWriting:",
                [](handle_serial self, id reading, id writing) -> id {
                    self->reading = retained(reading);
                    self->writing = retained(writing);
                    return self;
                })
        .method("fileHandleForReading", [](handle_serial self) -> id { return self->reading.get(); })
        .method("fileHandleForWriting", [](handle_serial self) -> id { return self->writing.get(); })
        .done();

    class_def<attachment_payload>("VZSerialPortConfiguration")
        .method("init", [](self_t<attachment_payload> self) -> id { unavailable(self, "init"); })
        .method("attachment", [](self_t<attachment_payload> self) -> id { return self->attachment.get(); })
        .method("setAttachment:",
                [](self_t<attachment_payload> self, id a) { self->attachment = retained(a); })
        .method("copyWithZone:",
                [](self_t<attachment_payload> self, void*) -> id { return send<id>(self, sel<"retain">()); })
        .done();

    class_def<>("VZVirtioConsoleDeviceSerialPortConfiguration", "VZSerialPortConfiguration")
        .method("init", [](self_t<> self) -> id { return self; })
        .done();

    class_def<>("VZConsoleDeviceConfiguration")
        .method("init", [](self_t<> self) -> id { unavailable(self, "init"); })
        .method("copyWithZone:", [](self_t<> self, void*) -> id { return send<id>(self, sel<"retain">()); })
        .done();

    // "This array stores a collection of port configurations ... The index in the array corresponds
    // to the port index used in the virtual machine. A maximumPortCount value may be set but must be
    // larger than the highest indexed port. If no maximumPortCount value is set, the highest indexed
    // port will be used" (VZVirtioConsolePortConfigurationArray.h). -init is NS_UNAVAILABLE: the
    // device creates its array.
    class_def<console_port_array_payload>("VZVirtioConsolePortConfigurationArray")
        .method("init", [](port_array self) -> id { unavailable(self, "init"); })
        .method("maximumPortCount",
                [](port_array self) -> std::uint32_t {
                    if (self->maximum_port_count != 0) return self->maximum_port_count;
                    return self->ports.empty() ? 0
                                               : static_cast<std::uint32_t>(self->ports.rbegin()->first + 1);
                })
        .method("setMaximumPortCount:",
                [](port_array self, std::uint32_t n) { self->maximum_port_count = n; })
        .method("objectAtIndexedSubscript:",
                [](port_array self, NSUInteger index) -> id {
                    auto it = self->ports.find(index);
                    return it == self->ports.end() ? nullptr : it->second.get();
                })
        .method("setObject:atIndexedSubscript:",
                [](port_array self, id port, NSUInteger index) {
                    if (port)
                        self->ports[index] = retained(port);
                    else
                        self->ports.erase(index);
                })
        .method("copyWithZone:", [](port_array self, void*) -> id { return send<id>(self, sel<"retain">()); })
        .done();

    class_def<console_device_payload>("VZVirtioConsoleDeviceConfiguration", "VZConsoleDeviceConfiguration")
        .method("init",
                [](self_t<console_device_payload> self) -> id {
                    self->ports = strong::adopt(make_port_array());
                    return self;
                })
        .method("ports", [](self_t<console_device_payload> self) -> id { return self->ports.get(); })
        .done();

    class_def<attachment_payload>("VZConsolePortConfiguration")
        .method("init", [](self_t<attachment_payload> self) -> id { unavailable(self, "init"); })
        .method("attachment", [](self_t<attachment_payload> self) -> id { return self->attachment.get(); })
        .method("setAttachment:",
                [](self_t<attachment_payload> self, id a) { self->attachment = retained(a); })
        .method("copyWithZone:",
                [](self_t<attachment_payload> self, void*) -> id { return send<id>(self, sel<"retain">()); })
        .done();

    class_def<console_port_payload>("VZVirtioConsolePortConfiguration", "VZConsolePortConfiguration")
        .method("init", [](console_port self) -> id { return self; })
        .method("name", [](console_port self) -> id { return self->name.get(); })
        .method("setName:", [](console_port self, id name) { self->name = copied(name); })
        .method("isConsole", [](console_port self) -> BOOL { return self->is_console ? YES : NO; })
        .method("setIsConsole:", [](console_port self, BOOL value) { self->is_console = value != NO; })
        .done();
}

}  // namespace vmrt::objc::sim::vz::detail
