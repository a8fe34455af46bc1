// The description of one VM: what to boot and with which devices.
//
// Every field here is either honoured by the selected backend or refused by it with an
// `errc::unsupported` error whose diagnostics name the field (see driver::check_spec). Nothing
// is silently ignored. Specs come from C++ or from JSON (`parse_spec_json`, `load_spec_file`).
#pragma once

#include <vmrt/error.hpp>

#include <boost/system/result.hpp>

#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vmrt {

/// Which hypervisor backend runs the VM. `automatic` picks the platform default.
enum class backend_kind { automatic, qemu, cloud_hypervisor, apple_vz, fake };

/// Direct kernel boot (kernel + initramfs + cmdline) or firmware boot (UEFI).
enum class boot_mode { direct, uefi };

/// Host page-cache behaviour of a disk. `automatic` lets the backend choose.
enum class disk_cache { automatic, none, writeback, writethrough, unsafe };

/// How the guest sees a disk.
enum class disk_interface { virtio_blk, nvme };

struct disk_spec {
    std::filesystem::path path;
    bool read_only = false;
    disk_cache cache = disk_cache::automatic;
    disk_interface interface = disk_interface::virtio_blk;
};

/// A 48-bit Ethernet address.
struct mac_address {
    std::array<std::uint8_t, 6> octets{};
    std::string to_string() const;                              ///< "52:54:00:12:34:56"
    static std::optional<mac_address> parse(std::string_view);  ///< accepts only "xx:xx:xx:xx:xx:xx"
    bool is_multicast() const noexcept { return (octets[0] & 1) != 0; }
    friend bool operator==(const mac_address&, const mac_address&) = default;
};

/// How a NIC is attached on the host side.
enum class nic_kind {
    tap,        ///< a TAP device by name (created in the spec's netns if absent)
    fd_dgram,   ///< an inherited SOCK_DGRAM socket: one Ethernet frame per datagram
    fd_stream,  ///< an inherited SOCK_STREAM socket: frames with a 4-byte big-endian length prefix
    user,       ///< user-mode NAT inside the VMM (QEMU slirp): guest 10.0.2.15/24, gateway 10.0.2.2
};

struct nic_spec {
    nic_kind kind = nic_kind::tap;
    std::string tap_name;            ///< for nic_kind::tap
    int fd = -1;                     ///< for nic_kind::fd_*; set from C++, never from JSON
    std::optional<mac_address> mac;  ///< unset: a stable address derived from (VM name, NIC index)
    bool isolated = false;           ///< nic_kind::user: no traffic leaves the VMM (no NAT to the host)
    /// nic_kind::fd_dgram / fd_stream, instead of `fd`: a port on this network of the manager's L2
    /// switch (vm_manager::network_switch()), created at start and removed when the VM ends.
    /// Same syntax as a VM name.
    std::string switch_network;
};

struct shared_dir_spec {
    std::filesystem::path host_path;
    std::string tag;  ///< virtiofs tag: [A-Za-z0-9][A-Za-z0-9._-]{0,35}
    bool read_only = false;
    /// Several directories behind one tag (apple-vz: VZMultipleDirectoryShare): the guest sees
    /// `host_path` as the subdirectory `share_name` of the tag's mount. Entries may repeat a tag
    /// only if each of them has a distinct share_name. Empty: the directory is the tag's only
    /// share and is the mount itself. QEMU and Cloud Hypervisor refuse it.
    std::string share_name;
};

struct vsock_spec {
    std::uint32_t cid = 3;         ///< guest context id, >= 3
    std::filesystem::path socket;  ///< host-side Unix socket (hybrid vsock); <= 107 bytes
};

struct balloon_spec {
    std::uint64_t initial_mib = 0;  ///< memory taken from the guest at boot
    bool deflate_on_oom = true;
    bool free_page_reporting = false;
};

struct vm_spec {
    std::string name;  ///< [A-Za-z0-9][A-Za-z0-9._-]{0,127}
    std::string namespace_ = "default";
    backend_kind backend = backend_kind::automatic;

    boot_mode boot = boot_mode::direct;
    std::filesystem::path kernel;  ///< required for direct boot
    std::optional<std::filesystem::path> initramfs;
    std::optional<std::string> cmdline;  ///< unset: the backend's default
    /// UEFI firmware (uefi boot); unset: the backend's default (QEMU: Debian's OVMF).
    std::optional<std::filesystem::path> firmware;
    /// UEFI variable store, kept across boots (created from the firmware's template when absent);
    /// unset: a fresh store for every boot.
    std::optional<std::filesystem::path> efi_variable_store;

    std::uint32_t cpus = 1;
    /// vCPUs the VM can grow to at runtime (CPU hotplug); unset: `cpus`, no hotplug.
    std::optional<std::uint32_t> max_cpus;
    std::uint64_t memory_mib = 512;
    /// Memory the VM can grow to at runtime (memory hotplug); unset: memory_mib, no hotplug.
    std::optional<std::uint64_t> max_memory_mib;
    std::optional<balloon_spec> balloon;

    std::optional<disk_spec> root_disk;
    std::vector<disk_spec> data_disks;
    std::optional<std::filesystem::path> seed_iso;  ///< attached read-only

    std::vector<nic_spec> networks;
    std::vector<shared_dir_spec> shared_dirs;
    std::optional<vsock_spec> vsock;
    /// A host <-> guest byte stream that needs no network and no vsock (QEMU: a virtio-serial port
    /// named org.vmrt.control; the host end is a Unix socket in the VM's run directory, see
    /// vm_info::control_socket). The default guest answers a line protocol on it.
    bool control_channel = false;

    std::filesystem::path serial_log;  ///< guest console; readiness is parsed from it
    std::optional<std::string> netns;  ///< Linux network namespace for the VMM
    std::optional<std::vector<std::uint8_t>> machine_id;
    bool rosetta = false;
};

/// A rejected spec: the key at fault and why.
struct spec_error {
    std::string field;  ///< JSON-path-like key: "name", "disks[1].path", "networks[0].mac"
    std::string message;
};

/// Lets `result<vm_spec, spec_error>::value()` throw: a spec_error becomes
/// vmrt::error(errc::invalid_spec) whose diagnostics carry the field and the message.
[[noreturn]] void throw_exception_from_error(const spec_error& e, const boost::source_location& loc);

/// Parses a JSON document into a spec. Unknown keys, wrong types and bad values are errors
/// that name the key. Relative paths are resolved against `base_dir`. Does not validate
/// cross-field rules or the file system: call `validate_spec` for that.
boost::system::result<vm_spec, spec_error> parse_spec_json(std::string_view json,
                                                           const std::filesystem::path& base_dir);

/// Checks every rule a spec must satisfy before anything is started: name syntax, existing
/// files, cpu/memory bounds, tag and MAC syntax, unique MACs and tags, socket path lengths.
std::vector<spec_error> validate_spec(const vm_spec& spec);

/// Reads, parses and validates a spec file. Throws vmrt::error(errc::invalid_spec) with
/// diagnostics naming the first bad field (the message lists every problem, one per line).
/// A file that cannot be read throws vmrt::error with the system error (ENOENT, EACCES, ...).
vm_spec load_spec_file(const std::filesystem::path& file);

/// Serialises a spec back to JSON (the inverse of parse_spec_json, modulo path resolution).
std::string spec_to_json(const vm_spec& spec);

/// The backend spelled as in spec JSON ("auto", "qemu", ...), or nothing for an unknown name.
std::optional<backend_kind> parse_backend(std::string_view name) noexcept;

bool is_valid_vm_name(std::string_view name) noexcept;
bool is_valid_share_tag(std::string_view tag) noexcept;
/// A shared_dir_spec::share_name: a single file name as the guest will see it, 1 to 255 bytes
/// (NAME_MAX), no '/' or NUL, not "." or "..".
bool is_valid_share_name(std::string_view name) noexcept;
/// A Linux interface name as the kernel's dev_valid_name() accepts it (what `ip link` and
/// TUNSETIFF take): 1 to 15 bytes, no '/', ':' or whitespace, not "." or "..".
bool is_valid_ifname(std::string_view name) noexcept;
/// A network namespace name as `ip netns` uses it (a file in /run/netns): 1 to 255 bytes, no '/'
/// or NUL, not "." or "..".
bool is_valid_netns_name(std::string_view name) noexcept;

/// The stable default MAC of NIC `index` of VM `vm_name`: locally administered, unicast, and
/// different for every NIC of the same VM (vm-rs gave all NICs of a VM the same address).
mac_address default_mac(std::string_view vm_name, std::size_t index);

/// The MAC address each NIC of `spec` gets, in `spec.networks` order: its explicit `mac`, or
/// default_mac(spec.name, index). Refuses (with the field, e.g. "networks[2].mac") a multicast or
/// all-zero address and any address used twice in the spec, including an explicit MAC equal to
/// another NIC's derived one. validate_spec reports the same problems (all of them, not just the
/// first); this is what a backend calls to put the addresses on its command line.
boost::system::result<std::vector<mac_address>, spec_error> nic_macs(const vm_spec& spec);

/// The spellings used in spec JSON ("cloud-hypervisor", "writeback", "virtio-blk", "fd-dgram", ...).
std::string_view to_string(backend_kind) noexcept;
std::string_view to_string(disk_cache) noexcept;
std::string_view to_string(boot_mode) noexcept;
std::string_view to_string(disk_interface) noexcept;
std::string_view to_string(nic_kind) noexcept;

}  // namespace vmrt
