// The platform: VZPlatformConfiguration, VZGenericPlatformConfiguration (macOS 12; its
// machineIdentifier property macOS 13) and VZGenericMachineIdentifier (macOS 13).
#include "vz_sim_model.hpp"

#include <algorithm>
#include <cstring>

namespace vmrt::objc::sim::vz::detail {

namespace {

using platform = self_t<generic_platform_payload>;
using identifier = self_t<machine_identifier_payload>;

void fresh_identifier(std::vector<std::uint8_t>& bytes) {
    bytes.assign(machine_identifier_magic.begin(), machine_identifier_magic.end());
    bytes.resize(machine_identifier_size);
    random_bytes(bytes.data() + machine_identifier_magic.size(),
                 machine_identifier_size - machine_identifier_magic.size());
}

bool well_formed(const std::vector<std::uint8_t>& bytes) {
    return bytes.size() == machine_identifier_size &&
           std::equal(machine_identifier_magic.begin(), machine_identifier_magic.end(), bytes.begin());
}

strong new_identifier() { return alloc_init(sim::detail::existing_class("VZGenericMachineIdentifier")); }

}  // namespace

void install_platform() {
    class_def<>("VZPlatformConfiguration")
        .method("init", [](self_t<> self) -> id { unavailable(self, "init"); })
        .method("copyWithZone:", [](self_t<> self, void*) -> id { return send<id>(self, sel<"retain">()); })
        .done();

    // "An identifier to make a virtual machine unique": -init makes a new random one; the
    // dataRepresentation round-trips through -initWithDataRepresentation:, which returns nil for
    // bytes no identifier produced. Immutable, so -copy is -retain (as Foundation does for immutables).
    class_def<machine_identifier_payload>("VZGenericMachineIdentifier")
        .method("init",
                [](identifier self) -> id {
                    fresh_identifier(self->bytes);
                    return self;
                })
        .method("initWithDataRepresentation:",
                [](identifier self, id data) -> id {
                    std::vector<std::uint8_t> bytes = data_bytes(data);
                    if (!well_formed(bytes)) {
                        send<void>(self, sel<"release">());
                        return nullptr;
                    }
                    self->bytes = std::move(bytes);
                    return self;
                })
        .method("dataRepresentation",
                [](identifier self) -> id { return autorelease(ns_data(self->bytes).detach()); })
        .method("isEqual:",
                [](identifier self, id other) -> BOOL {
                    auto* theirs = payload<machine_identifier_payload>(other);
                    return theirs && theirs->bytes == self->bytes ? YES : NO;
                })
        .method("hash",
                [](identifier self) -> NSUInteger {
                    NSUInteger h = 0;
                    std::memcpy(&h, self->bytes.data() + machine_identifier_magic.size(), sizeof h);
                    return h;
                })
        .method("copyWithZone:", [](identifier self, void*) -> id { return send<id>(self, sel<"retain">()); })
        .done();

    // Simulation: a new generic platform has a new random identifier (the property is nonnull).
    class_def<generic_platform_payload>("VZGenericPlatformConfiguration", "VZPlatformConfiguration")
        .method("init",
                [](platform self) -> id {
                    self->machine_identifier = new_identifier();
                    return self;
                })
        .method("machineIdentifier", [](platform self) -> id { return self->machine_identifier.get(); })
        .method("setMachineIdentifier:",
                [](platform self, id value) { self->machine_identifier = copied(value); })
        .done();
}

}  // namespace vmrt::objc::sim::vz::detail
