// JSON shapes of CH's request and reply bodies (shared/reference/cloud-hypervisor-openapi.yaml:
// VmConfig, DiskConfig, NetConfig, FsConfig, PmemConfig, VsockConfig, ConsoleConfig,
// BalloonConfig, VmResize, RestoreConfig). Writing leaves unset optionals out, as CH itself does
// (§1.4 "skip if None"); reading ignores fields vmrt does not know, since every release adds some.
#include "hv/ch_api.hpp"
#include "io/http1_codec.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <cctype>

namespace vmrt::hv::ch {

namespace json = boost::json;

namespace {

template <typename T>
void put(json::object& o, const char* key, const std::optional<T>& v) {
    if (v) o[key] = *v;
}

[[noreturn]] void bad(const std::string& where) {
    throw vmrt::error(errc::protocol_error,
                      {.message = "Cloud Hypervisor sent an unexpected VmConfig: " + where});
}

const json::object* object_at(const json::object& o, const char* key) {
    auto* v = o.if_contains(key);
    if (!v || v->is_null()) return nullptr;
    if (!v->is_object()) bad(std::string(key) + " is not an object");
    return &v->as_object();
}

std::optional<std::string> string_at(const json::object& o, const char* key) {
    auto* v = o.if_contains(key);
    if (!v || v->is_null()) return std::nullopt;
    if (!v->is_string()) bad(std::string(key) + " is not a string");
    return std::string(v->as_string());
}

std::optional<std::uint64_t> uint_at(const json::object& o, const char* key) {
    auto* v = o.if_contains(key);
    if (!v || v->is_null()) return std::nullopt;
    if (v->is_uint64()) return v->as_uint64();
    if (v->is_int64() && v->as_int64() >= 0) return static_cast<std::uint64_t>(v->as_int64());
    bad(std::string(key) + " is not a non-negative integer");
}

std::optional<bool> bool_at(const json::object& o, const char* key) {
    auto* v = o.if_contains(key);
    if (!v || v->is_null()) return std::nullopt;
    if (!v->is_bool()) bad(std::string(key) + " is not a boolean");
    return v->as_bool();
}

template <typename F>
void each_object(const json::object& o, const char* key, F f) {
    auto* v = o.if_contains(key);
    if (!v || v->is_null()) return;
    if (!v->is_array()) bad(std::string(key) + " is not an array");
    for (const auto& e : v->as_array()) {
        if (!e.is_object()) bad(std::string(key) + " holds a non-object");
        f(e.as_object());
    }
}

json::object console_json(const console_config& c) {
    json::object o;
    o["mode"] = c.mode;
    put(o, "file", c.file);
    put(o, "socket", c.socket);
    return o;
}

console_config console_from(const json::object& o) {
    console_config c;
    c.mode = string_at(o, "mode").value_or("");
    c.file = string_at(o, "file");
    c.socket = string_at(o, "socket");
    return c;
}

}  // namespace

json::value to_json(const disk_config& c) {
    json::object o;
    o["path"] = c.path;
    put(o, "readonly", c.readonly);
    put(o, "direct", c.direct);
    put(o, "id", c.id);
    return o;
}

json::value to_json(const net_config& c) {
    json::object o;
    put(o, "tap", c.tap);
    put(o, "mac", c.mac);
    put(o, "id", c.id);
    put(o, "num_queues", c.num_queues);
    return o;
}

json::value to_json(const fs_config& c) {
    json::object o;
    o["tag"] = c.tag;
    o["socket"] = c.socket;
    o["num_queues"] = c.num_queues;
    o["queue_size"] = c.queue_size;
    put(o, "id", c.id);
    return o;
}

json::value to_json(const pmem_config& c) {
    json::object o;
    o["file"] = c.file;
    put(o, "size", c.size);
    put(o, "id", c.id);
    return o;
}

json::value to_json(const vsock_config& c) {
    json::object o;
    o["cid"] = c.cid;
    o["socket"] = c.socket;
    put(o, "id", c.id);
    return o;
}

json::value to_json(const vm_config& c) {
    json::object o;
    json::object cpus;
    cpus["boot_vcpus"] = c.cpus.boot_vcpus;
    cpus["max_vcpus"] = c.cpus.max_vcpus.value_or(c.cpus.boot_vcpus);  // CH's default: max = boot
    o["cpus"] = std::move(cpus);
    json::object memory;
    memory["size"] = c.memory.size;
    put(memory, "hotplug_size", c.memory.hotplug_size);
    put(memory, "shared", c.memory.shared);
    o["memory"] = std::move(memory);
    json::object payload;
    put(payload, "kernel", c.payload.kernel);
    put(payload, "firmware", c.payload.firmware);
    put(payload, "initramfs", c.payload.initramfs);
    put(payload, "cmdline", c.payload.cmdline);
    o["payload"] = std::move(payload);
    auto list = [&](const char* key, const auto& items) {
        if (items.empty()) return;
        json::array a;
        for (const auto& i : items) a.push_back(to_json(i));
        o[key] = std::move(a);
    };
    list("disks", c.disks);
    list("net", c.net);
    list("fs", c.fs);
    list("pmem", c.pmem);
    if (c.vsock) o["vsock"] = to_json(*c.vsock);
    if (c.serial) o["serial"] = console_json(*c.serial);
    if (c.console) o["console"] = console_json(*c.console);
    if (c.balloon) {
        json::object b;
        b["size"] = c.balloon->size;
        put(b, "deflate_on_oom", c.balloon->deflate_on_oom);
        put(b, "free_page_reporting", c.balloon->free_page_reporting);
        o["balloon"] = std::move(b);
    }
    return o;
}

vm_config vm_config_from_json(const json::value& v) {
    if (!v.is_object()) bad("not an object");
    const auto& o = v.as_object();
    vm_config c;
    if (auto* cpus = object_at(o, "cpus")) {
        c.cpus.boot_vcpus = static_cast<unsigned>(uint_at(*cpus, "boot_vcpus").value_or(1));
        if (auto m = uint_at(*cpus, "max_vcpus")) c.cpus.max_vcpus = static_cast<unsigned>(*m);
    }
    if (auto* memory = object_at(o, "memory")) {
        c.memory.size = uint_at(*memory, "size").value_or(c.memory.size);
        c.memory.hotplug_size = uint_at(*memory, "hotplug_size");
        c.memory.shared = bool_at(*memory, "shared");
    }
    if (auto* payload = object_at(o, "payload")) {
        c.payload.kernel = string_at(*payload, "kernel");
        c.payload.firmware = string_at(*payload, "firmware");
        c.payload.initramfs = string_at(*payload, "initramfs");
        c.payload.cmdline = string_at(*payload, "cmdline");
    }
    each_object(o, "disks", [&](const json::object& d) {
        disk_config disk;
        disk.path = string_at(d, "path").value_or("");
        disk.readonly = bool_at(d, "readonly");
        disk.direct = bool_at(d, "direct");
        disk.id = string_at(d, "id");
        c.disks.push_back(std::move(disk));
    });
    each_object(o, "net", [&](const json::object& n) {
        net_config net;
        net.tap = string_at(n, "tap");
        net.mac = string_at(n, "mac");
        net.id = string_at(n, "id");
        c.net.push_back(std::move(net));
    });
    each_object(o, "fs", [&](const json::object& f) {
        fs_config fs;
        fs.tag = string_at(f, "tag").value_or("");
        fs.socket = string_at(f, "socket").value_or("");
        fs.id = string_at(f, "id");
        if (auto n = uint_at(f, "num_queues")) fs.num_queues = static_cast<unsigned>(*n);
        if (auto n = uint_at(f, "queue_size")) fs.queue_size = static_cast<unsigned>(*n);
        c.fs.push_back(std::move(fs));
    });
    each_object(o, "pmem", [&](const json::object& p) {
        c.pmem.push_back({string_at(p, "file").value_or(""), uint_at(p, "size"), string_at(p, "id")});
    });
    if (auto* vs = object_at(o, "vsock"))
        c.vsock = vsock_config{static_cast<std::uint32_t>(uint_at(*vs, "cid").value_or(0)),
                               string_at(*vs, "socket").value_or(""), string_at(*vs, "id")};
    if (auto* s = object_at(o, "serial")) c.serial = console_from(*s);
    if (auto* s = object_at(o, "console")) c.console = console_from(*s);
    if (auto* b = object_at(o, "balloon"))
        c.balloon = balloon_config{uint_at(*b, "size").value_or(0), bool_at(*b, "deflate_on_oom"),
                                   bool_at(*b, "free_page_reporting")};
    return c;
}

json::value to_json(const resize_request& r) {
    json::object o;
    put(o, "desired_vcpus", r.desired_vcpus);
    put(o, "desired_ram", r.desired_ram);
    put(o, "desired_balloon", r.desired_balloon);
    return o;
}

json::value to_json(const restore_request& r) {
    json::object o;
    o["source_url"] = r.source_url;
    put(o, "prefault", r.prefault);
    put(o, "resume", r.resume);
    put(o, "memory_restore_mode", r.memory_restore_mode);
    return o;
}

vm_state parse_vm_state(std::string_view s) noexcept {
    if (s == "Created") return vm_state::created;
    if (s == "Running") return vm_state::running;
    if (s == "Shutdown") return vm_state::shutdown;
    if (s == "Paused") return vm_state::paused;
    if (s == "BreakPoint") return vm_state::breakpoint;
    return vm_state::unknown;
}

const char* to_string(vm_state s) noexcept {
    switch (s) {
    case vm_state::created:
        return "Created";
    case vm_state::running:
        return "Running";
    case vm_state::shutdown:
        return "Shutdown";
    case vm_state::paused:
        return "Paused";
    case vm_state::breakpoint:
        return "BreakPoint";
    case vm_state::unknown:
        break;
    }
    return "unknown";
}

std::vector<std::string> parse_error_chain(std::string_view body) {
    std::vector<std::string> chain;
    error_code ec;
    auto v = json::parse(body, ec);
    if (!ec && v.is_array() &&
        std::all_of(v.as_array().begin(), v.as_array().end(),
                    [](const json::value& e) { return e.is_string(); })) {
        for (const auto& e : v.as_array()) chain.emplace_back(e.as_string());
        return chain;
    }
    // Older CH: plain text (Display or Debug text) with a JSON content type (§2.6); micro_http's
    // own parse errors: `{ "error": "...\n..." }`, which is not valid JSON (§2.3).
    while (!body.empty() && std::isspace(static_cast<unsigned char>(body.back()))) body.remove_suffix(1);
    while (!body.empty() && std::isspace(static_cast<unsigned char>(body.front()))) body.remove_prefix(1);
    if (!body.empty()) chain.push_back(io::http1::printable_excerpt(body, 1000));
    return chain;
}

errc errc_for_status(int status) noexcept {
    switch (status) {
    case 400:
        return errc::invalid_spec;
    case 404:
        return errc::not_found;
    case 409:
        return errc::already_exists;
    case 429:
        return errc::invalid_state;
    default:
        return status >= 500 && status <= 599 ? errc::command_failed : errc::http_status;
    }
}

}  // namespace vmrt::hv::ch
