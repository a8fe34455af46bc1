#include "hv/apple_vz/vz_delegate.hpp"

#include "hv/apple_vz/objc/class_builder.hpp"
#include "hv/apple_vz/objc/foundation.hpp"
#include "hv/apple_vz/objc/ns_error.hpp"

namespace vmrt::hv::vz {

namespace {

using objc::id;

struct delegate_state {
    std::shared_ptr<const vz_event_sender> events;
};

// -guestDidStopVirtualMachine: "Invoked when a guest has stopped the virtual machine."
void guest_did_stop(delegate_state& s, id) { s.events->send({.kind = vz_event_kind::guest_stopped}); }

// -virtualMachine:didStopWithError: "Invoked when a virtual machine is stopped due to an error."
void did_stop_with_error(delegate_state& s, id, id error) {
    std::string text = "Virtualization.framework stopped the VM with an error";
    try {
        text = objc::to_error(error, "Virtualization.framework stopped the VM").diag().message;
    } catch (...) {
        // out of memory reading the NSError: the stop itself must still be reported
    }
    s.events->send({.kind = vz_event_kind::stopped_with_error, .text = std::move(text)});
}

// -virtualMachine:networkDevice:attachmentWasDisconnectedWithError: (macOS 12): the NIC stays, its
// attachment is gone (nil) until the VM is restarted; the VM keeps running.
void attachment_disconnected(delegate_state& s, id vm, id device, id error) noexcept try {
    std::string nic = "a network device";
    auto devices = objc::array_items(objc::send<id>(vm, objc::sel<"networkDevices">()));
    for (std::size_t i = 0; i < devices.size(); ++i)
        if (devices[i].get() == device) nic = "networks[" + std::to_string(i) + "]";
    std::string text =
        objc::to_error(error, nic + ": Virtualization.framework disconnected its network attachment")
            .diag()
            .message;
    s.events->send({.kind = vz_event_kind::note, .text = std::move(text)});
} catch (...) {
    // a note is not worth terminating for (Objective-C frames cannot unwind a C++ exception)
}

const objc::cpp_class<delegate_state>& delegate_class() {
    static const objc::cpp_class<delegate_state> c = [] {
        objc::cpp_class_builder<delegate_state> b("VmrtVZVirtualMachineDelegate");
        b.adopt_protocol("VZVirtualMachineDelegate");
        b.method<&guest_did_stop>("guestDidStopVirtualMachine:")
            .method<&did_stop_with_error>("virtualMachine:didStopWithError:")
            .method<&attachment_disconnected>(
                "virtualMachine:networkDevice:attachmentWasDisconnectedWithError:");
        return b.finish();
    }();
    return c;
}

}  // namespace

objc::strong make_vm_delegate(std::shared_ptr<const vz_event_sender> events) {
    return delegate_class().make(delegate_state{std::move(events)});
}

}  // namespace vmrt::hv::vz
