// Devices without settings: VZEntropyDeviceConfiguration / VZVirtioEntropyDeviceConfiguration,
// VZMemoryBalloonDeviceConfiguration / VZVirtioTraditionalMemoryBalloonDeviceConfiguration,
// VZSocketDeviceConfiguration / VZVirtioSocketDeviceConfiguration (all macOS 11).
#include "vz_sim_model.hpp"

namespace vmrt::objc::sim::vz::detail {

namespace {

void abstract_and_concrete(const char* base, const char* concrete) {
    class_def<>(base)
        .method("init", [](self_t<> self) -> id { unavailable(self, "init"); })
        .method("copyWithZone:", [](self_t<> self, void*) -> id { return send<id>(self, sel<"retain">()); })
        .done();
    class_def<>(concrete, base).method("init", [](self_t<> self) -> id { return self; }).done();
}

}  // namespace

void install_devices() {
    abstract_and_concrete("VZEntropyDeviceConfiguration", "VZVirtioEntropyDeviceConfiguration");
    abstract_and_concrete("VZMemoryBalloonDeviceConfiguration",
                          "VZVirtioTraditionalMemoryBalloonDeviceConfiguration");
    abstract_and_concrete("VZSocketDeviceConfiguration", "VZVirtioSocketDeviceConfiguration");
}

}  // namespace vmrt::objc::sim::vz::detail
