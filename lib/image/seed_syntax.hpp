// The syntax rules of seed values that end up in system files or network settings (host names,
// user names, addresses, MACs, interface names). Pure functions, no I/O.
#pragma once

#include <string_view>

namespace vmrt::image::syntax {

/// RFC 1123: dot-separated labels of [A-Za-z0-9-], 1 to 63 characters, no leading or trailing
/// '-'; at most 253 characters in all; one trailing dot is not accepted.
bool is_host_name(std::string_view s) noexcept;

/// A portable Linux user or group name: [a-z_][a-z0-9_-]*, 1 to 32 characters.
bool is_user_name(std::string_view s) noexcept;

/// A cloud-init instance id: 1 to 128 characters of [A-Za-z0-9._:-], not "." or "..".
bool is_instance_id(std::string_view s) noexcept;

/// An IPv4 address in dotted-quad form or an IPv6 address (as inet_pton reads them).
bool is_ip_address(std::string_view s) noexcept;

/// ADDRESS/PREFIX with a decimal prefix of at most 32 (IPv4) or 128 (IPv6), no leading zeros.
bool is_ip_prefix(std::string_view s) noexcept;

/// Six pairs of hex digits separated by ':' ("52:54:00:AB:cd:ef").
bool is_mac_address(std::string_view s) noexcept;

/// A network interface name or netplan id: 1 to 15 characters of [A-Za-z0-9_.-], not "." or "..".
bool is_interface_name(std::string_view s) noexcept;

/// One line of text: no line feed, carriage return or NUL (and valid UTF-8 is checked apart).
bool is_single_line(std::string_view s) noexcept;

}  // namespace vmrt::image::syntax
