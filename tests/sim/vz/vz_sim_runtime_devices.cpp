// The simulated runtime devices besides vsock: VZVirtioTraditionalMemoryBalloonDevice (its
// target, clamped as VZVirtioTraditionalMemoryBalloonDevice.h says) and VZNetworkDevice (macOS 12,
// whose attachment the framework drops before telling the delegate it was disconnected).
#include "vz_sim_runtime_model.hpp"

#include <algorithm>

namespace vmrt::objc::sim::vz::detail {

namespace {

constexpr std::uint64_t mib = 1ull << 20;

struct balloon_payload {
    std::weak_ptr<machine_core> vm;
    std::uint64_t target = 0;
    std::uint64_t minimum = 0;
    std::uint64_t maximum = 0;
};
using balloon = self_t<balloon_payload>;

struct network_payload {
    std::weak_ptr<machine_core> vm;
    strong attachment;
};
using network = self_t<network_payload>;

void check(const std::weak_ptr<machine_core>& vm, const char* receiver_class, const char* selector) {
    if (auto core = vm.lock())
        core->check_queue(receiver_class, selector);
    else
        record_misuse(std::string("-[") + receiver_class + " " + selector + "] after its VM was deallocated");
}

constexpr const char* balloon_class = "VZVirtioTraditionalMemoryBalloonDevice";

}  // namespace

strong make_balloon_device(const std::shared_ptr<machine_core>& core, std::uint64_t minimum) {
    strong d = alloc_init(cls(balloon_class));
    auto* p = payload<balloon_payload>(d.get());
    p->vm = core;
    p->maximum = core->memory_size;
    p->minimum = std::min(minimum, core->memory_size);
    p->target = core->memory_size;  // "initialized to VZVirtualMachineConfiguration.memorySize"
    return d;
}

std::uint64_t balloon_target_of(id device) { return payload<balloon_payload>(device)->target; }

strong make_network_device(const std::shared_ptr<machine_core>& core, id attachment) {
    strong d = alloc_init(cls("VZNetworkDevice"));
    auto* p = payload<network_payload>(d.get());
    p->vm = core;
    p->attachment = strong::retain(attachment);
    return d;
}

void detach_network_device(id device) { payload<network_payload>(device)->attachment.reset(); }

void install_device_classes() {
    class_def<>("VZMemoryBalloonDevice").done();
    class_def<balloon_payload>(balloon_class, "VZMemoryBalloonDevice")
        .method("targetVirtualMachineMemorySize",
                [](balloon self) -> unsigned long long {
                    check(self->vm, balloon_class, "targetVirtualMachineMemorySize");
                    return self->target;
                })
        .method("setTargetVirtualMachineMemorySize:",
                [](balloon self, unsigned long long bytes) {
                    check(self->vm, balloon_class, "setTargetVirtualMachineMemorySize:");
                    // Rounded down to a MiB, clamped to [minimumAllowedMemorySize, memorySize].
                    self->target = std::clamp<std::uint64_t>(bytes / mib * mib, self->minimum, self->maximum);
                })
        .done();

    class_def<network_payload>("VZNetworkDevice")
        .method("attachment",
                [](network self) -> id {
                    check(self->vm, "VZNetworkDevice", "attachment");
                    return self->attachment.get();
                })
        .method("setAttachment:",
                [](network self, id a) {
                    check(self->vm, "VZNetworkDevice", "setAttachment:");
                    self->attachment = strong::retain(a);
                })
        .done();
}

}  // namespace vmrt::objc::sim::vz::detail
