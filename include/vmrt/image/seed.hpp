// cloud-init NoCloud seeds: a typed configuration, rendered to meta-data, user-data and
// network-config (version 2) YAML, and written as an ISO 9660 disk labelled "cidata".
//
// Why typed: vm-rs built user-data from shell strings pasted into unquoted YAML, so a value like
// "a: b" or "x #y" changed the document. Here every string value is emitted as a double-quoted
// YAML scalar with full escaping (see lib/image/yaml_emitter.hpp): no value can change the
// structure, and values always come back as strings (never as YAML 1.1 booleans, numbers or null).
// Commands are argv lists (cloud-init runs a list without a shell), never shell strings.
//
// Strings must be valid UTF-8 (YAML streams are Unicode; a byte that is not UTF-8 cannot be
// represented), except write_files contents: those are bytes, emitted as text when they are valid
// UTF-8 and as base64 (`encoding: b64`) otherwise. Invalid values are refused with
// vmrt::error(errc::invalid_spec), every problem listed in the message, the first one's field
// ("user_data.users[0].name") in diagnostics.field.
#pragma once

#include <vmrt/error.hpp>
#include <vmrt/image/iso9660.hpp>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace vmrt::image {

/// meta-data.
struct seed_meta_data {
    /// cloud-init's instance id: a new id makes cloud-init run its once-per-instance modules again.
    /// 1 to 128 characters of [A-Za-z0-9._:-], not "." or "..": cloud-init uses it as a directory
    /// name under /var/lib/cloud/instances/.
    std::string instance_id;
    /// local-hostname: an RFC 1123 host name (labels of [A-Za-z0-9-], 1 to 63 characters, no
    /// leading or trailing '-', at most 253 characters in all). Empty: not set.
    std::string hostname;
};

/// One entry of user-data `users`. Listing users replaces the distribution's default user.
struct seed_user {
    std::string name;                              ///< [a-z_][a-z0-9_-]*, at most 32 characters
    std::vector<std::string> ssh_authorized_keys;  ///< authorized_keys lines: one line each, non-empty
    std::vector<std::string> sudo;     ///< sudoers rules ("ALL=(ALL) NOPASSWD:ALL"), one line each
    std::optional<std::string> shell;  ///< an absolute path
    std::vector<std::string> groups;   ///< supplementary group names (same rule as `name`)
    bool lock_passwd = true;           ///< no password login
};

/// One entry of user-data `write_files`.
struct seed_file {
    std::string path;                          ///< absolute; any bytes but NUL, valid UTF-8
    std::string content;                       ///< any bytes (base64 in the YAML if not valid UTF-8)
    std::optional<std::uint32_t> permissions;  ///< mode bits, at most 07777; emitted as "0644"
    std::optional<std::string> owner;          ///< "user" or "user:group" (names as seed_user::name)
    bool append = false;
};

/// A command run without a shell: argv[0] is looked up in PATH. Non-empty, argv[0] non-empty,
/// no NUL in any element.
using seed_argv = std::vector<std::string>;

/// user-data (#cloud-config).
struct seed_user_data {
    std::vector<seed_user> users;
    std::vector<std::string> packages;  ///< package names (one line each, non-empty)
    std::vector<seed_file> write_files;
    std::vector<seed_argv> bootcmd;  ///< run early on every boot
    std::vector<seed_argv> runcmd;   ///< run once per instance, late in the first boot
};

struct seed_route {
    std::string to;   ///< "default" or an address with prefix ("10.1.0.0/16", "fd00::/8")
    std::string via;  ///< a gateway address
    std::optional<std::uint32_t> metric;
};

/// One `ethernets` entry of network-config version 2.
struct seed_ethernet {
    std::string id;  ///< the entry's key: 1 to 15 characters of [A-Za-z0-9_.-] (an interface name
                     ///< when there is no MAC match)
    std::optional<std::string> match_macaddress;  ///< "52:54:00:12:34:56" (any case; emitted lower)
    std::optional<std::string> set_name;          ///< rename the matched interface (same rule as id)
    bool dhcp4 = false;
    bool dhcp6 = false;
    std::vector<std::string> addresses;  ///< static addresses with prefix: "10.0.0.2/24", "fd00::2/64"
    std::vector<seed_route> routes;
    std::vector<std::string> nameservers;  ///< DNS server addresses
    std::vector<std::string> search;       ///< DNS search domains (host name rules)
    std::optional<std::uint32_t> mtu;      ///< 68 to 65535
};

/// network-config version 2.
struct seed_network_config {
    std::vector<seed_ethernet> ethernets;  ///< unique ids
};

struct seed_config {
    seed_meta_data meta_data;
    seed_user_data user_data;
    std::optional<seed_network_config> network_config;  ///< no network-config file when empty
};

/// The three documents of a seed.
struct seed_documents {
    std::string meta_data;
    std::string user_data;                      ///< starts with "#cloud-config\n"
    std::optional<std::string> network_config;  ///< present iff seed_config::network_config is
};

/// Throws vmrt::error(errc::invalid_spec) listing every problem of `config`.
void validate_seed(const seed_config& config);

/// Validates, then renders the YAML documents.
seed_documents render_seed(const seed_config& config);

/// Validates, renders and writes the seed ISO (volume id "cidata"; files meta-data, user-data and
/// network-config when set) atomically to `out`. Throws vmrt::error; `out` is untouched on failure.
void write_seed_iso(const seed_config& config, const std::filesystem::path& out);

/// The files of the seed ISO for `docs` (name -> contents), as write_seed_iso puts them.
iso_files seed_iso_files(const seed_documents& docs);

}  // namespace vmrt::image
