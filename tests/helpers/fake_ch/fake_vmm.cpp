#include "fake_vmm.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace fake_ch {

namespace {

// Root error texts (Display of CH's VmError) quoted in reference §2.5.
const char* const not_created = "VM is not created";
const char* const already_created = "VM is already created";
const char* const not_running = "VM is not running";

std::string error_body(std::initializer_list<std::string> chain) {
    json::array a;
    for (const auto& c : chain) a.emplace_back(c);
    return json::serialize(a);
}

// Bad JSON or JSON of the wrong shape: 400 ["Failed to deserialize JSON","<serde text>"] (§2.3).
std::optional<json::object> parse_object(const std::string& body, reply& failure) {
    boost::system::error_code ec;
    auto v = json::parse(body, ec);
    if (ec || !v.is_object()) {
        failure = {400,
                   error_body({"Failed to deserialize JSON", ec ? ec.message() : "expected a JSON object"})};
        return std::nullopt;
    }
    return std::move(v.as_object());
}

std::optional<std::uint64_t> uint_field(const json::object& o, const char* key) {
    auto* v = o.if_contains(key);
    if (!v) return std::nullopt;
    boost::system::error_code ec;
    auto n = v->to_number<std::uint64_t>(ec);
    if (ec) return std::nullopt;
    return n;
}

struct device_kind {
    const char* config_key;
    const char* id_prefix;  // §1.3: "_disk0", "_net0", ...
    const char* path_key;   // duplicate paths are 409 (§1.1); nullptr: none
    bool single;            // vsock is one object, not a list
    const char* action;
};

// The add-* routes. The ids of vm.add-device / vm.add-user-device ("_vfio", "_vfio_user") are not
// in the reference; they are the double's guess.
const std::map<std::string, device_kind>& device_kinds() {
    static const std::map<std::string, device_kind> kinds{
        {"vm.add-disk", {"disks", "_disk", "path", false, "The disk could not be added to the VM"}},
        {"vm.add-net", {"net", "_net", nullptr, false, "The network device could not be added to the VM"}},
        {"vm.add-fs", {"fs", "_fs", nullptr, false, "The fs device could not be added to the VM"}},
        {"vm.add-pmem", {"pmem", "_pmem", "file", false, "The pmem device could not be added to the VM"}},
        {"vm.add-vsock", {"vsock", "_vsock", nullptr, true, "The vsock device could not be added to the VM"}},
        {"vm.add-vdpa", {"vdpa", "_vdpa", "path", false, "The vdpa device could not be added to the VM"}},
        {"vm.add-device", {"devices", "_vfio", "path", false, "The device could not be added to the VM"}},
        {"vm.add-user-device",
         {"user_devices", "_vfio_user", "socket", false, "The user device could not be added to the VM"}},
        {"vm.add-generic-vhost-user",
         {"generic_vhost_user", "_generic_vhost_user", "socket", false,
          "The device could not be added to the VM"}},
    };
    return kinds;
}

// Every device object of a config, with its kind.
template <typename F>
void for_each_device(json::object& config, F f) {
    for (const auto& [route, kind] : device_kinds()) {
        auto* v = config.if_contains(kind.config_key);
        if (!v) continue;
        if (kind.single && v->is_object()) f(kind, v->as_object());
        if (!kind.single && v->is_array())
            for (auto& d : v->as_array())
                if (d.is_object()) f(kind, d.as_object());
    }
}

// ---- build features (route additions for the OpenAPI coverage test) ----

// CH's compile-time features change its route table: vm.coredump exists only in x86_64 builds
// with `guest_debug` (§1.3); a release build answers 404 ["Not Found"] there. The double is a
// release build unless VMRT_FAKE_CH_FEATURES (comma-separated, e.g. "guest_debug") names the
// feature, so that component.ch_openapi_test can prove every path of the OpenAPI file is routed.
bool guest_debug_build() {
    static const bool on = [] {
        const char* env = std::getenv("VMRT_FAKE_CH_FEATURES");
        std::string list = std::string(",") + (env ? env : "") + ",";
        return list.find(",guest_debug,") != std::string::npos;
    }();
    return on;
}

}  // namespace

vmm::vmm(event_sink events, bool no_shutdown) : events_(std::move(events)), no_shutdown_(no_shutdown) {}

bool vmm::known_route(const std::string& endpoint, bool& is_get) {
    static const std::set<std::string> get_routes{"vmm.ping", "vm.info", "vm.counters"};
    // The PUT routes of the OpenAPI file, minus vm.coredump (only in guest_debug builds, §1.3).
    static const std::set<std::string> put_routes{"vmm.shutdown",
                                                  "vm.create",
                                                  "vm.boot",
                                                  "vm.shutdown",
                                                  "vm.reboot",
                                                  "vm.power-button",
                                                  "vm.pause",
                                                  "vm.resume",
                                                  "vm.snapshot",
                                                  "vm.restore",
                                                  "vm.delete",
                                                  "vm.resize",
                                                  "vm.resize-zone",
                                                  "vm.resize-disk",
                                                  "vm.add-disk",
                                                  "vm.add-fs",
                                                  "vm.add-net",
                                                  "vm.add-pmem",
                                                  "vm.add-vsock",
                                                  "vm.add-vdpa",
                                                  "vm.add-device",
                                                  "vm.add-user-device",
                                                  "vm.add-generic-vhost-user",
                                                  "vm.remove-device",
                                                  "vm.nmi",
                                                  "vm.send-migration",
                                                  "vm.receive-migration"};
    is_get = get_routes.count(endpoint) > 0;
    if (endpoint == "vm.coredump") return guest_debug_build();  // PUT, guest_debug builds only
    return is_get || put_routes.count(endpoint) > 0;
}

bool vmm::bodyless(const std::string& endpoint) {
    static const std::set<std::string> routes{"vm.boot",   "vm.shutdown", "vm.pause",
                                              "vm.resume", "vm.reboot",   "vm.power-button",
                                              "vm.delete", "vm.nmi",      "vmm.shutdown"};
    return routes.count(endpoint) > 0;
}

reply vmm::error(int status, const std::string& action, const std::string& root) const {
    return {status, error_body({"Error from API", action, root})};
}

std::string vmm::state_name() const {
    if (!live_) return "Created";
    return paused_ ? "Paused" : "Running";
}

bool vmm::id_in_use(const std::string& id) const {
    if (!config_) return false;
    bool used = false;
    auto copy = *config_;
    for_each_device(copy, [&](const device_kind&, json::object& d) {
        if (auto* v = d.if_contains("id"); v && v->is_string() && v->as_string() == id) used = true;
    });
    return used;
}

std::string vmm::next_id(const std::string& prefix) {
    for (;;) {
        auto id = prefix + std::to_string(id_counters_[prefix]++);
        if (!id_in_use(id)) return id;
    }
}

std::string vmm::next_bdf() {
    char bdf[16];
    std::snprintf(bdf, sizeof bdf, "0000:00:%02x.0", next_slot_++ & 0x1f);
    return bdf;
}

// The device manager names every device that has no id when the VM is built (§1.3).
void vmm::assign_ids() {
    std::vector<std::pair<std::string, json::object*>> unnamed;
    for_each_device(*config_, [&](const device_kind& kind, json::object& d) {
        auto* id = d.if_contains("id");
        if (!id || !id->is_string()) unnamed.emplace_back(kind.id_prefix, &d);
    });
    for (auto& [prefix, d] : unnamed) (*d)["id"] = next_id(prefix);
    bdfs_.clear();
    next_slot_ = 1;
    for_each_device(*config_, [&](const device_kind&, json::object& d) {
        bdfs_[std::string(d["id"].as_string())] = next_bdf();
    });
}

std::optional<std::string> vmm::connect_fs(const json::array& devices) const {
    if (!connect_fs_ || devices.empty()) return std::nullopt;
    return connect_fs_(devices);
}

std::optional<std::string> vmm::connect_all_fs() const {
    const auto* fs = config_ ? config_->if_contains("fs") : nullptr;
    return fs && fs->is_array() ? connect_fs(fs->as_array()) : std::nullopt;
}

reply vmm::boot() {
    // Config validation happens at boot, not at create (§1.3); this one is documented in §3.
    auto* fs = config_->if_contains("fs");
    auto* memory = config_->if_contains("memory");
    const bool shared = memory && memory->is_object() && memory->as_object().if_contains("shared") &&
                        memory->as_object().at("shared") == true;
    if (fs && fs->is_array() && !fs->as_array().empty() && !shared)
        return error(400, "The VM could not boot",
                     "Using vhost-user requires using shared memory or huge pages");
    assign_ids();
    // The devices are built (and vhost-user backends connected) before the "booting" event.
    if (auto failure = connect_all_fs()) return error(500, "The VM could not boot", *failure);
    if (auto failed = attach_vsock(*config_)) return error(500, "The VM could not boot", *failed);
    events_("vm", "booting", nullptr);
    live_ = true;
    paused_ = false;
    events_("vm", "booted", nullptr);
    for (const auto& [id, bdf] : bdfs_) events_("virtio-device", "activated", json::object{{"id", id}});
    return {204, std::nullopt};
}

// The vsock device binds its socket when the VM object is built; failure fails the action (§4).
std::optional<std::string> vmm::attach_vsock(const json::object& config) const {
    auto* vsock = config.if_contains("vsock");
    if (!vsock_attach_ || !vsock || !vsock->is_object()) return std::nullopt;
    return vsock_attach_(vsock->as_object());
}

bool vmm::cli_create_and_boot(json::object config, std::string& message) {
    config_ = std::move(config);
    auto r = boot();
    if (r.status != 204) message = r.body.value_or("boot failed");
    return r.status == 204;
}

void vmm::shutdown_events() {
    if (live_) events_("vm", "shutdown", nullptr);
    if (config_) events_("vm", "deleted", nullptr);
    live_ = false;
    config_.reset();
    events_("vmm", "shutdown", nullptr);
}

bool vmm::guest_power_off() {
    if (!live_) return false;
    if (paused_) {  // a paused guest cannot react; it will when resumed
        power_off_pending_ = true;
        return false;
    }
    power_off_pending_ = false;
    if (!no_shutdown_) return true;  // the caller runs shutdown_events() and exits 0 (§3.1)
    events_("vm", "shutdown", nullptr);
    live_ = false;
    return false;
}

reply vmm::add_device(const std::string& endpoint, const std::string& body) {
    const auto& kind = device_kinds().at(endpoint);
    reply bad;
    auto device = parse_object(body, bad);
    if (!device) return bad;
    if (!config_) return error(404, kind.action, not_created);
    auto* id = device->if_contains("id");
    if (id && !id->is_string())
        return {400, error_body({"Failed to deserialize JSON", "id is not a string"})};
    if (id && id->as_string().starts_with("__"))
        return error(400, kind.action, "Identifier " + std::string(id->as_string()) + " is reserved");
    if (id && id_in_use(std::string(id->as_string())))
        return error(409, kind.action, "Identifier " + std::string(id->as_string()) + " is not unique");
    if (kind.path_key && device->if_contains(kind.path_key)) {
        bool duplicate = false;
        const auto& path = device->at(kind.path_key);
        for_each_device(*config_, [&](const device_kind& k, json::object& d) {
            if (k.path_key && d.if_contains(k.path_key) && d.at(k.path_key) == path) duplicate = true;
        });
        if (duplicate) return error(409, kind.action, "Duplicate device path: " + json::serialize(path));
    }
    if (kind.single && config_->if_contains(kind.config_key))
        return error(400, kind.action, "Only one vsock device is supported");  // the double's wording
    if (endpoint == "vm.add-fs" && live_) {
        auto* memory = config_->if_contains("memory");
        if (!(memory && memory->is_object() && memory->as_object().if_contains("shared") &&
              memory->as_object().at("shared") == true))
            return error(400, kind.action, "Using vhost-user requires using shared memory or huge pages");
    }
    if (live_ && endpoint == "vm.add-vsock")
        if (auto failed = vsock_attach_ ? vsock_attach_(*device) : std::nullopt)
            return error(500, kind.action, *failed);
    if (!live_) {  // cold: only the config is edited, 204 with no body (§1.3)
        if (kind.single) {
            (*config_)[kind.config_key] = std::move(*device);
        } else {
            auto& list = (*config_)[kind.config_key];
            if (!list.is_array()) list = json::array();
            list.as_array().emplace_back(std::move(*device));
        }
        return {204, std::nullopt};
    }
    std::string new_id = id ? std::string(id->as_string()) : next_id(kind.id_prefix);
    (*device)["id"] = new_id;
    if (endpoint == "vm.add-fs")
        if (auto failure = connect_fs(json::array{*device})) return error(500, kind.action, *failure);
    if (kind.single) {
        (*config_)[kind.config_key] = std::move(*device);
    } else {
        auto& list = (*config_)[kind.config_key];
        if (!list.is_array()) list = json::array();
        list.as_array().emplace_back(std::move(*device));
    }
    auto bdf = next_bdf();
    bdfs_[new_id] = bdf;
    json::object info{{"id", new_id}, {"bdf", bdf}};  // PciDeviceInfo, 200 (§1.3)
    return {200, json::serialize(info)};
}

reply vmm::handle(const std::string& method, const std::string& endpoint, const std::string& body,
                  follow_up& next) {
    next = follow_up::none;
    (void)method;  // the HTTP side checked it against the route (§2.3)
    reply bad;

    if (endpoint == "vmm.ping") {
        json::object o{{"build_version", "vmrt-fake-cloud-hypervisor"},
                       {"version", "v54.0.0-fake"},
                       {"pid", static_cast<std::int64_t>(::getpid())},
                       {"features", json::array{"kvm", "io_uring"}}};
        if (guest_debug_build()) o["features"].as_array().emplace_back("guest_debug");
        return {200, json::serialize(o)};
    }
    if (endpoint == "vmm.shutdown") {
        next = follow_up::exit_vmm;
        return {200, std::string()};  // 200 with an empty body, not the spec's 204 (§1.3)
    }
    if (endpoint == "vm.create") {
        if (body.empty()) return {400, std::string()};  // no body: 400 with an empty body (§2.3)
        auto config = parse_object(body, bad);
        if (!config) return bad;
        if (config_) return error(500, "The VM could not be created", already_created);
        // serde fills the defaults of absent sections (§3: one vCPU, 512 MiB), and vm.info shows them.
        if (!config->contains("cpus")) (*config)["cpus"] = json::object{{"boot_vcpus", 1}, {"max_vcpus", 1}};
        if (!config->contains("memory")) (*config)["memory"] = json::object{{"size", 512u << 20}};
        if (!(*config)["cpus"].is_object() || !(*config)["memory"].is_object())
            return {400, error_body({"Failed to deserialize JSON", "cpus and memory must be objects"})};
        config_ = std::move(*config);  // not validated until boot (§1.3)
        return {204, std::nullopt};
    }
    if (endpoint == "vm.boot") {
        if (!config_) return error(404, "The VM could not boot", not_created);
        if (live_) return error(500, "The VM could not boot", already_created);
        return boot();
    }
    if (endpoint == "vm.shutdown") {
        if (!live_) return error(500, "The VM could not shutdown", not_running);
        live_ = false;  // back to "Created", the config is kept (§1.2)
        paused_ = false;
        events_("vm", "shutdown", nullptr);
        return {204, std::nullopt};
    }
    if (endpoint == "vm.reboot") {
        if (!live_) return error(404, "The VM could not reboot", not_created);  // 404 even if created (§1.3)
        events_("vm", "rebooting", nullptr);  // closes the vhost-user connections (virtiofsd exits)
        paused_ = false;
        if (auto failure = connect_all_fs()) {  // the re-created VM's devices connect again
            live_ = false;
            return error(500, "The VM could not reboot", *failure);
        }
        events_("vm", "rebooted", nullptr);
        return {204, std::nullopt};
    }
    if (endpoint == "vm.power-button") {
        if (!live_) return error(500, "Error triggering power button", not_running);
        next = follow_up::guest_power_off_soon;  // only an ACPI event: the guest reacts later (§10.5)
        return {204, std::nullopt};
    }
    if (endpoint == "vm.pause") {
        if (!live_) return error(500, "The VM could not be paused", not_running);
        if (paused_)
            return error(500, "The VM could not be paused", "Invalid VM state transition: Paused to Paused");
        events_("vm", "pausing", nullptr);
        paused_ = true;
        events_("vm", "paused", nullptr);
        return {204, std::nullopt};
    }
    if (endpoint == "vm.resume") {
        if (!live_) return error(500, "The VM could not resume", not_running);
        if (!paused_)
            return error(500, "The VM could not resume", "Invalid VM state transition: Running to Running");
        events_("vm", "resuming", nullptr);
        paused_ = false;
        events_("vm", "resumed", nullptr);
        if (power_off_pending_) next = follow_up::guest_power_off_soon;
        return {204, std::nullopt};
    }
    if (endpoint == "vm.nmi") {
        if (!live_) return error(500, "Error injecting NMI", not_running);
        return {204, std::nullopt};
    }
    if (endpoint == "vm.delete") {  // idempotent (§1.3)
        if (live_) events_("vm", "shutdown", nullptr);
        if (config_) events_("vm", "deleted", nullptr);
        live_ = paused_ = power_off_pending_ = false;
        config_.reset();
        return {204, std::nullopt};
    }
    if (endpoint == "vm.info") {
        if (!config_) return error(404, "The VM info is not available", not_created);
        json::object info{{"config", *config_}, {"state", state_name()}};
        auto& memory = (*config_)["memory"];
        std::uint64_t actual = 0;
        if (memory.is_object()) {
            actual = uint_field(memory.as_object(), "size").value_or(0) +
                     uint_field(memory.as_object(), "hotplugged_size").value_or(0);
            if (auto* b = config_->if_contains("balloon"); b && b->is_object())
                actual -= std::min(actual, uint_field(b->as_object(), "size").value_or(0));
        }
        info["memory_actual_size"] = actual;
        if (live_) {  // device_tree only for a booted VM (§1.3)
            json::object tree;
            for (const auto& [id, bdf] : bdfs_)
                tree[id] = json::object{
                    {"id", id}, {"resources", json::array()}, {"children", json::array()}, {"pci_bdf", bdf}};
            info["device_tree"] = std::move(tree);
        }
        return {200, json::serialize(info)};
    }
    if (endpoint == "vm.counters") {
        if (!live_) return error(500, "Error getting counters from VM", not_running);
        json::object counters;
        for (const auto& [id, bdf] : bdfs_) {
            if (id.starts_with("_disk") || id.starts_with("disk"))
                counters[id] =
                    json::object{{"read_bytes", 4096}, {"read_ops", 1}, {"write_bytes", 0}, {"write_ops", 0}};
            else if (id.starts_with("_net") || id.starts_with("net"))
                counters[id] =
                    json::object{{"rx_bytes", 0}, {"rx_frames", 0}, {"tx_bytes", 342}, {"tx_frames", 1}};
            else
                counters[id] = json::object{};
        }
        return {200, json::serialize(counters)};
    }
    if (endpoint == "vm.resize") {
        auto r = parse_object(body, bad);
        if (!r) return bad;
        const char* action = "The VM could not be resized";
        if (!config_) return error(404, action, not_created);
        auto& cpus = (*config_)["cpus"];
        auto& memory = (*config_)["memory"];
        if (!cpus.is_object()) cpus = json::object{{"boot_vcpus", 1}, {"max_vcpus", 1}};
        if (!memory.is_object()) memory = json::object{{"size", 512u << 20}};
        if (auto vcpus = uint_field(*r, "desired_vcpus")) {
            const auto max = uint_field(cpus.as_object(), "max_vcpus").value_or(1);
            if (*vcpus < 1 || *vcpus > max)
                return error(500, action,
                             "Invalid resize: desired vCPUs " + std::to_string(*vcpus) + " outside 1.." +
                                 std::to_string(max));
        }
        if (auto ram = uint_field(*r, "desired_ram"); ram && live_) {
            const auto size = uint_field(memory.as_object(), "size").value_or(0);
            const auto hotplug = uint_field(memory.as_object(), "hotplug_size");
            if (!hotplug && *ram != size)
                return error(500, action, "Memory hotplug is not enabled (no hotplug_size)");
            if (hotplug && *ram > size + *hotplug)
                return error(500, action, "Insufficient space for hotplug");
        }
        auto* balloon = config_->if_contains("balloon");
        if (r->if_contains("desired_balloon") && !(balloon && balloon->is_object()))
            return error(500, action, "No balloon device");
        if (live_) events_("vm", "resizing", nullptr);
        if (auto vcpus = uint_field(*r, "desired_vcpus"))
            cpus.as_object()["boot_vcpus"] = *vcpus;  // saved (§6)
        if (auto ram = uint_field(*r, "desired_ram")) {
            const auto size = uint_field(memory.as_object(), "size").value_or(0);
            if (live_)
                memory.as_object()["hotplugged_size"] = *ram > size ? *ram - size : 0;
            else
                memory.as_object()["size"] = *ram;  // cold: only the config (§6)
        }
        if (auto b = uint_field(*r, "desired_balloon")) balloon->as_object()["size"] = *b;
        if (live_) events_("vm", "resized", nullptr);
        return {204, std::nullopt};
    }
    if (endpoint == "vm.resize-zone") {
        auto r = parse_object(body, bad);
        if (!r) return bad;
        const char* action = "The memory zone could not be resized";
        if (!config_) return error(404, action, not_created);
        auto* id = r->if_contains("id");
        bool known = false;
        if (auto* m = config_->if_contains("memory"); m && m->is_object())
            if (auto* zones = m->as_object().if_contains("zones"); zones && zones->is_array())
                for (auto& z : zones->as_array())
                    if (id && z.is_object() && z.as_object().if_contains("id") &&
                        z.as_object().at("id") == *id) {
                        known = true;
                        if (auto ram = uint_field(*r, "desired_ram")) z.as_object()["hotplugged_size"] = *ram;
                    }
        if (!known)
            return error(500, action, "Unknown memory zone " + (id ? json::serialize(*id) : "(none)"));
        return {204, std::nullopt};
    }
    if (endpoint == "vm.resize-disk") {
        auto r = parse_object(body, bad);
        if (!r) return bad;
        const char* action = "The disk could not be resized";
        auto* id = r->if_contains("id");
        if (!config_ || !id || !id->is_string() || !bdfs_.count(std::string(id->as_string())))
            return error(live_ || !config_ ? 404 : 500, action, config_ ? "Unknown device id" : not_created);
        return {204, std::nullopt};
    }
    if (device_kinds().count(endpoint)) return add_device(endpoint, body);
    if (endpoint == "vm.remove-device") {
        auto r = parse_object(body, bad);
        if (!r) return bad;
        const char* action = "The device could not be removed from the VM";
        if (!config_) return error(404, action, not_created);
        auto* id = r->if_contains("id");
        const std::string wanted = id && id->is_string() ? std::string(id->as_string()) : std::string();
        const json::value wanted_value = json::string(wanted);
        bool removed = false;
        for (const auto& [route, kind] : device_kinds()) {
            auto* v = config_->if_contains(kind.config_key);
            if (!v) continue;
            if (kind.single && v->is_object() && v->as_object().if_contains("id") &&
                v->as_object().at("id") == wanted_value) {
                config_->erase(kind.config_key);
                removed = true;
                break;
            }
            if (!kind.single && v->is_array()) {
                auto& a = v->as_array();
                for (auto it = a.begin(); it != a.end(); ++it)
                    if (it->is_object() && it->as_object().if_contains("id") &&
                        it->as_object().at("id") == wanted_value) {
                        a.erase(it);
                        removed = true;
                        break;
                    }
            }
            if (removed) break;
        }
        if (!removed) return error(404, action, "No device with id " + wanted + " to remove");
        bdfs_.erase(wanted);
        if (live_) events_("vm", "device-removed", json::object{{"id", wanted}});
        return {204, std::nullopt};
    }
    if (endpoint == "vm.snapshot") {
        auto r = parse_object(body, bad);
        if (!r) return bad;
        const char* action = "The VM could not be snapshotted";
        if (!live_) return error(500, action, not_running);
        if (!paused_) return error(500, action, "Trying to snapshot while VM is running");  // §5
        auto* url = r->if_contains("destination_url");
        if (!url || !url->is_string() || !url->as_string().starts_with("file://"))
            return error(500, action, "Invalid snapshot destination URL");
        const std::filesystem::path dir(std::string(url->as_string()).substr(7));
        if (!std::filesystem::is_directory(dir))
            return error(500, action, "Snapshot directory does not exist: " + dir.string());
        events_("vm", "snapshotting", nullptr);
        // Created with O_EXCL, as CH does: existing files are an error (§5).
        auto write_new = [&](const char* name, const std::string& data, std::uint64_t size) {
            int fd = ::open((dir / name).c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
            if (fd < 0) return false;
            bool ok = ::write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size());
            if (size > data.size())
                ok = ok && ::ftruncate(fd, static_cast<off_t>(size)) == 0;  // sparse RAM image
            ::close(fd);
            return ok;
        };
        const auto ram = uint_field((*config_)["memory"].as_object(), "size").value_or(0);
        if (!write_new("config.json", json::serialize(*config_), 0) ||
            !write_new("state.json", R"({"fake_cloud_hypervisor":true})", 0) ||
            !write_new("memory-ranges", "", ram))
            return error(500, action,
                         "Failed to create snapshot files in " + dir.string() + " (do they exist already?)");
        events_("vm", "snapshotted", nullptr);
        return {204, std::nullopt};  // stays Paused (§5)
    }
    if (endpoint == "vm.restore") {
        auto r = parse_object(body, bad);
        if (!r) return bad;
        const char* action = "The VM could not be restored";
        if (config_) return error(500, action, already_created);  // 500, not the spec's 404 (§1.3)
        auto* url = r->if_contains("source_url");
        if (!url || !url->is_string())
            return {400, error_body({"Failed to deserialize JSON", "missing field `source_url`"})};
        if (!url->as_string().starts_with("file://")) return error(500, action, "Invalid restore source URL");
        const std::filesystem::path dir(std::string(url->as_string()).substr(7));
        std::ifstream in(dir / "config.json");
        std::stringstream text;
        text << in.rdbuf();
        boost::system::error_code ec;
        auto restored = json::parse(text.str(), ec);
        if (!in || ec || !restored.is_object() || !std::filesystem::exists(dir / "memory-ranges"))
            return error(500, action, "Cannot read the snapshot in " + dir.string());
        if (auto failed = attach_vsock(restored.as_object())) return error(500, action, *failed);
        events_("vm", "restoring", nullptr);
        config_ = std::move(restored.as_object());
        assign_ids();
        if (auto failure = connect_all_fs()) {
            config_.reset();
            return error(500, action, *failure);
        }
        live_ = true;
        paused_ = true;  // Paused unless resume:true (§5)
        events_("vm", "restored", nullptr);
        if (auto* resume = r->if_contains("resume"); resume && *resume == true) {
            events_("vm", "resuming", nullptr);
            paused_ = false;
            events_("vm", "resumed", nullptr);
        }
        return {204, std::nullopt};
    }
    if (endpoint == "vm.coredump") {             // routed only in a guest_debug build (known_route)
        auto request = parse_object(body, bad);  // VmCoredumpData {destination_url}
        if (!request) return bad;
        const char* action = "The VM could not be coredumped";
        if (!live_) return error(500, action, not_running);  // VmNotRunning, as CH's vm_coredump
        // Writing an ELF dump of guest memory is outside what the double emulates: CH's status for
        // a failed coredump (VmError::Coredump maps to 500, §1.1), with the reason as root cause.
        return error(500, action, "Coredump is not emulated by vmrt-fake-cloud-hypervisor");
    }
    if (endpoint == "vm.send-migration" || endpoint == "vm.receive-migration") {
        // Migration is outside what the double emulates: CH's generic failure status (§1.3).
        return error(500,
                     endpoint == "vm.send-migration" ? "The VM could not be migrated"
                                                     : "The VM migration could not be received",
                     "Migration is not supported by vmrt-fake-cloud-hypervisor");
    }
    return {404, error_body({"Not Found"})};
}

}  // namespace fake_ch
