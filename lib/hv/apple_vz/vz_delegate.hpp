// The VZVirtualMachineDelegate of every VM the apple-vz driver runs: an Objective-C class built at
// run time (objc::cpp_class_builder) whose methods forward the framework's callbacks, which arrive
// on the VM's queue, to the VM's strand through its event channel (vz_events.hpp).
//
// VZVirtualMachine.delegate is weak: the instance keeps the delegate alive, clears the VM's
// delegate before releasing the VM, and releases the delegate after the VM, all on the VM's queue.
#pragma once

#include "hv/apple_vz/objc/handle.hpp"
#include "hv/apple_vz/vz_events.hpp"

#include <memory>

namespace vmrt::hv::vz {

/// A new delegate (+1) sending to `events`. Call on any thread.
objc::strong make_vm_delegate(std::shared_ptr<const vz_event_sender> events);

}  // namespace vmrt::hv::vz
