// The Apple Virtualization.framework backend ("apple-vz"): a VM is a VZVirtualMachine inside vmrt's
// own process, built from the VZ plan (vz_plan.hpp) by build_vz_configuration
// (vz_configuration.hpp) and driven through the vmrt::objc layer.
//
// Threading (Apple, VZVirtualMachine.h: "Every operation on the virtual machine must be done on that
// queue. The callbacks and delegate methods are invoked on that queue."): each VM gets its own
// serial dispatch queue ("dev.vmrt.vm.<name>", io::serial_queue). Every message to the VM and to its
// runtime devices is sent from a function running on that queue (io::run_on); completion handlers
// are blocks that fill an io::foreign_completion the VM's strand awaits; the delegate's callbacks
// reach the strand through a datagram socket pair (vz_events.hpp). The strand never touches a VZ
// object, and no VZ object is touched off its queue.
//
// Lifecycle: launch = plan -> queue -> configuration -> -initWithConfiguration:queue: on the queue
// -> delegate -> -startWithCompletionHandler: (or, for a restore, -restoreMachineStateFromURL: and
// -resumeWithCompletionHandler:, macOS 14). Stop: -requestStopWithError: (the power button; checked
// with canRequestStop), then -stopWithCompletionHandler: (request_vmm_exit, terminate, kill). The
// VM's end is reported by the delegate (guest stop, error) or by vmrt's own stop's completion, and
// becomes the instance's exit_status: a guest stop is exit code 0, an error exit code 1 (the NSError
// is vmm_log_tail()), a stop of vmrt's is "killed by SIGTERM" (request_vmm_exit, terminate) or
// "SIGKILL" (kill) — the in-process equivalents of the VMM-process vocabulary vm_actor speaks.
//
// Verification: no Mac is available to this project. The driver is compiled on Linux against the
// project's simulated Objective-C runtime and Virtualization.framework (tests/sim) and tested there
// (tests/component/vz_driver_test.cpp); it has never run on macOS.
#pragma once

#include <vmrt/driver.hpp>

#include <chrono>
#include <memory>

namespace vmrt::hv {

struct vz_driver_options {
    /// How long -stopWithCompletionHandler: may take before request_vmm_exit gives up on it (the
    /// manager then escalates: terminate, kill).
    std::chrono::steady_clock::duration stop_timeout = std::chrono::seconds(10);
    /// How long -[VZVirtioSocketDevice connectToPort:completionHandler:] may take (Apple's header:
    /// "Does nothing if the guest does not listen on that port" - a handler may never come).
    std::chrono::steady_clock::duration vsock_connect_timeout = std::chrono::seconds(10);
};

/// The apple-vz driver: capabilities vz::vz_capabilities(), check_spec by the VZ plan and the running
/// framework's availability (errc::unsupported naming the field and the macOS version).
std::shared_ptr<driver> make_apple_vz_driver(vz_driver_options opts = {});

}  // namespace vmrt::hv
