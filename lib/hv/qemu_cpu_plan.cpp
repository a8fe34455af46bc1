#include "hv/qemu_cpu_plan.hpp"

#include <algorithm>

namespace vmrt::hv {
namespace {

namespace json = boost::json;

[[noreturn]] void malformed(const std::string& what) {
    throw error(make_error_code(errc::protocol_error),
                {.message = "malformed query-hotpluggable-cpus reply: " + what});
}

constexpr std::string_view peripheral_prefix = "/machine/peripheral/";

// Slots in topology order (socket, core, thread): hot-adds fill the lowest free slot first, which
// is also the order the guest numbers its CPUs in.
std::vector<std::int64_t> topology_key(const cpu_slot& s) {
    std::vector<std::int64_t> key;
    for (const char* name : {"socket-id", "die-id", "core-id", "thread-id"}) {
        const auto* v = s.props.if_contains(name);
        key.push_back(v && v->is_int64() ? v->as_int64() : -1);
    }
    return key;
}

}  // namespace

std::vector<cpu_slot> parse_hotpluggable_cpus(const json::value& reply) {
    const auto* list = reply.if_array();
    if (!list) malformed("expected an array");
    std::vector<cpu_slot> slots;
    for (std::size_t i = 0; i < list->size(); ++i) {
        const std::string at = "entry " + std::to_string(i);
        const auto* entry = (*list)[i].if_object();
        if (!entry) malformed(at + " is not an object");
        const auto* type = entry->if_contains("type");
        const auto* props = entry->if_contains("props");
        if (!type || !type->is_string() || type->as_string().empty()) malformed(at + " has no \"type\"");
        if (!props || !props->is_object()) malformed(at + " has no \"props\" object");
        cpu_slot slot{std::string(type->as_string()), props->as_object(), std::nullopt};
        for (const auto& [key, value] : slot.props)
            if (!value.is_int64() || value.as_int64() < 0)
                malformed(at + ": prop \"" + std::string(key) + "\" is not a non-negative integer");
        if (const auto* path = entry->if_contains("qom-path")) {
            if (!path->is_string()) malformed(at + ": \"qom-path\" is not a string");
            slot.qom_path = std::string(path->as_string());
        }
        slots.push_back(std::move(slot));
    }
    std::sort(slots.begin(), slots.end(),
              [](const cpu_slot& a, const cpu_slot& b) { return topology_key(a) < topology_key(b); });
    return slots;
}

std::string cpu_device_id(const cpu_slot& slot) {
    std::string id = "vmrt-cpu";
    for (auto part : topology_key(slot))
        if (part >= 0) id += "-" + std::to_string(part);
    return id;
}

std::uint32_t plugged_cpus(const std::vector<cpu_slot>& slots) {
    return static_cast<std::uint32_t>(
        std::count_if(slots.begin(), slots.end(), [](const cpu_slot& s) { return s.qom_path.has_value(); }));
}

cpu_resize_plan plan_vcpu_resize(const std::vector<cpu_slot>& slots, std::uint32_t target) {
    if (target == 0 || target > slots.size())
        throw error(make_error_code(errc::invalid_spec),
                    {.message = "a vCPU count must be between 1 and max_cpus (" +
                                std::to_string(slots.size()) + "), found " + std::to_string(target),
                     .field = "cpus"});
    const auto boot_cpus =
        static_cast<std::uint32_t>(std::count_if(slots.begin(), slots.end(), [](const cpu_slot& s) {
            return s.qom_path && s.qom_path->rfind(peripheral_prefix, 0) != 0;
        }));
    if (target < boot_cpus)
        throw error(make_error_code(errc::unsupported),
                    {.message = "QEMU cannot unplug the vCPUs a VM booted with: this VM can shrink to " +
                                std::to_string(boot_cpus) + " vCPUs, not " + std::to_string(target),
                     .field = "cpus"});
    cpu_resize_plan plan;
    std::uint32_t plugged = plugged_cpus(slots);
    for (const auto& slot : slots) {
        if (plugged >= target) break;
        if (slot.qom_path) continue;
        json::object args = slot.props;
        args["driver"] = slot.type;
        args["id"] = cpu_device_id(slot);
        plan.add.push_back(std::move(args));
        ++plugged;
    }
    for (auto it = slots.rbegin(); it != slots.rend() && plugged > target; ++it) {
        if (!it->qom_path || it->qom_path->rfind(peripheral_prefix, 0) != 0) continue;
        plan.remove.push_back(it->qom_path->substr(peripheral_prefix.size()));
        --plugged;
    }
    return plan;
}

}  // namespace vmrt::hv
