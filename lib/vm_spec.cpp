// The small, self-contained pieces of vm_spec.hpp: MAC addresses, name/tag syntax, enum
// spellings. JSON lives in vm_spec_json.cpp and the cross-field rules in vm_spec_validate.cpp.
#include "hex_text.hpp"

#include <vmrt/vm_spec.hpp>

#include <boost/throw_exception.hpp>

#include <openssl/evp.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>

namespace vmrt {
namespace {

// Locale-independent on purpose: names end up in file names and command lines, where only the
// ASCII meaning of "alphanumeric" is safe.
bool is_ascii_alnum(char c) noexcept {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

// [A-Za-z0-9][A-Za-z0-9._-]{0,max_len-1}
bool is_simple_identifier(std::string_view s, std::size_t max_len) noexcept {
    if (s.empty() || s.size() > max_len || !is_ascii_alnum(s.front())) return false;
    for (char c : s)
        if (!is_ascii_alnum(c) && c != '.' && c != '_' && c != '-') return false;
    return true;
}

std::array<unsigned char, 32> sha256(std::string_view data) {
    std::array<unsigned char, 32> digest{};
    unsigned int length = 0;
    if (EVP_Digest(data.data(), data.size(), digest.data(), &length, EVP_sha256(), nullptr) != 1 ||
        length != digest.size())
        throw std::runtime_error("OpenSSL SHA-256 failed");
    return digest;
}

}  // namespace

std::string mac_address::to_string() const {
    const std::string digits = detail::hex_string(octets);
    std::string out;
    out.reserve(17);
    for (std::size_t i = 0; i < octets.size(); ++i) {
        if (i != 0) out += ':';
        out.append(digits, 2 * i, 2);
    }
    return out;
}

std::optional<mac_address> mac_address::parse(std::string_view text) {
    // Exactly six two-digit groups separated by ':'; no "-" separators, no short groups, so
    // that a typo cannot silently produce a different address.
    if (text.size() != 17) return std::nullopt;
    mac_address mac;
    for (std::size_t i = 0; i < 6; ++i) {
        const std::size_t at = i * 3;
        if (i != 0 && text[at - 1] != ':') return std::nullopt;
        const int high = detail::hex_digit_value(text[at]);
        const int low = detail::hex_digit_value(text[at + 1]);
        if (high < 0 || low < 0) return std::nullopt;
        mac.octets[i] = static_cast<std::uint8_t>(high * 16 + low);
    }
    return mac;
}

mac_address default_mac(std::string_view vm_name, std::size_t index) {
    // The hash input covers the name and the index's "block" of 256 NICs; the index within the
    // block is added to the last octet. NICs 0..255 of one VM therefore differ by construction
    // rather than by the luck of a hash, and every VM name still gets its own 46-bit address.
    std::string input = "vmrt-default-mac";
    input += '\0';
    input += vm_name;
    input += '\0';
    auto block = static_cast<std::uint64_t>(index) >> 8;
    for (int i = 0; i < 8; ++i, block >>= 8) input += static_cast<char>(block & 0xff);
    const auto digest = sha256(input);

    mac_address mac;
    for (std::size_t i = 0; i < mac.octets.size(); ++i) mac.octets[i] = digest[i];
    // Bit 0 of the first octet clear: unicast. Bit 1 set: locally administered, so the address
    // can never collide with a vendor-assigned one.
    mac.octets[0] = static_cast<std::uint8_t>((mac.octets[0] & 0xfc) | 0x02);
    mac.octets[5] = static_cast<std::uint8_t>(mac.octets[5] + (index & 0xff));
    return mac;
}

bool is_valid_vm_name(std::string_view name) noexcept { return is_simple_identifier(name, 128); }

// virtiofs limits a tag to 36 bytes (the size of the tag field in its config space).
bool is_valid_share_tag(std::string_view tag) noexcept { return is_simple_identifier(tag, 36); }

// A directory name inside a share: what a guest file system takes as one name (NAME_MAX bytes).
// Control characters are refused too: Apple's +[VZMultipleDirectoryShare validateName:error:]
// rejects "characters unsafe for file systems" without listing them, and it still has the last
// word when the apple-vz driver builds the share.
bool is_valid_share_name(std::string_view name) noexcept {
    constexpr std::size_t name_max = 255;
    if (name.empty() || name.size() > name_max || name == "." || name == "..") return false;
    return std::none_of(name.begin(), name.end(), [](char c) {
        const auto byte = static_cast<unsigned char>(c);
        return c == '/' || byte < 0x20 || byte == 0x7f;
    });
}

// The kernel's dev_valid_name(). IFNAMSIZ is 16 with the NUL.
bool is_valid_ifname(std::string_view name) noexcept {
    constexpr std::size_t max_ifname = 15;
    if (name.empty() || name.size() > max_ifname || name == "." || name == "..") return false;
    return std::none_of(name.begin(), name.end(), [](char c) {
        return c == '/' || c == ':' || c == '\0' || c == ' ' || (c >= '\t' && c <= '\r');
    });
}

// The name becomes a path component under /run/netns, so no separator and no "." / "..";
// NAME_MAX bounds it.
bool is_valid_netns_name(std::string_view name) noexcept {
    constexpr std::size_t max_netns_name = 255;
    return !name.empty() && name.size() <= max_netns_name && name != "." && name != ".." &&
           name.find_first_of(std::string_view("/\0", 2)) == std::string_view::npos;
}

void throw_exception_from_error(const spec_error& e, const boost::source_location& loc) {
    diagnostics diag;
    diag.message = e.field.empty() ? e.message : e.field + ": " + e.message;
    diag.field = e.field;
    boost::throw_with_location(error(errc::invalid_spec, std::move(diag)), loc);
}

std::string_view to_string(backend_kind kind) noexcept {
    switch (kind) {
    case backend_kind::automatic:
        return "auto";
    case backend_kind::qemu:
        return "qemu";
    case backend_kind::cloud_hypervisor:
        return "cloud-hypervisor";
    case backend_kind::apple_vz:
        return "apple-vz";
    case backend_kind::fake:
        return "fake";
    }
    return "unknown";
}

std::string_view to_string(disk_cache cache) noexcept {
    switch (cache) {
    case disk_cache::automatic:
        return "auto";
    case disk_cache::none:
        return "none";
    case disk_cache::writeback:
        return "writeback";
    case disk_cache::writethrough:
        return "writethrough";
    case disk_cache::unsafe:
        return "unsafe";
    }
    return "unknown";
}

std::string_view to_string(boot_mode mode) noexcept {
    switch (mode) {
    case boot_mode::direct:
        return "direct";
    case boot_mode::uefi:
        return "uefi";
    }
    return "unknown";
}

std::string_view to_string(disk_interface interface) noexcept {
    switch (interface) {
    case disk_interface::virtio_blk:
        return "virtio-blk";
    case disk_interface::nvme:
        return "nvme";
    }
    return "unknown";
}

std::string_view to_string(nic_kind kind) noexcept {
    switch (kind) {
    case nic_kind::tap:
        return "tap";
    case nic_kind::fd_dgram:
        return "fd-dgram";
    case nic_kind::user:
        return "user";
    case nic_kind::fd_stream:
        return "fd-stream";
    }
    return "unknown";
}

std::optional<backend_kind> parse_backend(std::string_view name) noexcept {
    for (auto kind : {backend_kind::automatic, backend_kind::qemu, backend_kind::cloud_hypervisor,
                      backend_kind::apple_vz, backend_kind::fake})
        if (to_string(kind) == name) return kind;
    return std::nullopt;
}

}  // namespace vmrt
