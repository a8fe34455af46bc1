// The simulated Virtualization.framework *runtime* (Linux, tests only): VZVirtualMachine and the
// devices it makes from its configuration — VZVirtioSocketDevice with VZVirtioSocketListener and
// VZVirtioSocketConnection, VZVirtioTraditionalMemoryBalloonDevice, VZNetworkDevice — and a
// simulated guest behind them. (The configuration classes are simulated next to these, in
// tests/sim/vz, by their own files.) vz_sim.hpp's install() defines both sides.
//
// Faithful to Apple where a driver can observe it (VZVirtualMachine.h, VZVirtioSocketDevice.h,
// VZVirtioSocketConnection.h, VZVirtioTraditionalMemoryBalloonDevice.h, VZVirtualMachineDelegate.h
// of the macOS 14/26 SDKs):
//  * Threading. -initWithConfiguration:queue: takes the serial queue the VM "operates on": every
//    message to the VM and to its runtime devices must be sent on that queue, and completion
//    handlers and delegate methods are called on it. Here the queue is an io::serial_queue (its
//    native_handle()); every such message checks io::serial_queue::from_native(queue)->is_current()
//    and records a queue_violation naming the selector when it runs anywhere else (the real
//    framework crashes or misbehaves instead; the record lets a test name the culprit).
//  * States and transitions (VZVirtualMachineState, with Apple's raw values) and the canX
//    properties; a refused transition completes with VZErrorDomain
//    VZErrorInvalidVirtualMachineStateTransition (4), a save of a VM that is not paused with
//    VZErrorInvalidVirtualMachineState (3), as the headers say.
//  * Every completion handler is called later, on the VM's queue, never inside the call.
//  * The delegate is weak (not retained) and its optional methods are sent only when it responds.
//  * Save/restore (macOS 14): save only while Paused; the file records the configuration and a
//    restore with a configuration that does not match fails with VZErrorRestore (12); a restored
//    VM is Paused. Hide the two selectors (sim::scoped_hidden_method) to play macOS 13.
//  * vsock: VZVirtioSocketConnection.fileDescriptor is one end of an AF_UNIX stream socket pair
//    (what Code-Hex/vz found the real one to be, Code-Hex/vz#61), owned by the connection (closed by
//    -close and by dealloc); a connection to a port nobody serves fails with NSPOSIXErrorDomain
//    ECONNRESET, "Connection reset by peer" (what a Mac reports).
//  * targetVirtualMachineMemorySize is rounded down to a MiB and clamped to
//    [+[VZVirtualMachineConfiguration minimumAllowedMemorySize], memorySize].
//
// The guest is driven by the configuration, read through Apple's getters: after a start it writes
// a boot banner and "VMRS_READY <ip>" to the file of the first serial port's
// VZFileSerialPortAttachment (URL, append), so vm_manager's readiness works unchanged; it powers
// off when asked (-requestStopWithError:) unless told to ignore that; it serves echo services on
// vsock ports; tests make it stop by itself, fail, drop a NIC, or connect to a host port.
//
// What is not simulated: a CPU, guest memory, disk and network I/O, the main-queue initializer
// (-initWithConfiguration:), zeroing of weak references (a driver must clear the delegate before
// releasing it, which is correct on a Mac too), KVO.
#pragma once

#include "sim/objc/sim.hpp"
#include "sim/vz/vz_sim.hpp"

#include <vmrt/io/unique_fd.hpp>

#include <boost/system/result.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace vmrt::objc::sim::vz {

/// VZVirtualMachineState (VZVirtualMachine.h), Apple's raw values.
enum class machine_state : NSInteger {
    stopped = 0,
    running = 1,
    paused = 2,
    error = 3,
    starting = 4,
    pausing = 5,
    resuming = 6,
    stopping = 7,   ///< macOS 12
    saving = 8,     ///< macOS 14
    restoring = 9,  ///< macOS 14
};

std::string_view to_string(machine_state s) noexcept;

/// An NSError the simulation hands out.
struct ns_error_spec {
    std::string domain;
    NSInteger code = 0;
    std::string description;
};

/// VZErrorDomain codes the simulation uses (VZError.h).
inline constexpr NSInteger vz_error_internal = 1;
inline constexpr NSInteger vz_error_invalid_state = 3;
inline constexpr NSInteger vz_error_invalid_state_transition = 4;
inline constexpr NSInteger vz_error_save = 11;
inline constexpr NSInteger vz_error_restore = 12;

/// How the simulated framework and guest behave. Read when a VM is created (see
/// scoped_behaviour); machine::set_behaviour changes it for a live VM.
struct guest_behaviour {
    /// How long each transition takes (Starting, Stopping, Pausing/Resuming/Saving/Restoring).
    std::chrono::milliseconds start_time{0};
    std::chrono::milliseconds stop_time{0};
    std::chrono::milliseconds transition_time{0};
    /// start completes with this error (and the VM is in state Error) instead of booting.
    std::optional<ns_error_spec> start_error;
    /// From Running until the console shows the banner and the ready line.
    std::chrono::milliseconds boot_time{5};
    bool write_ready_line = true;
    std::string ready_ip = "192.168.64.2";
    /// -requestStopWithError: makes the guest power off after power_off_time (false: it ignores
    /// the request, as a guest without ACPI handling does).
    bool honour_stop_request = true;
    std::chrono::milliseconds power_off_time{20};
    /// Guest ports with an echo service (a host connectToPort: to another port is refused).
    std::set<std::uint32_t> echo_ports{7};
};

/// While alive, VMs created from now on get `b` (scopes nest; the innermost wins).
class scoped_behaviour {
public:
    explicit scoped_behaviour(guest_behaviour b);
    scoped_behaviour(const scoped_behaviour&) = delete;
    scoped_behaviour& operator=(const scoped_behaviour&) = delete;
    ~scoped_behaviour();

private:
    guest_behaviour previous_;
};

/// While alive, +[VZVirtualMachine isSupported] answers NO (a Mac without virtualization).
class scoped_unsupported {
public:
    scoped_unsupported();
    scoped_unsupported(const scoped_unsupported&) = delete;
    scoped_unsupported& operator=(const scoped_unsupported&) = delete;
    ~scoped_unsupported();
};

/// While alive, the whole simulated framework looks like Virtualization.framework on macOS `major`
/// (11-14): the configuration classes as vz_sim.hpp's scoped_macos_version hides them, and the
/// runtime's later methods - -[VZVirtualMachine stopWithCompletionHandler:], -canStop and
/// -networkDevices (macOS 12), -saveMachineStateToURL:completionHandler: and
/// -restoreMachineStateFromURL:completionHandler: (macOS 14, declared for arm64 only, so hidden too
/// when `apple_silicon` is false).
class scoped_macos {
public:
    explicit scoped_macos(int major, bool apple_silicon = true);
    scoped_macos(const scoped_macos&) = delete;
    scoped_macos& operator=(const scoped_macos&) = delete;
    ~scoped_macos();

private:
    scoped_macos_version configuration_;
    std::vector<std::unique_ptr<scoped_hidden_method>> runtime_;
};

/// A message sent to a VM (or one of its runtime devices) off that VM's queue.
struct queue_violation {
    std::string receiver_class;  ///< "VZVirtualMachine", "VZVirtioSocketDevice", ...
    std::string selector;        ///< "state", "connectToPort:completionHandler:", ...
    std::string queue;           ///< the VM queue's label
};
std::vector<queue_violation> queue_violations();
void clear_queue_violations();

/// Other breaches of the framework's contract (a configuration that does not validate, a VM
/// deallocated off its queue while a queue still existed, a VM that outlived its queue...).
std::vector<std::string> misuses();
void clear_misuses();

/// What the guest saw of a host → guest or guest → host connection attempt.
struct guest_connection {
    io::unique_fd guest_end;  ///< the guest's end of the stream (guest → host, accepted)
    std::uint32_t source_port = 0;
};

namespace detail {
struct machine_core;
}

/// A live simulated VM, as a test sees it: its state, and the guest's own actions. Holding a
/// machine does not keep the VZVirtualMachine object alive.
class machine {
public:
    machine() = default;
    /// The newest live VM whose queue is labelled `queue_label` ("dev.vmrt.vm.web"); empty if none.
    static machine find(std::string_view queue_label);
    /// VMs whose VZVirtualMachine object is alive.
    static std::size_t live_count();

    explicit operator bool() const noexcept { return core_ != nullptr; }
    /// False once the VZVirtualMachine object was deallocated.
    bool alive() const;
    machine_state state() const;
    std::string queue_label() const;
    guest_behaviour behaviour() const;
    void set_behaviour(guest_behaviour b);
    /// -requestStopWithError: calls that succeeded.
    std::size_t stop_requests() const;
    /// The current targetVirtualMachineMemorySize of its first balloon device (0 without one).
    std::uint64_t balloon_target() const;

    // The guest's own actions; each is delivered on the VM's queue, as the framework does, and
    // returns once it was.
    /// The guest powers off by itself: state Stopped, -guestDidStopVirtualMachine:.
    void guest_power_off();
    /// The VM fails: state Error, -virtualMachine:didStopWithError: with `error`.
    void fail(const ns_error_spec& error);
    /// NIC `index` loses its attachment: -virtualMachine:networkDevice:attachmentWasDisconnectedWithError:.
    void disconnect_network(std::size_t index, const ns_error_spec& error);
    /// The guest connects to host port `port` (CID 2): a listener set for that port is asked
    /// (-listener:shouldAcceptNewConnection:fromSocketDevice:); accepted → the guest's end of
    /// the stream; no listener or refused → ECONNRESET.
    boost::system::result<guest_connection> guest_connect(std::uint32_t port);

private:
    explicit machine(std::shared_ptr<detail::machine_core> c) : core_(std::move(c)) {}
    std::shared_ptr<detail::machine_core> core_;
};

/// The save file the simulated -saveMachineStateToURL: writes: the configuration it recorded.
/// Tests read it to check what was saved.
std::optional<std::string> saved_configuration(const std::string& save_file);

}  // namespace vmrt::objc::sim::vz
