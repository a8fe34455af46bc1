// validate_spec: every rule a spec must satisfy before a VMM is started, reported all at once so
// that a user fixes a spec in one round instead of one error per attempt. load_spec_file ties
// reading, parsing and validation together for the CLI and the manager.
#include <vmrt/vm_spec.hpp>

#include <boost/system/system_category.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <map>
#include <string>

namespace vmrt {
namespace {

namespace fs = std::filesystem;

// Limits of the host interfaces the spec's values end up in.
constexpr std::uint32_t max_cpus = 255;
constexpr std::uint64_t min_memory_mib = 16;
constexpr std::uint64_t max_memory_mib = 1048576;  // 1 TiB
constexpr std::uint32_t min_guest_cid = 3;         // 0..2 are the hypervisor, local and host
constexpr std::uint32_t cid_any = 0xFFFFFFFF;      // VMADDR_CID_ANY
constexpr std::size_t max_socket_path = 107;       // sizeof(sockaddr_un::sun_path) - 1 for the NUL
constexpr std::size_t max_machine_id = 64;

class problem_list {
public:
    void add(std::string field, std::string message) {
        problems_.push_back(spec_error{std::move(field), std::move(message)});
    }
    std::vector<spec_error> take() && { return std::move(problems_); }

private:
    std::vector<spec_error> problems_;
};

std::string quote(std::string_view s) { return "\"" + std::string(s) + "\""; }
std::string quote_path(const fs::path& p) { return quote(std::string_view(p.native())); }

std::string element(std::string_view list, std::size_t index) {
    return std::string(list) + "[" + std::to_string(index) + "]";
}

std::string_view type_name(fs::file_type type) {
    switch (type) {
    case fs::file_type::regular:
        return "a regular file";
    case fs::file_type::directory:
        return "a directory";
    case fs::file_type::symlink:
        return "a symlink";
    case fs::file_type::block:
        return "a block device";
    case fs::file_type::character:
        return "a character device";
    case fs::file_type::fifo:
        return "a FIFO";
    case fs::file_type::socket:
        return "a socket";
    default:
        return "a special file";
    }
}

/// The type of what `p` names (symlinks followed), or a message saying why it cannot be known.
std::optional<fs::file_type> probe(const fs::path& p, std::string& why) {
    std::error_code ec;
    const auto status = fs::status(p, ec);
    if (status.type() == fs::file_type::not_found) {
        why = "does not exist: " + quote_path(p);
        return std::nullopt;
    }
    if (ec) {
        why = "cannot access " + quote_path(p) + ": " + ec.message();
        return std::nullopt;
    }
    return status.type();
}

enum class accept { regular_file, image, directory };

void check_exists(problem_list& out, const std::string& field, const fs::path& p, accept what) {
    std::string why;
    const auto type = probe(p, why);
    if (!type) return out.add(field, why);
    const bool ok = what == accept::directory ? *type == fs::file_type::directory
                    : what == accept::image ? *type == fs::file_type::regular || *type == fs::file_type::block
                                            : *type == fs::file_type::regular;
    if (ok) return;
    const std::string_view expected = what == accept::directory ? "a directory"
                                      : what == accept::image   ? "a regular file or a block device"
                                                                : "a regular file";
    out.add(field, "expected " + std::string(expected) + ", found " + std::string(type_name(*type)) + ": " +
                       quote_path(p));
}

/// For files the VMM creates (logs, sockets, variable stores): the directory must exist.
void check_parent_dir(problem_list& out, const std::string& field, const fs::path& p) {
    fs::path dir = p.parent_path();
    if (dir.empty()) dir = ".";
    std::string why;
    const auto type = probe(dir, why);
    if (!type)
        out.add(field, "its directory " + why);
    else if (*type != fs::file_type::directory)
        out.add(field, "its parent " + quote_path(dir) + " is not a directory");
}

void check_name(problem_list& out, const std::string& field, std::string_view name) {
    if (name.empty()) return out.add(field, "is required");
    if (!is_valid_vm_name(name))
        out.add(field,
                "must be 1 to 128 characters from [A-Za-z0-9._-] starting with a letter or digit, found " +
                    quote(name));
}

void check_boot(problem_list& out, const vm_spec& spec) {
    if (spec.kernel.empty()) {
        if (spec.boot == boot_mode::direct) out.add("kernel", "is required for direct boot");
    } else {
        check_exists(out, "kernel", spec.kernel, accept::regular_file);
    }
    if (spec.initramfs) check_exists(out, "initramfs", *spec.initramfs, accept::image);
    // Without a firmware, uefi boot uses the backend's default (check_spec refuses if it has none).
    if (spec.firmware) check_exists(out, "firmware", *spec.firmware, accept::image);
    if (spec.firmware && spec.boot != boot_mode::uefi) out.add("firmware", "needs \"boot\": \"uefi\"");
    if (spec.efi_variable_store) check_parent_dir(out, "efi_variable_store", *spec.efi_variable_store);
}

void check_resources(problem_list& out, const vm_spec& spec) {
    if (spec.cpus < 1 || spec.cpus > max_cpus)
        out.add("cpus",
                "must be between 1 and " + std::to_string(max_cpus) + ", found " + std::to_string(spec.cpus));
    if (spec.max_cpus && (*spec.max_cpus < spec.cpus || *spec.max_cpus > max_cpus))
        out.add("max_cpus", "must be between cpus (" + std::to_string(spec.cpus) + ") and " +
                                std::to_string(max_cpus) + ", found " + std::to_string(*spec.max_cpus));
    if (spec.memory_mib < min_memory_mib || spec.memory_mib > max_memory_mib)
        out.add("memory_mib", "must be between " + std::to_string(min_memory_mib) + " and " +
                                  std::to_string(max_memory_mib) + ", found " +
                                  std::to_string(spec.memory_mib));
    if (spec.max_memory_mib &&
        (*spec.max_memory_mib < spec.memory_mib || *spec.max_memory_mib > max_memory_mib))
        out.add("max_memory_mib", "must be between memory_mib (" + std::to_string(spec.memory_mib) +
                                      ") and " + std::to_string(max_memory_mib) + ", found " +
                                      std::to_string(*spec.max_memory_mib));
    if (spec.balloon && spec.balloon->initial_mib >= spec.memory_mib)
        out.add("balloon.initial_mib", "must be less than memory_mib (" + std::to_string(spec.memory_mib) +
                                           "), found " + std::to_string(spec.balloon->initial_mib));
}

// Two names for the same file are found through the file system where possible (symlinks,
// "..") and lexically otherwise.
std::string identity_of(const fs::path& p) {
    std::error_code ec;
    auto canonical = fs::weakly_canonical(p, ec);
    return ec ? p.lexically_normal().native() : canonical.native();
}

void check_disks(problem_list& out, const vm_spec& spec) {
    std::map<std::string, std::string> seen;  // file identity -> field of its first use
    const auto check = [&](const std::string& field, const fs::path& p) {
        check_exists(out, field, p, accept::image);
        auto [it, inserted] = seen.emplace(identity_of(p), field);
        if (!inserted) out.add(field, quote_path(p) + " is already attached as " + it->second);
    };
    if (spec.root_disk) check("root_disk.path", spec.root_disk->path);
    for (std::size_t i = 0; i < spec.data_disks.size(); ++i)
        check(element("data_disks", i) + ".path", spec.data_disks[i].path);
    if (spec.seed_iso) check("seed_iso", *spec.seed_iso);
}

// Tags are unique, except that several directories may share one tag when each has a distinct
// share_name (apple-vz's VZMultipleDirectoryShare): the names become the subdirectories of the
// tag's mount, so an entry without a name, or a name used twice, would be ambiguous.
void check_shared_dirs(problem_list& out, const vm_spec& spec) {
    std::map<std::string, std::size_t> first_of_tag;                   // tag -> index of its first entry
    std::map<std::pair<std::string, std::string>, std::string> names;  // (tag, share_name) -> field
    for (std::size_t i = 0; i < spec.shared_dirs.size(); ++i) {
        const auto& dir = spec.shared_dirs[i];
        const std::string at = element("shared_dirs", i);
        check_exists(out, at + ".host_path", dir.host_path, accept::directory);
        if (!dir.share_name.empty() && !is_valid_share_name(dir.share_name))
            out.add(at + ".share_name", "must be a file name of 1 to 255 bytes without '/' or control "
                                        "characters, not \".\" or \"..\", found " +
                                            quote(dir.share_name));
        if (!is_valid_share_tag(dir.tag)) {
            out.add(at + ".tag",
                    "must be 1 to 36 characters from [A-Za-z0-9._-] starting with a letter or digit, "
                    "found " +
                        quote(dir.tag));
            continue;
        }
        auto [first, inserted] = first_of_tag.emplace(dir.tag, i);
        const auto& first_dir = spec.shared_dirs[first->second];
        if (!inserted && (dir.share_name.empty() || first_dir.share_name.empty())) {
            out.add(at + ".tag", "duplicate tag " + quote(dir.tag) + ", also used by " +
                                     element("shared_dirs", first->second) +
                                     ".tag (directories may share a tag only if each has a distinct "
                                     "\"share_name\")");
            continue;
        }
        if (dir.share_name.empty()) continue;
        auto [name, fresh] = names.emplace(std::pair(dir.tag, dir.share_name), at + ".share_name");
        if (!fresh)
            out.add(at + ".share_name", "duplicate share_name " + quote(dir.share_name) + " in tag " +
                                            quote(dir.tag) + ", also used by " + name->second);
    }
}

void check_nic_attachment(problem_list& out, const std::string& at, const nic_spec& nic) {
    if (nic.kind == nic_kind::user) {
        if (nic.fd >= 0) out.add(at + ".fd", "a user NIC takes no file descriptor");
        if (!nic.tap_name.empty()) out.add(at + ".tap", "only tap NICs have a TAP device name");
        return;
    }
    if (nic.isolated) out.add(at + ".isolated", "only user NICs can be isolated");
    if (nic.kind == nic_kind::tap && !nic.switch_network.empty())
        out.add(at + ".switch", "only fd-dgram and fd-stream NICs can be ports of the manager's switch");
    if (nic.kind == nic_kind::tap) {
        if (!is_valid_ifname(nic.tap_name))
            out.add(at + ".tap",
                    "must be a Linux interface name (1 to 15 bytes, no '/', ':' or whitespace, not "
                    "\".\" or \"..\"), found " +
                        quote(nic.tap_name));
        if (nic.fd >= 0)
            out.add(at + ".fd", "only fd-dgram and fd-stream NICs take a file descriptor; this NIC is a tap");
        return;
    }
    if (!nic.switch_network.empty()) {
        if (!is_valid_vm_name(nic.switch_network))
            out.add(at + ".switch",
                    "must be 1 to 128 characters from [A-Za-z0-9._-] starting with a letter or "
                    "digit, found " +
                        quote(nic.switch_network));
        // The manager sets fd when it makes the port; a caller must not set both.
    } else if (nic.fd < 0) {
        out.add(at + ".fd", "a " + std::string(to_string(nic.kind)) +
                                " NIC needs an inherited file descriptor (>= 0) or a switch network");
    }
    if (!nic.tap_name.empty()) out.add(at + ".tap", "only tap NICs have a TAP device name");
}

// The effective address of every NIC; a problem for each unusable or repeated one. Effective
// addresses are compared, so an explicit MAC that equals another NIC's default is caught too.
std::vector<mac_address> check_macs(problem_list& out, const vm_spec& spec) {
    std::vector<mac_address> result;
    std::map<std::array<std::uint8_t, 6>, std::string> first_user;  // address -> field of its first user
    for (std::size_t i = 0; i < spec.networks.size(); ++i) {
        const auto& nic = spec.networks[i];
        const std::string at = element("networks", i);
        if (nic.mac && nic.mac->is_multicast())
            out.add(at + ".mac", "must be a unicast address (lowest bit of the first octet clear), found " +
                                     nic.mac->to_string());
        else if (nic.mac && nic.mac->octets == std::array<std::uint8_t, 6>{})
            out.add(at + ".mac", "must not be the all-zero address");
        const mac_address effective = nic.mac.value_or(default_mac(spec.name, i));
        auto [it, inserted] =
            first_user.emplace(effective.octets, at + (nic.mac ? ".mac" : "'s default MAC"));
        if (!inserted) out.add(at + ".mac", effective.to_string() + " is already used by " + it->second);
        result.push_back(effective);
    }
    return result;
}

void check_networks(problem_list& out, const vm_spec& spec) {
    for (std::size_t i = 0; i < spec.networks.size(); ++i)
        check_nic_attachment(out, element("networks", i), spec.networks[i]);
    check_macs(out, spec);
}

void check_vsock(problem_list& out, const vsock_spec& vsock) {
    if (vsock.cid < min_guest_cid || vsock.cid >= cid_any)
        out.add("vsock.cid", "must be at least 3 and less than 4294967295 (0..2 are reserved), found " +
                                 std::to_string(vsock.cid));
    if (vsock.socket.empty()) return;
    if (vsock.socket.native().size() > max_socket_path)
        out.add("vsock.socket", "a Unix socket path can be at most 107 bytes, found " +
                                    std::to_string(vsock.socket.native().size()) + ": " +
                                    quote_path(vsock.socket));
    check_parent_dir(out, "vsock.socket", vsock.socket);
}

void check_serial_log(problem_list& out, const fs::path& log) {
    if (log.empty()) return;  // the manager picks a default under its state directory
    std::error_code ec;
    if (fs::is_directory(log, ec)) return out.add("serial_log", "is a directory: " + quote_path(log));
    check_parent_dir(out, "serial_log", log);
}

void check_netns(problem_list& out, const std::string& netns) {
    if (!is_valid_netns_name(netns))
        out.add("netns",
                "must be a network namespace name (1 to 255 bytes, no '/', not \".\" or \"..\"), found " +
                    quote(netns));
}

std::string describe_problems(const fs::path& file, const std::vector<spec_error>& problems) {
    std::string message = "invalid VM spec " + quote_path(file) + ":";
    for (const auto& p : problems)
        message += "\n" + (p.field.empty() ? p.message : p.field + ": " + p.message);
    return message;
}

[[noreturn]] void throw_invalid(const fs::path& file, const std::vector<spec_error>& problems) {
    diagnostics diag;
    diag.message = describe_problems(file, problems);
    diag.field = problems.front().field;
    throw error(errc::invalid_spec, std::move(diag));
}

[[noreturn]] void throw_unreadable(const fs::path& file, int err) {
    diagnostics diag;
    diag.message =
        "cannot read VM spec file " + quote_path(file) + ": " + std::generic_category().message(err);
    throw error(error_code(err, boost::system::system_category()), std::move(diag));
}

// POSIX I/O rather than iostreams: it reports *why* a file cannot be read (ENOENT, EACCES,
// EISDIR), and the size cap keeps a mistaken "/dev/zero" from eating all memory.
std::string read_spec_text(const fs::path& file) {
    constexpr std::size_t max_size = 16 << 20;
    const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw_unreadable(file, errno);
    std::string text;
    char buffer[65536];
    int err = 0;
    for (;;) {
        const ssize_t n = ::read(fd, buffer, sizeof buffer);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) err = errno;
        if (n <= 0) break;
        text.append(buffer, static_cast<std::size_t>(n));
        if (text.size() > max_size) {
            err = EFBIG;
            break;
        }
    }
    ::close(fd);
    if (err != 0) throw_unreadable(file, err);
    return text;
}

}  // namespace

std::vector<spec_error> validate_spec(const vm_spec& spec) {
    problem_list out;
    check_name(out, "name", spec.name);
    check_name(out, "namespace", spec.namespace_);
    check_boot(out, spec);
    check_resources(out, spec);
    check_disks(out, spec);
    check_networks(out, spec);
    check_shared_dirs(out, spec);
    if (spec.vsock) check_vsock(out, *spec.vsock);
    check_serial_log(out, spec.serial_log);
    if (spec.netns) check_netns(out, *spec.netns);
    if (spec.machine_id && (spec.machine_id->empty() || spec.machine_id->size() > max_machine_id))
        out.add("machine_id", "must be 1 to " + std::to_string(max_machine_id) + " bytes, found " +
                                  std::to_string(spec.machine_id->size()));
    return std::move(out).take();
}

boost::system::result<std::vector<mac_address>, spec_error> nic_macs(const vm_spec& spec) {
    problem_list out;
    auto macs = check_macs(out, spec);
    auto problems = std::move(out).take();
    if (!problems.empty()) return std::move(problems.front());
    return macs;
}

vm_spec load_spec_file(const std::filesystem::path& file) {
    const std::string text = read_spec_text(file);
    // Relative paths in the file are relative to the file, wherever the caller's cwd is.
    std::error_code ec;
    fs::path base_dir = fs::absolute(file, ec).parent_path();
    if (ec) base_dir = file.parent_path();
    auto parsed = parse_spec_json(text, base_dir);
    if (!parsed) throw_invalid(file, {parsed.error()});
    const auto problems = validate_spec(*parsed);
    if (!problems.empty()) throw_invalid(file, problems);
    return std::move(*parsed);
}

}  // namespace vmrt
