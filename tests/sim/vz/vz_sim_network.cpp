// Network: VZMACAddress, VZNetworkDeviceAttachment, VZNATNetworkDeviceAttachment,
// VZFileHandleNetworkDeviceAttachment (macOS 11; maximumTransmissionUnit macOS 13),
// VZNetworkDeviceConfiguration, VZVirtioNetworkDeviceConfiguration (macOS 11).
#include "vz_sim_model.hpp"

#include <sys/socket.h>

#include <cstdio>

namespace vmrt::objc::sim::vz::detail {

namespace {

using mac = self_t<mac_address_payload>;
using file_handle_nic = self_t<file_handle_network_payload>;
using nic = self_t<network_device_payload>;

bool parse_mac(const std::string& text, std::uint8_t (&out)[6]) {
    // -initWithString: "The string should be formatted representing the 6 bytes in hexadecimal
    // separated by a colon character. e.g. @\"01:23:45:ab:cd:ef\"". Either case is accepted.
    if (text.size() != 17) return false;
    for (std::size_t i = 0; i < 6; ++i) {
        if (i > 0 && text[i * 3 - 1] != ':') return false;
        unsigned value = 0;
        for (std::size_t j = 0; j < 2; ++j) {
            char c = text[i * 3 + j];
            unsigned digit = 0;
            if (c >= '0' && c <= '9')
                digit = static_cast<unsigned>(c - '0');
            else if (c >= 'a' && c <= 'f')
                digit = static_cast<unsigned>(c - 'a' + 10);
            else if (c >= 'A' && c <= 'F')
                digit = static_cast<unsigned>(c - 'A' + 10);
            else
                return false;
            value = value * 16 + digit;
        }
        out[i] = static_cast<std::uint8_t>(value);
    }
    return true;
}

id random_mac() {
    id obj = send<id>(sim::detail::existing_class("VZMACAddress"), sel<"alloc">());
    auto* p = payload<mac_address_payload>(obj);
    random_bytes(p->octets, 6);
    // Locally administered (bit 1 of the first octet), unicast (bit 0 clear).
    p->octets[0] = static_cast<std::uint8_t>((p->octets[0] | 0x02) & ~0x01);
    return obj;
}

int socket_option(int fd, int option) {
    int value = 0;
    socklen_t size = sizeof value;
    if (::getsockopt(fd, SOL_SOCKET, option, &value, &size) != 0) return -1;
    return value;
}

}  // namespace

void install_network() {
    class_def<mac_address_payload>("VZMACAddress")
        .method("init", [](mac self) -> id { unavailable(self, "init"); })
        .method("initWithString:",
                [](mac self, id text) -> id {
                    if (!text || !parse_mac(to_string(text), self->octets)) {
                        send<void>(self, sel<"release">());
                        return nullptr;
                    }
                    return self;
                })
        .class_method("randomLocallyAdministeredAddress",
                      [](Class) -> id { return autorelease(random_mac()); })
        .method("string",
                [](mac self) -> id {
                    char text[18];
                    const auto* o = self->octets;
                    std::snprintf(text, sizeof text, "%02x:%02x:%02x:%02x:%02x:%02x", o[0], o[1], o[2], o[3],
                                  o[4], o[5]);
                    return autorelease(ns_string(text).detach());
                })
        .method("isBroadcastAddress",
                [](mac self) -> BOOL {
                    for (auto octet : self->octets)
                        if (octet != 0xff) return NO;
                    return YES;
                })
        .method("isMulticastAddress", [](mac self) -> BOOL { return (self->octets[0] & 1) ? YES : NO; })
        .method("isUnicastAddress", [](mac self) -> BOOL { return (self->octets[0] & 1) ? NO : YES; })
        .method("isLocallyAdministeredAddress",
                [](mac self) -> BOOL { return (self->octets[0] & 2) ? YES : NO; })
        .method("isUniversallyAdministeredAddress",
                [](mac self) -> BOOL { return (self->octets[0] & 2) ? NO : YES; })
        .method("isEqual:",
                [](mac self, id other) -> BOOL {
                    auto* theirs = other ? payload<mac_address_payload>(other) : nullptr;
                    if (!theirs) return NO;
                    for (int i = 0; i < 6; ++i)
                        if (theirs->octets[i] != self->octets[i]) return NO;
                    return YES;
                })
        .method("copyWithZone:", [](mac self, void*) -> id { return send<id>(self, sel<"retain">()); })
        .done();

    class_def<>("VZNetworkDeviceAttachment")
        .method("init", [](self_t<> self) -> id { unavailable(self, "init"); })
        .done();

    class_def<>("VZNATNetworkDeviceAttachment", "VZNetworkDeviceAttachment")
        .method("init", [](self_t<> self) -> id { return self; })
        .done();

    // "The file handle must hold a connected datagram socket." The initialiser cannot fail (no error
    // parameter); the simulation records what it finds on the socket, and validation refuses a
    // socket that is not a connected datagram socket.
    class_def<file_handle_network_payload>("VZFileHandleNetworkDeviceAttachment", "VZNetworkDeviceAttachment")
        .method("init", [](file_handle_nic self) -> id { unavailable(self, "init"); })
        .method("initWithFileHandle:",
                [](file_handle_nic self, id handle) -> id {
                    self->file_handle = retained(handle);
                    const int fd = file_handle_fd(handle);
                    self->socket_type = socket_option(fd, SO_TYPE);
                    self->so_sndbuf = socket_option(fd, SO_SNDBUF);
                    self->so_rcvbuf = socket_option(fd, SO_RCVBUF);
                    sockaddr_storage peer{};
                    socklen_t size = sizeof peer;
                    self->connected = ::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &size) == 0;
                    return self;
                })
        .method("fileHandle", [](file_handle_nic self) -> id { return self->file_handle.get(); })
        .method("maximumTransmissionUnit",
                [](file_handle_nic self) -> NSInteger { return self->maximum_transmission_unit; })
        .method("setMaximumTransmissionUnit:",
                [](file_handle_nic self, NSInteger mtu) { self->maximum_transmission_unit = mtu; })
        .done();

    class_def<network_device_payload>("VZNetworkDeviceConfiguration")
        .method("init", [](nic self) -> id { unavailable(self, "init"); })
        .method("attachment", [](nic self) -> id { return self->attachment.get(); })
        .method("setAttachment:", [](nic self, id attachment) { self->attachment = retained(attachment); })
        .method("MACAddress", [](nic self) -> id { return self->mac_address.get(); })
        .method("setMACAddress:", [](nic self, id address) { self->mac_address = copied(address); })
        .method("copyWithZone:", [](nic self, void*) -> id { return send<id>(self, sel<"retain">()); })
        .done();

    // Apple: "The default is a random, locally administered, unicast MAC address."
    class_def<>("VZVirtioNetworkDeviceConfiguration", "VZNetworkDeviceConfiguration")
        .method("init",
                [](self_t<> self) -> id {
                    payload<network_device_payload>(self)->mac_address = strong::adopt(random_mac());
                    return self;
                })
        .done();
}

}  // namespace vmrt::objc::sim::vz::detail
