#include "hv/apple_vz/vz_machine_reads.hpp"

#include "hv/apple_vz/objc/foundation.hpp"
#include "hv/apple_vz/objc/message.hpp"

namespace vmrt::hv::vz {

using objc::BOOL;
using objc::Class;
using objc::id;
using objc::NSInteger;
using objc::SEL;
using objc::sel;
using objc::send;

machine_state state_of(id vm) {
    const auto raw = send<NSInteger>(vm, sel<"state">());
    // A value this code does not know (a newer macOS) is reported, never guessed at.
    if (auto s = machine_state_from(raw)) return *s;
    throw error(make_error_code(errc::internal),
                {.message = "Virtualization.framework reports an unknown VM state " + std::to_string(raw)});
}

std::string state_text(id vm) {
    const auto raw = send<NSInteger>(vm, sel<"state">());
    if (auto s = machine_state_from(raw)) return std::string(state_name(*s));
    return "in unknown state " + std::to_string(raw);
}

error refused(const std::string& what, id vm) {
    return error(
        make_error_code(errc::invalid_state),
        {.message = "cannot " + what + ": Virtualization.framework reports the VM " + state_text(vm)});
}

id the_vm(const vz_machine& m, const std::string& what) {
    if (!m.vm)
        throw error(make_error_code(errc::invalid_state),
                    {.message = "cannot " + what + ": the VM object is gone"});
    return m.vm.get();
}

id first_device(id vm, SEL getter, const char* class_name) {
    Class wanted = objc::cls(class_name);
    for (const objc::strong& d : objc::array_items(send<id>(vm, getter)))
        if (wanted && send<BOOL, Class>(d.get(), sel<"isKindOfClass:">(), wanted)) return d.get();
    return nullptr;
}

id socket_device(id vm) {
    id device = first_device(vm, sel<"socketDevices">(), "VZVirtioSocketDevice");
    if (!device)
        throw error(
            make_error_code(errc::unsupported),
            {.message = "the VM has no virtio socket device (set \"vsock\" in its spec)", .field = "vsock"});
    return device;
}

bool can_stop_at_all(id vm) { return objc::responds_to(vm, sel<"stopWithCompletionHandler:">()); }

}  // namespace vmrt::hv::vz
