// One VM's actor: owns the backend instance and the serial tail, runs the lifecycle state machine
// and publishes its state changes. Every member except snapshot() runs on the actor's strand.
#pragma once

#include <vmrt/driver.hpp>
#include <vmrt/events.hpp>
#include <vmrt/io/broadcast_channel.hpp>
#include <vmrt/io/file_tail.hpp>
#include <vmrt/io/readiness.hpp>
#include <vmrt/io/unique_fd.hpp>
#include <vmrt/vm_manager.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <variant>

namespace vmrt::detail {

/// What all actors of a manager share: the event stream and its sequence numbers.
struct manager_shared {
    explicit manager_shared(std::size_t capacity) : channel(capacity) {}

    /// Assigns the next sequence number and publishes; the lock keeps sequence order equal to
    /// delivery order across strands.
    void publish(std::string vm, event_kind kind, vm_state state, std::string reason,
                 std::optional<transfer_progress> transfer = std::nullopt);

    std::mutex mutex;
    std::uint64_t sequence = 0;
    io::broadcast_channel<vm_event> channel;
};

/// Where a restored VM comes from: a snapshot directory, and whether its guest was ready then.
struct restore_point {
    std::filesystem::path dir;            ///< empty: a fresh boot
    std::optional<std::string> ready_ip;  ///< set: the guest was Ready ("" = without address)
};

/// The manager-made ends of a VM's switch-port NICs: the VM's ends are closed once the VMM has
/// inherited them; `release` (removing the ports) runs once, when the VM has ended.
struct nic_attachments {
    std::vector<io::unique_fd> vm_ends;
    std::function<void()> release;
    nic_attachments() = default;
    nic_attachments(const nic_attachments&) = delete;
    nic_attachments& operator=(const nic_attachments&) = delete;
    ~nic_attachments() {
        if (release) release();
    }
};

class vm_actor : public std::enable_shared_from_this<vm_actor> {
public:
    using strand_type = boost::asio::strand<boost::asio::any_io_executor>;
    using duration = std::chrono::steady_clock::duration;

    vm_actor(boost::asio::any_io_executor ex, vm_spec spec, std::shared_ptr<driver> drv,
             std::filesystem::path run_dir, const manager_options& opts,
             std::shared_ptr<manager_shared> shared, restore_point restore = {});
    ~vm_actor();

    const strand_type& strand() const noexcept { return strand_; }
    const std::string& name() const noexcept { return spec_.name; }
    /// The spec the VM was started with (never changes: safe from any thread).
    const vm_spec& spec() const noexcept { return spec_; }

    /// Launches the VM; completes when it is Running, or throws vmrt::error (state becomes Failed).
    boost::asio::awaitable<vm_info> start();
    /// Graceful stop with escalation; see vm_manager::async_stop.
    boost::asio::awaitable<stop_outcome> stop(duration deadline);
    /// Immediate stop.
    boost::asio::awaitable<stop_outcome> kill();
    /// Pause (true) or resume (false); returns the state entered.
    boost::asio::awaitable<vm_state> set_paused(bool pause);

    /// Pauses the VM and saves it into `dir` (created if needed, must be empty); see
    /// vm_manager::async_snapshot. Returns the state entered (paused).
    boost::asio::awaitable<vm_state> save_snapshot(std::filesystem::path dir);

    /// Balloon resize; returns the size the guest reports.
    boost::asio::awaitable<std::uint64_t> resize_balloon(std::uint64_t target_mib);
    boost::asio::awaitable<std::uint32_t> resize_vcpus(std::uint32_t count);
    boost::asio::awaitable<std::uint64_t> resize_memory(std::uint64_t mib);

    // Devices (vm_actor_devices.cpp); see vm_manager::async_add_disk and friends.
    boost::asio::awaitable<plugged_device> add_disk(disk_spec disk);
    boost::asio::awaitable<plugged_device> add_network(nic_spec nic);
    boost::asio::awaitable<plugged_device> add_shared_dir(shared_dir_spec dir);
    boost::asio::awaitable<std::string> remove_device(std::string id);
    boost::asio::awaitable<device_counters> counters();
    boost::asio::awaitable<boost::asio::local::stream_protocol::socket> vsock_connect(std::uint32_t port);
    boost::asio::awaitable<vsock_listener> vsock_listen(std::uint32_t port);

    /// Before start(): switch ports the VM's NICs use (kept until the VM ends).
    void attach(std::shared_ptr<nic_attachments> nics) { nics_ = std::move(nics); }

    /// Thread-safe copy of the current information.
    vm_info snapshot() const;

    /// From the manager's destructor: kill whatever runs, without waiting (posted to the strand).
    void abandon();

private:
    boost::asio::awaitable<void> supervise(std::shared_ptr<vm_instance> inst);
    boost::asio::awaitable<void> follow_serial();
    boost::asio::awaitable<bool> wait_for_exit(duration limit);
    boost::asio::awaitable<bool> wait_while_starting(duration limit);

    void on_serial_event(const io::serial_event& ev);
    /// The instance of a running (or paused, if `paused_ok`) VM, or errc::invalid_state naming `what`.
    std::shared_ptr<vm_instance> running_instance(const char* what, bool paused_ok = false) const;
    /// Refuses a device the spec could not have held: validate_spec and the driver's check_spec on
    /// the spec with the device added, reporting only problems of that device (`field`).
    void check_added_device(const vm_spec& with_device, const std::string& field) const;
    /// The spec plus the devices hot-plugged into the running VM (what a new device must not clash with).
    vm_spec spec_with_hot_devices() const;
    void finish(const exit_status& status);
    void set_state(vm_state s, std::string reason);
    void note(std::string text);
    stop_outcome final_outcome() const;
    std::vector<std::string> serial_tail() const;
    void write_state_file() const;

    strand_type strand_;
    vm_spec spec_;
    std::shared_ptr<driver> driver_;
    std::filesystem::path run_dir_;
    manager_options opts_;
    std::shared_ptr<manager_shared> shared_;
    restore_point restore_;

    // Strand-only state.
    vm_state state_ = state::starting{};
    std::shared_ptr<vm_instance> instance_;
    std::optional<io::file_tail> tail_;
    io::readiness_parser parser_;
    std::optional<std::string> ready_ip_;  // readiness of the current boot
    bool ready_seen_while_starting_ = false;
    bool console_seen_ = false;  // the "first console output" note was published
    bool exited_ = false;
    bool stop_requested_ = false;
    bool kill_requested_ = false;
    bool signalled_ = false;                   // we sent SIGTERM/SIGKILL: the stop was forced
    boost::asio::steady_timer state_changed_;  // condition variable: cancelled on every change

    mutable std::mutex snapshot_mutex_;
    vm_info snapshot_;
    std::shared_ptr<nic_attachments> nics_;
    // Devices hot-plugged into the current run, by device id (strand-only; cleared when it ends).
    std::map<std::string, std::variant<disk_spec, nic_spec, shared_dir_spec>> hot_devices_;
};

}  // namespace vmrt::detail
