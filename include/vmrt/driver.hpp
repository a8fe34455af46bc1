// The interface every hypervisor backend implements (lib/hv: fake, qemu, cloud_hypervisor,
// apple_vz). A driver turns a validated spec into a running `vm_instance`; the manager's per-VM
// actor does everything else (state machine, readiness, stop escalation, events), so backends
// stay small and behave alike.
//
// Threading: a driver may be shared by many VMs and is called from their strands concurrently;
// its const members must be thread-safe. A vm_instance is used only on the executor given in its
// launch_context (the VM's strand).
#pragma once

#include <vmrt/capabilities.hpp>
#include <vmrt/devices.hpp>
#include <vmrt/error.hpp>
#include <vmrt/io/process.hpp>
#include <vmrt/vm_spec.hpp>
#include <vmrt/vm_state.hpp>
#include <vmrt/vsock_listener.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/local/stream_protocol.hpp>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace vmrt {

/// What a driver is given to launch one VM.
struct launch_context {
    boost::asio::any_io_executor executor;  ///< the VM's strand; all instance callbacks run here
    std::filesystem::path run_dir;          ///< private per-VM directory (sockets, VMM log)
    std::function<void(std::string)> note;  ///< reports an informational event for this VM
    std::filesystem::path restore_from;     ///< non-empty: resume the VM saved in this snapshot directory
};

/// One launched VM as its backend sees it. Destroying it releases everything the backend started
/// (VMM process, sidecars, sockets), killing what still runs: nothing outlives its owner.
class vm_instance {
public:
    virtual ~vm_instance() = default;

    /// Completes when the VM has ended, with how the VMM process ended. Cancellable (any type):
    /// then throws boost::system::system_error(operation_aborted) and the VM keeps running.
    virtual boost::asio::awaitable<exit_status> wait_exit() = 0;

    /// Presses the ACPI power button: asks the guest to shut down. Completes once the request is
    /// delivered, not when the guest is off (wait_exit tells that).
    virtual boost::asio::awaitable<void> request_powerdown() = 0;

    /// Asks the VMM, through its own API, to end the VM at once (the guest is not consulted):
    /// the step between a power-button timeout and SIGTERM. Returns true once asked, false (the
    /// default) for a backend without such a request, or if the request could not be delivered.
    virtual boost::asio::awaitable<bool> request_vmm_exit();

    /// Asks the VMM process to exit (SIGTERM): the guest is not consulted.
    virtual void terminate() = 0;
    /// Ends the VM at once (SIGKILL to the VMM and its helpers).
    virtual void kill() = 0;

    /// Freezes / thaws the guest's vCPUs. Default: throws vmrt::error(errc::unsupported).
    virtual boost::asio::awaitable<void> pause();
    virtual boost::asio::awaitable<void> resume();

    /// Asks the guest's balloon driver to leave the guest `target_mib` of memory; completes with
    /// the size the guest reports once it has followed. Default: throws errc::unsupported.
    virtual boost::asio::awaitable<std::uint64_t> resize_balloon(std::uint64_t target_mib);

    /// Plugs or unplugs vCPUs until the VM has `count` (at most spec.max_cpus); completes with the
    /// count the VMM reports. Unplugging needs the guest's consent (ACPI eject). Default: throws
    /// errc::unsupported.
    virtual boost::asio::awaitable<std::uint32_t> resize_vcpus(std::uint32_t count);

    /// Pauses the VM and saves its device and memory state into `dir` (an existing, empty
    /// directory); the VM stays paused. Disks are not copied: restore needs them unchanged.
    /// Default: throws errc::unsupported.
    virtual boost::asio::awaitable<void> save_snapshot(const std::filesystem::path& dir);

    /// Grows (or, where the VMM can, shrinks) the guest's RAM to `mib` (at most spec.max_memory_mib);
    /// completes with the size the VMM reports. Default: throws errc::unsupported.
    virtual boost::asio::awaitable<std::uint64_t> resize_memory(std::uint64_t mib);

    /// Hotplug into the running VM; the device lasts until the VM stops (the spec is unchanged).
    /// Defaults: throw errc::unsupported.
    virtual boost::asio::awaitable<plugged_device> add_disk(const disk_spec& disk);
    virtual boost::asio::awaitable<plugged_device> add_network(const nic_spec& nic);
    virtual boost::asio::awaitable<plugged_device> add_shared_dir(const shared_dir_spec& dir);
    /// Unplugs a device by the id the VMM gave it (boot-time ids are backend-specific: "disk1").
    virtual boost::asio::awaitable<void> remove_device(const std::string& id);
    /// The VMM's per-device counters. Default: throws errc::unsupported.
    virtual boost::asio::awaitable<device_counters> counters();

    /// Opens a stream to a port the guest listens on (vsock). Default: throws errc::unsupported.
    virtual boost::asio::awaitable<boost::asio::local::stream_protocol::socket>
    vsock_connect(std::uint32_t port);
    /// Accepts the guest's vsock connections to host port `port` (CID 2) from now on, until the
    /// listener is destroyed or the VM ends. Default: throws errc::unsupported.
    virtual boost::asio::awaitable<vsock_listener> vsock_listen(std::uint32_t port);

    /// The VMM process, for backends that run one (identity = pid + start time).
    virtual std::optional<io::process_identity> vmm_identity() const { return std::nullopt; }
    /// The host end of the spec's control channel (a Unix socket to connect to); empty without one.
    virtual std::filesystem::path control_socket() const { return {}; }
    /// The end of the VMM's own stdout/stderr, for diagnostics.
    virtual std::string vmm_log_tail() const { return {}; }
};

class driver {
public:
    virtual ~driver() = default;

    /// "fake", "qemu", "cloud-hypervisor", "apple-vz".
    virtual std::string_view name() const noexcept = 0;

    /// Per operation: supported, or why not.
    virtual const capability_set& capabilities() const noexcept = 0;

    /// Refuses a spec that this backend cannot honour completely, naming the first field it
    /// cannot honour. Nothing is started. A field is never silently ignored.
    virtual std::optional<spec_error> check_spec(const vm_spec& spec) const = 0;

    /// Starts the VM described by a spec that passed validate_spec and check_spec. Throws
    /// vmrt::error (errc::vmm_start_failed with diagnostics) after releasing everything it started.
    virtual boost::asio::awaitable<std::unique_ptr<vm_instance>> launch(const vm_spec& spec,
                                                                        launch_context ctx) = 0;
};

}  // namespace vmrt
