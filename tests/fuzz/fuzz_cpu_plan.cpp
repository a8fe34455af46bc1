// Fuzz target: QEMU's query-hotpluggable-cpus reply (any JSON a peer may send) through the vCPU
// hotplug planner. Invariants: no crash; a malformed reply is a vmrt::error, nothing else; a
// plan never adds more slots than are free nor removes a vCPU the VM booted with.
#include "hv/qemu_cpu_plan.hpp"

#include <boost/json/parse.hpp>

#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::uint32_t target = data[0] % 9;
    std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
    boost::system::error_code ec;
    auto reply = boost::json::parse(text, ec);
    if (ec) return 0;
    try {
        auto slots = vmrt::hv::parse_hotpluggable_cpus(reply);
        const auto plugged = vmrt::hv::plugged_cpus(slots);
        auto plan = vmrt::hv::plan_vcpu_resize(slots, target);
        if (plan.add.size() > slots.size() - plugged) std::abort();
        if (!plan.add.empty() && !plan.remove.empty()) std::abort();
        if (plugged + plan.add.size() - plan.remove.size() != target) std::abort();
    } catch (const vmrt::error&) {
        // refused: malformed reply or an impossible target
    }
    return 0;
}
