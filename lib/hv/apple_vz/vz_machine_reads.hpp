// Small reads and refusals of a VZVirtualMachine, shared by the instance's lifecycle
// (vz_instance.cpp) and its operations (vz_instance_ops.cpp). Every function here runs on the VM's
// queue, inside an autorelease pool the caller holds.
#pragma once

#include "hv/apple_vz/objc/runtime.hpp"
#include "hv/apple_vz/vz_instance.hpp"
#include "hv/apple_vz/vz_state.hpp"

#include <vmrt/error.hpp>

#include <string>

namespace vmrt::hv::vz {

/// The VM's state; an unknown value (a newer macOS) is an error, never a guess.
machine_state state_of(objc::id vm);
/// The VM's state by name, for messages ("in unknown state N" for an unknown value).
std::string state_text(objc::id vm);
/// "cannot <what>: Virtualization.framework reports the VM <state>" (errc::invalid_state).
error refused(const std::string& what, objc::id vm);
/// The machine's VM object; errc::invalid_state if it is gone.
objc::id the_vm(const vz_machine& m, const std::string& what);
/// The first runtime device of `getter` ("socketDevices") that is a `class_name`, or nil.
objc::id first_device(objc::id vm, objc::SEL getter, const char* class_name);
/// The VM's virtio socket device; errc::unsupported (field "vsock") if it has none.
objc::id socket_device(objc::id vm);
/// Whether this macOS has -stopWithCompletionHandler: (macOS 12).
bool can_stop_at_all(objc::id vm);

}  // namespace vmrt::hv::vz
