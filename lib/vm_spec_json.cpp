// JSON form of a vm_spec (parse_spec_json, spec_to_json). docs/SPEC.md has the same description
// with a full example.
//
// A spec is one JSON object. Keys are the snake_case names of the vm_spec fields; every key but
// "name" is optional and takes the default of the C++ struct when absent:
//
//   name                string, required      [A-Za-z0-9][A-Za-z0-9._-]{0,127}
//   namespace           string                "default"
//   backend             "auto" | "qemu" | "cloud-hypervisor" | "apple-vz" | "fake"
//   boot                "direct" | "uefi"
//   kernel, initramfs, firmware, efi_variable_store, seed_iso, serial_log       path strings
//   cmdline             string (absent: the backend's default command line)
//   cpus                integer                1
//   max_cpus            integer                (none: cpus)
//   memory_mib          integer                512
//   max_memory_mib      integer                (none: memory_mib)
//   balloon             {initial_mib: integer, deflate_on_oom: bool, free_page_reporting: bool}
//   root_disk           disk
//   data_disks          [disk, ...]
//   networks            [{kind: "tap", tap: string, mac: "xx:xx:xx:xx:xx:xx"},
//                        {kind: "user", isolated: bool, mac: ...}, ...]
//   shared_dirs         [{host_path: path, tag: string, read_only: bool, share_name: string}, ...]
//   vsock               {cid: integer, socket: path}
//   netns               string
//   machine_id          string of hex digits, two per byte ("0123abcd")
//   rosetta             bool
//   control_channel     bool                   false
//
// where a disk is either a path string (all defaults) or
//   {path: path (required), read_only: bool, cache: "auto" | "none" | "writeback" |
//    "writethrough" | "unsafe", interface: "virtio-blk" | "nvme"}.
//
// The parser is strict, because a typo in a VM definition should stop the VM from starting
// rather than start it with a default: unknown keys, duplicate keys, wrong JSON types, null,
// negative or out-of-range integers, fractions, unknown enum strings, malformed MACs and hex,
// empty paths and strings containing NUL are all errors. The error's `field` is the path of the
// key ("data_disks[1].cache", "networks[0].mac"); its message says what was expected and what
// was found. Malformed JSON gives field "" and a message with the line and column.
//
// NIC kinds "fd-dgram" and "fd-stream" need a file descriptor inherited by the process, which
// only C++ can provide (nic_spec::fd); in JSON they are an error saying so.
//
// Relative paths are resolved against `base_dir`; every path is then lexically normalised
// ("a/./b/../c" -> "a/c"; ".." removes the previous component even if it is a symlink).
// Range rules (cpus in [1, 255], ...) and the file system are checked by validate_spec, not here.
//
// spec_to_json writes every field that is set, defaults included, indented by two spaces, so
// that parse_spec_json(spec_to_json(s)) == s for every spec that JSON can express.
#include "hex_text.hpp"
#include "strict_json.hpp"

#include <vmrt/vm_spec.hpp>

#include <boost/json.hpp>
// basic_parser's template definitions, needed by the duplicate-key pass below.
#include <boost/json/basic_parser_impl.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <limits>
#include <set>

namespace vmrt {
namespace {

namespace json = boost::json;
namespace fs = std::filesystem;

// ---------------------------------------------------------------------------------------------
// Errors. The parser is a tree of small readers; an internal exception lets each reader stop the
// whole parse with one statement instead of threading a result through every level. It never
// leaves this file: parse_spec_json turns it into the returned spec_error.

struct bad_field {
    spec_error error;
};

[[noreturn]] void fail(std::string field, std::string message) {
    throw bad_field{spec_error{std::move(field), std::move(message)}};
}

using detail::child_path;
using detail::element_path;

// Keeps messages readable when the offending value is a long string.
std::string excerpt(std::string text) {
    constexpr std::size_t limit = 80;
    if (text.size() <= limit) return text;
    std::size_t cut = limit;
    while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xc0) == 0x80)
        --cut;  // do not split a UTF-8 sequence
    text.resize(cut);
    return text + "...";
}

// "found ..." part of a message: the JSON type and, for scalars, the value itself.
std::string describe(const json::value& v) {
    switch (v.kind()) {
    case json::kind::null:
        return "null";
    case json::kind::bool_:
        return v.get_bool() ? "true" : "false";
    case json::kind::int64:
    case json::kind::uint64:
    case json::kind::double_:
        return "the number " + json::serialize(v);
    case json::kind::string:
        return "the string " + excerpt(json::serialize(v));
    case json::kind::array:
        return "an array";
    case json::kind::object:
        return "an object";
    }
    return "an unknown JSON value";
}

[[noreturn]] void fail_expected(const std::string& field, std::string_view expected,
                                const json::value& found) {
    std::string message = "expected " + std::string(expected) + ", found " + describe(found);
    if (found.is_null()) message += " (omit the key to leave it unset)";
    fail(field, std::move(message));
}

// ---------------------------------------------------------------------------------------------
// Readers of single values.

/// A JSON value together with the path of the key it came from.
struct field {
    const json::value& value;
    std::string path;
};

std::string read_string(const field& f) {
    const auto* s = f.value.if_string();
    if (!s) fail_expected(f.path, "a string", f.value);
    std::string out(s->data(), s->size());
    // Every string of a spec ends up in a C string (argv, a path, a kernel command line).
    if (out.find('\0') != std::string::npos) fail(f.path, "must not contain a NUL character (\\u0000)");
    return out;
}

bool read_bool(const field& f) {
    const auto* b = f.value.if_bool();
    if (!b) fail_expected(f.path, "true or false", f.value);
    return *b;
}

std::uint64_t read_uint(const field& f, std::uint64_t max) {
    const std::string expected = "a non-negative integer no greater than " + std::to_string(max);
    std::uint64_t n = 0;
    if (const auto* u = f.value.if_uint64()) {
        n = *u;
    } else if (const auto* i = f.value.if_int64()) {
        if (*i < 0) fail_expected(f.path, expected, f.value);
        n = static_cast<std::uint64_t>(*i);
    } else if (f.value.is_double()) {
        // Boost.JSON stores fractions, exponents and integers beyond 64 bits as doubles; none of
        // them is an exact count of anything.
        fail_expected(f.path, expected + " (without a fraction or exponent)", f.value);
    } else {
        fail_expected(f.path, expected, f.value);
    }
    if (n > max) fail_expected(f.path, expected, f.value);
    return n;
}

std::uint32_t read_uint32(const field& f) {
    return static_cast<std::uint32_t>(read_uint(f, std::numeric_limits<std::uint32_t>::max()));
}

fs::path resolve_path(const fs::path& p, const fs::path& base_dir) {
    return (p.is_absolute() ? p : base_dir / p).lexically_normal();
}

fs::path read_path(const field& f, const fs::path& base_dir) {
    const std::string text = read_string(f);
    // An empty path would resolve to base_dir itself, which is never what was meant.
    if (text.empty()) fail(f.path, "expected a non-empty path, found the empty string");
    return resolve_path(text, base_dir);
}

/// Reads an enum by its to_string() spelling, so the JSON names have a single definition.
template <class Enum, std::size_t N>
Enum read_enum(const field& f, const std::array<Enum, N>& all) {
    std::string expected = "one of";
    for (std::size_t i = 0; i < N; ++i)
        expected += std::string(i == 0 ? " \"" : ", \"") + std::string(to_string(all[i])) + "\"";
    const auto* s = f.value.if_string();
    if (!s) fail_expected(f.path, expected, f.value);
    for (Enum candidate : all)
        if (std::string_view(s->data(), s->size()) == to_string(candidate)) return candidate;
    fail_expected(f.path, expected, f.value);
}

constexpr std::array all_backends{backend_kind::automatic, backend_kind::qemu, backend_kind::cloud_hypervisor,
                                  backend_kind::apple_vz, backend_kind::fake};
constexpr std::array all_boot_modes{boot_mode::direct, boot_mode::uefi};
constexpr std::array all_caches{disk_cache::automatic, disk_cache::none, disk_cache::writeback,
                                disk_cache::writethrough, disk_cache::unsafe};
constexpr std::array all_interfaces{disk_interface::virtio_blk, disk_interface::nvme};
constexpr std::array all_nic_kinds{nic_kind::tap, nic_kind::fd_dgram, nic_kind::fd_stream, nic_kind::user};

mac_address read_mac(const field& f) {
    constexpr std::string_view expected = "a MAC address \"xx:xx:xx:xx:xx:xx\" (six pairs of hex digits)";
    const auto* s = f.value.if_string();
    if (!s) fail_expected(f.path, expected, f.value);
    auto mac = mac_address::parse(std::string_view(s->data(), s->size()));
    if (!mac) fail_expected(f.path, expected, f.value);
    return *mac;
}

std::vector<std::uint8_t> read_hex_bytes(const field& f) {
    constexpr std::string_view expected = "a string of hex digits, two per byte (\"0123abcd\")";
    const auto* s = f.value.if_string();
    if (!s) fail_expected(f.path, expected, f.value);
    auto bytes = detail::parse_hex_bytes(std::string_view(s->data(), s->size()));
    if (!bytes) fail_expected(f.path, expected, f.value);
    return std::move(*bytes);
}

// ---------------------------------------------------------------------------------------------
// Objects and arrays.

// Edit distance counting a swap of adjacent characters as one edit ("nmae" -> "name"), for
// "did you mean" hints on misspelt keys. Keys are short, so a full table is fine.
std::size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
    for (std::size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
    for (std::size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        for (std::size_t j = 1; j <= b.size(); ++j) {
            const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
        }
    }
    return d[a.size()][b.size()];
}

// " (did you mean \"name\"?)" for a key close to, or a prefix of, a known one; "" otherwise. Short keys get
// only one edit of slack, or "ram" would suggest "name".
std::string suggestion(std::string_view key, std::initializer_list<std::string_view> known) {
    std::string_view best;
    std::size_t best_distance = key.size() <= 4 ? 2 : 3;
    for (auto candidate : known) {
        std::size_t distance = edit_distance(key, candidate);
        if (key.size() >= 3 && candidate.starts_with(key)) distance = 1;  // "memory" for "memory_mib"
        if (distance < best_distance) {
            best = candidate;
            best_distance = distance;
        }
    }
    return best.empty() ? "" : " (did you mean \"" + std::string(best) + "\"?)";
}

/// An object whose keys must all come from a fixed list.
class object_reader {
public:
    object_reader(const field& f, std::initializer_list<std::string_view> known) : path_(f.path) {
        object_ = f.value.if_object();
        if (!object_) fail_expected(f.path, "an object", f.value);
        for (const auto& entry : *object_) {
            const std::string_view key(entry.key().data(), entry.key().size());
            if (std::find(known.begin(), known.end(), key) == known.end())
                fail(child_path(path_, key),
                     "unknown key" + suggestion(key, known) + "; expected one of: " + join(known));
        }
    }

    std::optional<field> get(std::string_view key) const {
        const auto* v = object_->if_contains(json::string_view(key.data(), key.size()));
        if (!v) return std::nullopt;
        return field{*v, child_path(path_, key)};
    }

    field require(std::string_view key) const {
        auto f = get(key);
        if (!f) fail(child_path(path_, key), "missing required key \"" + std::string(key) + "\"");
        return *f;
    }

    const std::string& path() const noexcept { return path_; }

private:
    static std::string join(std::initializer_list<std::string_view> names) {
        std::string out;
        for (auto name : names) out += (out.empty() ? "" : ", ") + std::string(name);
        return out;
    }

    const json::object* object_ = nullptr;
    std::string path_;
};

template <class Read>
auto read_array(const field& f, Read read) {
    const auto* array = f.value.if_array();
    if (!array) fail_expected(f.path, "an array", f.value);
    std::vector<decltype(read(std::declval<field>()))> out;
    out.reserve(array->size());
    for (std::size_t i = 0; i < array->size(); ++i)
        out.push_back(read(field{(*array)[i], element_path(f.path, i)}));
    return out;
}

disk_spec read_disk(const field& f, const fs::path& base_dir) {
    disk_spec disk;
    if (f.value.is_string()) {
        disk.path = read_path(f, base_dir);
        return disk;
    }
    if (!f.value.is_object())
        fail_expected(f.path, "a path string or an object {path, read_only, cache, interface}", f.value);
    const object_reader obj(f, {"path", "read_only", "cache", "interface"});
    disk.path = read_path(obj.require("path"), base_dir);
    if (auto v = obj.get("read_only")) disk.read_only = read_bool(*v);
    if (auto v = obj.get("cache")) disk.cache = read_enum(*v, all_caches);
    if (auto v = obj.get("interface")) disk.interface = read_enum(*v, all_interfaces);
    return disk;
}

nic_spec read_nic(const field& f) {
    const object_reader obj(f, {"kind", "tap", "mac", "fd", "isolated", "switch"});
    nic_spec nic;
    if (auto v = obj.get("kind")) nic.kind = read_enum(*v, all_nic_kinds);
    if (nic.kind == nic_kind::user) {
        if (auto v = obj.get("tap")) fail(v->path, "only tap NICs have a TAP device name");
        if (auto v = obj.get("fd"))
            fail(v->path, "file descriptors can only be given from C++ (nic_spec::fd)");
        if (auto v = obj.get("isolated")) nic.isolated = read_bool(*v);
        if (auto v = obj.get("mac")) nic.mac = read_mac(*v);
        return nic;
    }
    if (auto v = obj.get("isolated")) fail(v->path, "only user NICs can be isolated");
    if (auto v = obj.get("switch")) {
        if (nic.kind != nic_kind::fd_dgram && nic.kind != nic_kind::fd_stream)
            fail(v->path, "only fd-dgram and fd-stream NICs can be ports of the manager's switch");
        if (auto fd = obj.get("fd")) fail(fd->path, "a switch port's file descriptor is made by the manager");
        nic.switch_network = read_string(*v);
        if (auto m = obj.get("mac")) nic.mac = read_mac(*m);
        return nic;
    }
    if (nic.kind != nic_kind::tap)
        fail(child_path(f.path, "kind"), "\"" + std::string(to_string(nic.kind)) +
                                             "\" NICs use an inherited file descriptor, which can only be "
                                             "given from C++ (nic_spec::fd), not from JSON; or name a "
                                             "network of the manager's switch (\"switch\")");
    if (auto v = obj.get("fd"))
        fail(v->path, "file descriptors can only be given from C++ (nic_spec::fd), not from JSON");
    nic.tap_name = read_string(obj.require("tap"));
    if (auto v = obj.get("mac")) nic.mac = read_mac(*v);
    return nic;
}

shared_dir_spec read_shared_dir(const field& f, const fs::path& base_dir) {
    const object_reader obj(f, {"host_path", "tag", "read_only", "share_name"});
    shared_dir_spec dir;
    dir.host_path = read_path(obj.require("host_path"), base_dir);
    dir.tag = read_string(obj.require("tag"));
    if (auto v = obj.get("read_only")) dir.read_only = read_bool(*v);
    if (auto v = obj.get("share_name")) {
        // Empty means "no name" in C++; in JSON that is spelt by leaving the key out.
        dir.share_name = read_string(*v);
        if (dir.share_name.empty())
            fail(v->path, "must not be empty (omit it for a directory of its own tag)");
    }
    return dir;
}

vsock_spec read_vsock(const field& f, const fs::path& base_dir) {
    const object_reader obj(f, {"cid", "socket"});
    vsock_spec vsock;
    if (auto v = obj.get("cid")) vsock.cid = read_uint32(*v);
    if (auto v = obj.get("socket")) vsock.socket = read_path(*v, base_dir);
    return vsock;
}

balloon_spec read_balloon(const field& f) {
    const object_reader obj(f, {"initial_mib", "deflate_on_oom", "free_page_reporting"});
    balloon_spec balloon;
    if (auto v = obj.get("initial_mib")) balloon.initial_mib = read_uint(*v, UINT64_MAX);
    if (auto v = obj.get("deflate_on_oom")) balloon.deflate_on_oom = read_bool(*v);
    if (auto v = obj.get("free_page_reporting")) balloon.free_page_reporting = read_bool(*v);
    return balloon;
}

vm_spec read_spec(const json::value& document, const fs::path& base_dir) {
    if (!document.is_object()) fail_expected("", "a JSON object at the top level", document);
    const object_reader top(field{document, ""}, {"name",           "namespace",  "backend",
                                                  "boot",           "kernel",     "initramfs",
                                                  "cmdline",        "firmware",   "efi_variable_store",
                                                  "cpus",           "max_cpus",   "memory_mib",
                                                  "max_memory_mib", "balloon",    "root_disk",
                                                  "data_disks",     "seed_iso",   "networks",
                                                  "shared_dirs",    "vsock",      "serial_log",
                                                  "netns",          "machine_id", "rosetta",
                                                  "control_channel"});
    const auto path_reader = [&](const field& f) {
        return read_path(f, base_dir);
    };
    vm_spec spec;
    spec.name = read_string(top.require("name"));
    if (auto v = top.get("namespace")) spec.namespace_ = read_string(*v);
    if (auto v = top.get("backend")) spec.backend = read_enum(*v, all_backends);
    if (auto v = top.get("boot")) spec.boot = read_enum(*v, all_boot_modes);
    if (auto v = top.get("kernel")) spec.kernel = path_reader(*v);
    if (auto v = top.get("initramfs")) spec.initramfs = path_reader(*v);
    if (auto v = top.get("cmdline")) spec.cmdline = read_string(*v);
    if (auto v = top.get("firmware")) spec.firmware = path_reader(*v);
    if (auto v = top.get("efi_variable_store")) spec.efi_variable_store = path_reader(*v);
    if (auto v = top.get("cpus")) spec.cpus = read_uint32(*v);
    if (auto v = top.get("max_cpus")) spec.max_cpus = read_uint32(*v);
    if (auto v = top.get("memory_mib")) spec.memory_mib = read_uint(*v, UINT64_MAX);
    if (auto v = top.get("max_memory_mib")) spec.max_memory_mib = read_uint(*v, UINT64_MAX);
    if (auto v = top.get("balloon")) spec.balloon = read_balloon(*v);
    if (auto v = top.get("root_disk")) spec.root_disk = read_disk(*v, base_dir);
    if (auto v = top.get("data_disks"))
        spec.data_disks = read_array(*v, [&](const field& e) { return read_disk(e, base_dir); });
    if (auto v = top.get("seed_iso")) spec.seed_iso = path_reader(*v);
    if (auto v = top.get("networks")) spec.networks = read_array(*v, read_nic);
    if (auto v = top.get("shared_dirs"))
        spec.shared_dirs = read_array(*v, [&](const field& e) { return read_shared_dir(e, base_dir); });
    if (auto v = top.get("vsock")) spec.vsock = read_vsock(*v, base_dir);
    if (auto v = top.get("serial_log")) spec.serial_log = path_reader(*v);
    if (auto v = top.get("netns")) spec.netns = read_string(*v);
    if (auto v = top.get("machine_id")) spec.machine_id = read_hex_bytes(*v);
    if (auto v = top.get("rosetta")) spec.rosetta = read_bool(*v);
    if (auto v = top.get("control_channel")) spec.control_channel = read_bool(*v);
    return spec;
}

}  // namespace

boost::system::result<vm_spec, spec_error> parse_spec_json(std::string_view json_text,
                                                           const std::filesystem::path& base_dir) {
    try {
        auto document = detail::parse_json_strictly(json_text);
        if (!document) return spec_error{"", document.error()};
        if (auto dup = detail::first_duplicate_key(json_text))
            return spec_error{*dup, "duplicate key: a JSON object must not repeat a key"};
        return read_spec(*document, base_dir);
    } catch (bad_field& e) {
        return std::move(e.error);
    }
}

}  // namespace vmrt
