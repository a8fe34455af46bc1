// One VM of the apple-vz driver: its serial queue, its VZVirtualMachine and delegate (touched on the
// queue only), the strand-side state (how it ended) and the control-channel relay. See
// vz_driver.hpp for the threading model.
#pragma once

#include "hv/apple_vz/objc/handle.hpp"
#include "hv/apple_vz/vz_driver.hpp"
#include "hv/apple_vz/vz_events.hpp"
#include "hv/apple_vz/vz_state.hpp"

#include <vmrt/detail/unique_function.hpp>
#include <vmrt/driver.hpp>
#include <vmrt/io/dispatch_queue.hpp>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace vmrt::hv::vz {

/// A VM's Objective-C objects. Only ever touched on the VM's queue.
struct vz_machine {
    objc::strong vm;        ///< VZVirtualMachine
    objc::strong delegate;  ///< VZVirtualMachineDelegate (the VM holds it weakly)
    struct listening {
        std::uint64_t id = 0;
        objc::strong delegate;  ///< VZVirtioSocketListenerDelegate (the listener holds it weakly)
    };
    std::map<std::uint32_t, listening> listeners;  ///< by host port
    std::uint64_t next_listener = 1;
};

/// The VM's queue for as long as it exists, for what may outlive the instance (vsock listeners).
class vz_queue_ref {
public:
    explicit vz_queue_ref(io::serial_queue& q) : queue_(&q) {}
    /// Submits fn unless the queue is gone; whether it did.
    bool submit(vmrt::detail::unique_function<void()> fn);
    /// The queue is about to be destroyed: nothing is submitted from now on.
    void close();

private:
    std::mutex mutex_;
    io::serial_queue* queue_;
};

class vz_control_relay;

class vz_instance final : public vm_instance {
public:
    struct identity {
        /// A machine identifier made for this boot only (saved with a snapshot, so that the restored
        /// VM is the same machine); empty otherwise.
        std::vector<std::uint8_t> fresh_machine_identifier;
    };

    /// A queue labelled "dev.vmrt.vm.<name>" and the event channel; no VZ object yet.
    vz_instance(boost::asio::any_io_executor ex, const std::string& name, vz_driver_options opts,
                std::function<void(std::string)> note);
    ~vz_instance() override;

    // The launch steps (vz_driver.cpp), in this order.
    /// -initWithConfiguration:queue: and -setDelegate:, on the queue.
    boost::asio::awaitable<void> create(objc::strong configuration);
    /// -startWithCompletionHandler:; an NSError is errc::vmm_start_failed.
    boost::asio::awaitable<void> start();
    /// -restoreMachineStateFromURL:completionHandler: then -resumeWithCompletionHandler: (macOS 14).
    boost::asio::awaitable<void> restore(std::filesystem::path save_file);
    /// targetVirtualMachineMemorySize of the balloon device; the size VZ reports, in bytes.
    boost::asio::awaitable<std::uint64_t> set_balloon_target(std::uint64_t bytes);
    void set_identity(identity id) { identity_ = std::move(id); }
    void set_control_relay(std::unique_ptr<vz_control_relay> relay);

    boost::asio::awaitable<exit_status> wait_exit() override;
    boost::asio::awaitable<void> request_powerdown() override;
    boost::asio::awaitable<bool> request_vmm_exit() override;
    void terminate() override;
    void kill() override;
    boost::asio::awaitable<void> pause() override;
    boost::asio::awaitable<void> resume() override;
    boost::asio::awaitable<std::uint64_t> resize_balloon(std::uint64_t target_mib) override;
    boost::asio::awaitable<void> save_snapshot(const std::filesystem::path& dir) override;
    boost::asio::awaitable<boost::asio::local::stream_protocol::socket>
    vsock_connect(std::uint32_t port) override;
    boost::asio::awaitable<vsock_listener> vsock_listen(std::uint32_t port) override;
    std::filesystem::path control_socket() const override;
    /// The NSError the VM stopped with, if it did.
    std::string vmm_log_tail() const override;

    /// The VZ state now (read on the queue).
    boost::asio::awaitable<machine_state> current_state();

    struct strand_state;

private:
    using completion_send = std::function<void(objc::id vm, objc::id block)>;
    /// Sends a message with a `void (^)(NSError *)` completion handler on the queue
    /// (`send(vm, block)`, which may throw to refuse) and waits for the handler. An NSError becomes
    /// objc::to_error(`what`), with `code` in place of its own when given. Callers pass named locals
    /// (GCC 12 destroys owning temporaries inside a co_await expression twice).
    boost::asio::awaitable<void> complete_on_queue(std::string what, completion_send send,
                                                   std::optional<error_code> code = std::nullopt);
    /// -stopWithCompletionHandler: from a synchronous call (terminate, kill): the end arrives as an event.
    void stop_now(int signal);

    boost::asio::any_io_executor ex_;
    vz_driver_options opts_;
    std::function<void(std::string)> note_;
    std::unique_ptr<io::serial_queue> queue_;
    std::shared_ptr<vz_queue_ref> queue_ref_;
    std::shared_ptr<vz_machine> machine_;
    std::shared_ptr<const vz_event_sender> events_;
    std::shared_ptr<strand_state> state_;
    identity identity_;
    std::unique_ptr<vz_control_relay> control_;
};

/// The save file of a snapshot directory, and the file beside it holding a fresh machine identifier.
inline constexpr const char* save_file_name = "machine.vzvmsave";
inline constexpr const char* machine_identifier_file_name = "machine-identifier";

/// Whether this framework can save and restore VMs (macOS 14 on Apple silicon).
bool save_restore_available();

}  // namespace vmrt::hv::vz
