// The simulated VZ runtime's shared model (private to tests/sim/vz): one machine_core per
// VZVirtualMachine, the guest's thread, the runtime devices' payloads, and the checks every
// message makes.
#pragma once

#include "vz_sim_machine.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

namespace vmrt::objc::sim::vz::detail {

/// The guest's "CPU": one thread running an io_context, for the guest's timers and its vsock
/// services. Stopped and joined when the VM is deallocated, so nothing of the guest outlives it.
class guest_thread {
public:
    guest_thread();
    guest_thread(const guest_thread&) = delete;
    guest_thread& operator=(const guest_thread&) = delete;
    ~guest_thread();

    boost::asio::io_context& context() noexcept { return ctx_; }
    /// Runs fn on the guest thread after `delay`.
    void after(std::chrono::milliseconds delay, std::function<void()> fn);
    /// Stops the thread (pending timers never fire) and joins it. Idempotent.
    void stop();

private:
    boost::asio::io_context ctx_;
    std::unique_ptr<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_;
    std::thread thread_;
    std::once_flag stopped_;
};

struct machine_core : std::enable_shared_from_this<machine_core> {
    // Set by -initWithConfiguration:queue:, then constant.
    void* queue_handle = nullptr;
    std::string queue_label;
    std::uint64_t memory_size = 0;
    std::filesystem::path serial_file;  ///< the first serial port's file attachment (empty: none)
    bool serial_append = true;
    std::string fingerprint;  ///< what a save file records of the configuration
    /// The guest's end of the console port named "org.vmrt.control" (a duplicate of the
    /// VZFileHandleSerialPortAttachment's descriptor): the guest echoes what arrives there.
    io::unique_fd control_port;

    mutable std::mutex mutex;  ///< guards everything below
    id self = nullptr;         ///< the VZVirtualMachine (not retained); nil once deallocated
    machine_state state = machine_state::stopped;
    id delegate = nullptr;  ///< weak, as Apple declares it: not retained
    guest_behaviour behaviour;
    std::size_t stop_requests = 0;
    bool console_written = false;  ///< this guest printed its banner and ready line
    std::uint64_t boot = 0;        ///< incremented per start: a timer of an earlier boot does nothing
    strong configuration;          ///< the VM's copy
    strong socket_devices;         ///< NSArray of VZVirtioSocketDevice
    strong balloon_devices;        ///< NSArray of VZVirtioTraditionalMemoryBalloonDevice
    strong network_devices;        ///< NSArray of VZNetworkDevice

    std::unique_ptr<guest_thread> guest = std::make_unique<guest_thread>();

    /// Runs fn on the VM's queue (as the framework delivers its callbacks), if the queue still
    /// exists; fn runs only while the VM object is alive.
    void on_queue(std::function<void(machine_core&)> fn);
    /// Records a queue_violation unless the calling thread runs the VM's queue.
    void check_queue(const char* receiver_class, const char* selector) const;
    /// The VM's delegate if it responds to `selector` (read under the mutex).
    id delegate_for(SEL selector) const;
};

/// Records a violation (thread-safe).
void record_violation(queue_violation v);
void record_misuse(std::string what);

/// The behaviour new VMs get.
guest_behaviour current_behaviour();

/// The live machines (for machine::find).
void register_machine(const std::shared_ptr<machine_core>& core);

/// An NSError (+1) for `e`, with an underlying error when given.
strong make_error(const ns_error_spec& e, id underlying = nullptr);
/// Calls a `void (^)(NSError *)` completion block with `error` (nil: success).
void complete(id block, id error);

// --- runtime devices (vz_sim_socket.cpp, vz_sim_devices.cpp) --------------------------------

/// Defines VZSocketDevice/VZVirtioSocketDevice, VZVirtioSocketListener, VZVirtioSocketConnection.
void install_socket_classes();
/// Defines VZMemoryBalloonDevice/VZVirtioTraditionalMemoryBalloonDevice and VZNetworkDevice.
void install_device_classes();

/// A new VZVirtioSocketDevice of `core`'s VM (+1).
strong make_socket_device(const std::shared_ptr<machine_core>& core);
/// A new VZVirtioTraditionalMemoryBalloonDevice (+1) whose target starts at memorySize.
strong make_balloon_device(const std::shared_ptr<machine_core>& core, std::uint64_t minimum);
/// A new VZNetworkDevice (+1) with the configuration's attachment.
strong make_network_device(const std::shared_ptr<machine_core>& core, id attachment);
/// Drops a network device's attachment (what the framework does before telling the delegate).
void detach_network_device(id device);
/// The current target of a balloon device.
std::uint64_t balloon_target_of(id device);

/// Starts an echo service on the guest's end of a stream (on the guest thread; it ends with the VM).
void serve_echo(machine_core& c, io::unique_fd guest_end);

/// The guest connects to host port `port` through `device` (on the VM's queue).
boost::system::result<guest_connection> guest_connects(machine_core& core, id device, std::uint32_t port);

// Process-wide records of the simulation; never destroyed (objects may be released during static
// destruction).
struct records {
    std::mutex mutex;
    std::vector<queue_violation> violations;
    std::vector<std::string> misuses;
    std::vector<std::weak_ptr<machine_core>> machines;
    guest_behaviour behaviour;
};
records& rec();

/// The first line of a simulated save file.
inline constexpr const char* save_magic = "vmrt simulated VZ machine state 1";

void set_state(machine_core& c, machine_state s);
/// The VM's delegate hears -guestDidStopVirtualMachine: / -virtualMachine:didStopWithError:.
void tell_delegate_guest_stopped(machine_core& c);
void tell_delegate_error(machine_core& c, id error);

/// False inside a scoped_unsupported: VZVirtualMachine.isSupported answers NO.
extern std::atomic<bool> virtualization_supported;

}  // namespace vmrt::objc::sim::vz::detail
