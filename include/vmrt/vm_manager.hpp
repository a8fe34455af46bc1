// vm_manager: starts, supervises and stops many VMs on one Asio executor.
//
// Each VM is an actor: a coroutine on its own strand that owns the backend instance (and thus the
// VMM process and its sidecars), follows the serial console for readiness, and publishes every
// state change, with its reason, on the manager's ordered event stream. Stopping one VM never
// blocks another; no operation polls.
//
// Asynchronous operations take any completion token (use_awaitable, deferred, a callback,
// use_future). On Boost 1.81 there is no default token: pass one. Every operation supports
// cancellation of its wait (any type); cancelling a stop does not undo what was already sent to
// the VM.
//
// Thread safety: all members may be called from any thread. Handlers run on their associated
// executor (or the manager's executor).
#pragma once

#include <vmrt/capabilities.hpp>
#include <vmrt/detail/async_op.hpp>
#include <vmrt/driver.hpp>
#include <vmrt/events.hpp>
#include <vmrt/image/oci_pull.hpp>
#include <vmrt/io/broadcast_channel.hpp>
#include <vmrt/net/hybrid_vsock.hpp>
#include <vmrt/net/l2_switch.hpp>
#include <vmrt/vm_spec.hpp>
#include <vmrt/vm_state.hpp>
#include <vmrt/vsock_listener.hpp>

#include <boost/asio/async_result.hpp>

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace vmrt {

/// A snapshot of one VM.
struct vm_info {
    std::string name;
    std::string namespace_;
    std::string backend;
    vm_state state;
    std::optional<io::process_identity> vmm;  ///< the VMM process, when the backend runs one
    std::filesystem::path serial_log;
    std::filesystem::path run_dir;
    /// The host end of the spec's control channel (connect a Unix stream socket); empty without one.
    std::filesystem::path control_socket;
    /// After a failed operation (the completion's vm_info): what went wrong, with the spec field
    /// or the VMM's output when known.
    diagnostics diag;
};

struct manager_options {
    /// Where per-VM run directories live (<state_dir>/<namespace>/<name>). Empty: $VMRT_STATE_DIR,
    /// else $XDG_RUNTIME_DIR/vmrt, else /run/vmrt as root, else /tmp/vmrt-<uid>.
    std::filesystem::path state_dir;
    /// After SIGTERM, how long the VMM gets before SIGKILL.
    std::chrono::steady_clock::duration term_grace = std::chrono::seconds(5);
    /// The OCI image store of async_pull_image. Empty: <state_dir>/images.
    std::filesystem::path image_store;
    /// After SIGKILL, how long to wait for the exit before reporting errc::stop_failed.
    std::chrono::steady_clock::duration kill_grace = std::chrono::seconds(5);
    /// Console lines kept for Failed{serial_tail}.
    std::size_t serial_tail_lines = 20;
    /// Per-subscriber event queue bound (older events are dropped for a subscriber that lags).
    std::size_t event_queue_capacity = 65536;
};

namespace detail {
class vm_actor;
struct manager_shared;
struct nic_attachments;
}  // namespace detail

class vm_manager {
public:
    using executor_type = boost::asio::any_io_executor;

    /// A manager with the backends available on this machine (the fake backend when its guest
    /// program is found: $VMRT_FAKE_GUEST, next to this executable, or in PATH).
    explicit vm_manager(executor_type ex, manager_options opts = {});
    vm_manager(const vm_manager&) = delete;
    vm_manager& operator=(const vm_manager&) = delete;
    /// Kills every VM that is still running (SIGKILL, no grace): call async_shutdown first for
    /// a graceful end.
    ~vm_manager();

    executor_type get_executor() const noexcept { return ex_; }
    const manager_options& options() const noexcept { return opts_; }

    /// Registers (or replaces) the driver used for `kind`.
    void set_driver(backend_kind kind, std::shared_ptr<driver> d);
    /// The driver a spec with this backend would use, or nullptr with the reason.
    std::shared_ptr<driver> find_driver(backend_kind kind, std::string* why_not = nullptr) const;
    /// What the backend can do, per operation; errc::unsupported if there is no such backend.
    boost::system::result<capability_set> capabilities(backend_kind kind) const;

    /// Validates the spec, checks it against the backend, launches the VM. Completes once the VM
    /// is Running (the VMM is up; readiness follows as an event), or with the error: invalid_spec,
    /// unsupported, already_exists, vmm_start_failed. Signature: void(error_code, vm_info).
    template <typename CompletionToken>
    auto async_start(vm_spec spec, CompletionToken&& token) {
        return boost::asio::async_initiate<CompletionToken, void(error_code, vm_info)>(
            [this](auto h, vm_spec s) { start_impl(std::move(s), std::move(h)); }, token, std::move(spec));
    }

    /// Graceful stop: power button → wait up to `deadline` → SIGTERM → term_grace → SIGKILL.
    /// A paused VM is resumed first (a frozen guest cannot see the button). Completes with how the
    /// VM ended. Signature: void(error_code, stop_outcome).
    template <typename CompletionToken>
    auto async_stop(std::string name, std::chrono::steady_clock::duration deadline, CompletionToken&& token) {
        return boost::asio::async_initiate<CompletionToken, void(error_code, stop_outcome)>(
            [this](auto h, std::string n, auto d) { stop_impl(std::move(n), d, std::move(h)); }, token,
            std::move(name), deadline);
    }

    /// Immediate stop (SIGKILL). Signature: void(error_code, stop_outcome).
    template <typename CompletionToken>
    auto async_kill(std::string name, CompletionToken&& token) {
        return boost::asio::async_initiate<CompletionToken, void(error_code, stop_outcome)>(
            [this](auto h, std::string n) { kill_impl(std::move(n), std::move(h)); }, token, std::move(name));
    }

    /// Freezes / thaws a running VM. Signature: void(error_code, vm_state) (the state entered).
    template <typename CompletionToken>
    auto async_pause(std::string name, CompletionToken&& token) {
        return boost::asio::async_initiate<CompletionToken, void(error_code, vm_state)>(
            [this](auto h, std::string n) { pause_impl(std::move(n), true, std::move(h)); }, token,
            std::move(name));
    }
    template <typename CompletionToken>
    auto async_resume(std::string name, CompletionToken&& token) {
        return boost::asio::async_initiate<CompletionToken, void(error_code, vm_state)>(
            [this](auto h, std::string n) { pause_impl(std::move(n), false, std::move(h)); }, token,
            std::move(name));
    }

    /// Resizes a running VM's memory balloon so that the guest keeps `target_mib`. Completes with
    /// the size the guest reports once its driver has followed. errc::unsupported without a
    /// balloon device or on a backend that cannot. Signature: void(error_code, std::uint64_t).
    template <typename CompletionToken>
    auto async_resize_balloon(std::string name, std::uint64_t target_mib, CompletionToken&& token) {
        return boost::asio::async_initiate<CompletionToken, void(error_code, std::uint64_t)>(
            [this](auto h, std::string n, std::uint64_t t) { balloon_impl(std::move(n), t, std::move(h)); },
            token, std::move(name), target_mib);
    }

    /// Plugs or unplugs vCPUs of a running VM until it has `count` (1 to spec.max_cpus). Completes
    /// with the count the VMM reports; an unplug completes once the guest has released the vCPU.
    /// errc::unsupported without max_cpus, for a backend that cannot, or to unplug a boot vCPU
    /// (QEMU). Signature: void(error_code, std::uint32_t).
    template <typename CompletionToken>
    auto async_resize_vcpus(std::string name, std::uint32_t count, CompletionToken&& token) {
        return boost::asio::async_initiate<CompletionToken, void(error_code, std::uint32_t)>(
            [this](auto h, std::string n, std::uint32_t c) { vcpus_impl(std::move(n), c, std::move(h)); },
            token, std::move(name), count);
    }

    /// Grows (or, where the VMM can, shrinks) a running VM's RAM to `mib`, between memory_mib and
    /// spec.max_memory_mib. Completes with the RAM size the VMM reports. errc::unsupported for a
    /// backend that cannot. Signature: void(error_code, std::uint64_t).
    template <typename CompletionToken>
    auto async_resize_memory(std::string name, std::uint64_t mib, CompletionToken&& token) {
        return boost::asio::async_initiate<CompletionToken, void(error_code, std::uint64_t)>(
            [this](auto h, std::string n, std::uint64_t m) { memory_impl(std::move(n), m, std::move(h)); },
            token, std::move(name), mib);
    }

    /// Hot-plugs a disk, a NIC or a shared directory into a running VM (validated like the spec's
    /// own). The device lasts until the VM stops; the spec is not changed. Completes with the
    /// device, whose id async_remove_device takes. Signature: void(error_code, plugged_device).
    template <typename CompletionToken>
    auto async_add_disk(std::string name, disk_spec disk, CompletionToken&& token) {
        return boost::asio::async_initiate<CompletionToken, void(error_code, plugged_device)>(
            [this](auto h, std::string n, disk_spec d) {
                add_disk_impl(std::move(n), std::move(d), std::move(h));
            },
            token, std::move(name), std::move(disk));
    }
    template <typename CompletionToken>
    auto async_add_network(std::string name, nic_spec nic, CompletionToken&& token) {
        return boost::asio::async_initiate<CompletionToken, void(error_code, plugged_device)>(
            [this](auto h, std::string n, nic_spec d) {
                add_nic_impl(std::move(n), std::move(d), std::move(h));
            },
            token, std::move(name), std::move(nic));
    }
    template <typename CompletionToken>
    auto async_add_shared_dir(std::string name, shared_dir_spec dir, CompletionToken&& token) {
        return boost::asio::async_initiate<CompletionToken, void(error_code, plugged_device)>(
            [this](auto h, std::string n, shared_dir_spec d) {
                add_share_impl(std::move(n), std::move(d), std::move(h));
            },
            token, std::move(name), std::move(dir));
    }
    /// Unplugs a device (boot-time or hot-plugged) by its id; completes with that id once the VMM
    /// has accepted the removal. Signature: void(error_code, std::string).
    template <typename CompletionToken>
    auto async_remove_device(std::string name, std::string id, CompletionToken&& token) {
        return boost::asio::async_initiate<CompletionToken, void(error_code, std::string)>(
            [this](auto h, std::string n, std::string i) {
                remove_device_impl(std::move(n), std::move(i), std::move(h));
            },
            token, std::move(name), std::move(id));
    }
    /// The VMM's per-device counters (bytes and operations per disk and NIC).
    /// Signature: void(error_code, device_counters).
    template <typename CompletionToken>
    auto async_counters(std::string name, CompletionToken&& token) {
        return boost::asio::async_initiate<CompletionToken, void(error_code, device_counters)>(
            [this](auto h, std::string n) { counters_impl(std::move(n), std::move(h)); }, token,
            std::move(name));
    }
    /// Opens a stream to `port` of a running VM's guest over vsock (it must listen there). The
    /// socket uses the manager's executor. Signature: void(error_code, stream_protocol::socket).
    template <typename CompletionToken>
    auto async_vsock_connect(std::string name, std::uint32_t port, CompletionToken&& token) {
        return boost::asio::async_initiate<CompletionToken,
                                           void(error_code, boost::asio::local::stream_protocol::socket)>(
            [this](auto h, std::string n, std::uint32_t p) { vsock_impl(std::move(n), p, std::move(h)); },
            token, std::move(name), port);
    }

    /// Pulls an image into the manager's image store (options().image_store; see image::pull_image),
    /// publishing its progress on the event stream: event_kind::transfer events for "image:<ref>",
    /// one when each blob starts, at every tenth of it, and when it is done (or found already there).
    /// Signature: void(error_code, image::pulled_image).
    template <typename CompletionToken>
    auto async_pull_image(std::string reference, image::pull_options options, CompletionToken&& token) {
        return boost::asio::async_initiate<CompletionToken, void(error_code, image::pulled_image)>(
            [this](auto h, std::string r, image::pull_options o) {
                pull_impl(std::move(r), std::move(o), std::move(h));
            },
            token, std::move(reference), std::move(options));
    }

    /// Accepts the guest's vsock connections to host port `port` (CID 2) of a running or paused
    /// VM, whatever carries them (Cloud Hypervisor: hybrid vsock; Apple VZ: a socket listener on
    /// the VM's vsock device). Completes once listening; each connection then comes from
    /// listener.accept(), as a stream on the awaiting coroutine's executor. Listening ends when the
    /// listener is destroyed or the VM ends. errc::not_found for an unknown VM, errc::invalid_state
    /// when it is not running, errc::unsupported without a vsock device or on a backend without
    /// vsock. Signature: void(error_code, vsock_listener).
    template <typename CompletionToken>
    auto async_vsock_listen(std::string name, std::uint32_t port, CompletionToken&& token) {
        return boost::asio::async_initiate<CompletionToken, void(error_code, vsock_listener)>(
            [this](auto h, std::string n, std::uint32_t p) {
                vsock_listen_impl(std::move(n), p, std::move(h));
            },
            token, std::move(name), port);
    }

    /// Cloud Hypervisor only, and usable before the VM starts: listens on the hybrid vsock path
    /// `<spec.vsock.socket>_<port>` the VMM connects to (a guest that connects while it boots finds
    /// the listener there already). async_vsock_listen is the backend-neutral call.
    /// errc::not_found for an unknown VM, errc::unsupported without a vsock socket path; the
    /// listener's errors otherwise.
    net::hybrid_vsock_listener vsock_listen(const std::string& name, std::uint32_t port);

    /// Pauses the VM and saves its machine state, with its spec, into `dir` (created if needed,
    /// must be empty); the VM stays paused (resume, stop or kill it next). Disks are not copied:
    /// a restore needs them unchanged. Signature: void(error_code, vm_state).
    template <typename CompletionToken>
    auto async_snapshot(std::string name, std::filesystem::path dir, CompletionToken&& token) {
        return boost::asio::async_initiate<CompletionToken, void(error_code, vm_state)>(
            [this](auto h, std::string n, std::filesystem::path d) {
                snapshot_impl(std::move(n), std::move(d), std::move(h));
            },
            token, std::move(name), std::move(dir));
    }

    /// Starts the VM saved in `dir` by async_snapshot (under its saved name, which must not be
    /// active); the guest continues where it was saved. Signature: void(error_code, vm_info).
    template <typename CompletionToken>
    auto async_restore(std::filesystem::path dir, CompletionToken&& token) {
        return boost::asio::async_initiate<CompletionToken, void(error_code, vm_info)>(
            [this](auto h, std::filesystem::path d) { restore_impl(std::move(d), std::move(h)); }, token,
            std::move(dir));
    }

    /// Waits until every named VM is Ready. Fails fast with errc::vmm_crashed when one fails,
    /// errc::invalid_state when one stops, errc::not_found for an unknown name, errc::timeout at
    /// the deadline. Signature: void(error_code, std::vector<vm_info>).
    template <typename CompletionToken>
    auto async_wait_ready(std::vector<std::string> names, std::chrono::steady_clock::duration deadline,
                          CompletionToken&& token) {
        return boost::asio::async_initiate<CompletionToken, void(error_code, std::vector<vm_info>)>(
            [this](auto h, std::vector<std::string> n, auto d) {
                wait_ready_impl(std::move(n), d, std::move(h));
            },
            token, std::move(names), deadline);
    }

    /// Gracefully stops every VM at once (each with `deadline`). Signature: void(error_code, std::size_t)
    /// (the number of VMs that were stopped).
    template <typename CompletionToken>
    auto async_shutdown(std::chrono::steady_clock::duration deadline, CompletionToken&& token) {
        return boost::asio::async_initiate<CompletionToken, void(error_code, std::size_t)>(
            [this](auto h, auto d) { shutdown_impl(d, std::move(h)); }, token, deadline);
    }

    /// The manager's L2 switch, created on first use on the manager's executor. A NIC with
    /// nic_spec::switch_network gets a port on that network (created on demand) when its VM starts;
    /// the port is removed when the VM ends. Add ports of your own (TAP, sockets) and read counters
    /// here. The switch is not thread-safe: use it, and start VMs with switch ports, from the
    /// thread that runs the io_context.
    net::l2_switch& network_switch();
    /// The id of the switch network the manager made for NICs naming it, if any.
    std::optional<net::network_id> switch_network(const std::string& name) const;

    /// Current state, or nothing for an unknown VM.
    std::optional<vm_state> state(const std::string& name) const;
    std::optional<vm_info> info(const std::string& name) const;
    /// Every VM the manager knows, sorted by name, with fresh states.
    std::vector<vm_info> list() const;
    /// Forgets a Stopped or Failed VM and deletes its run directory. errc::not_found,
    /// errc::invalid_state while it is active.
    error_code remove(const std::string& name);

    /// Every event published from now on, in order. Handlers of the subscription run on `ex`.
    io::subscription<vm_event> subscribe(executor_type ex) const;
    io::subscription<vm_event> subscribe() const { return subscribe(ex_); }

private:
    using info_handler = boost::asio::any_completion_handler<void(error_code, vm_info)>;
    using stop_handler = boost::asio::any_completion_handler<void(error_code, stop_outcome)>;
    using state_handler = boost::asio::any_completion_handler<void(error_code, vm_state)>;
    using infos_handler = boost::asio::any_completion_handler<void(error_code, std::vector<vm_info>)>;
    using count_handler = boost::asio::any_completion_handler<void(error_code, std::size_t)>;

    void start_impl(vm_spec spec, info_handler h);
    void stop_impl(std::string name, std::chrono::steady_clock::duration deadline, stop_handler h);
    void kill_impl(std::string name, stop_handler h);
    void snapshot_impl(std::string name, std::filesystem::path dir, state_handler h);
    void restore_impl(std::filesystem::path dir, info_handler h);
    void start_vm(vm_spec spec, std::filesystem::path restore_dir, std::optional<std::string> ready_ip,
                  info_handler h);
    void balloon_impl(std::string name, std::uint64_t target_mib,
                      boost::asio::any_completion_handler<void(error_code, std::uint64_t)> h);
    void vcpus_impl(std::string name, std::uint32_t count,
                    boost::asio::any_completion_handler<void(error_code, std::uint32_t)> h);
    void pause_impl(std::string name, bool pause, state_handler h);
    using device_handler = boost::asio::any_completion_handler<void(error_code, plugged_device)>;
    void memory_impl(std::string name, std::uint64_t mib,
                     boost::asio::any_completion_handler<void(error_code, std::uint64_t)> h);
    void add_disk_impl(std::string name, disk_spec disk, device_handler h);
    void add_nic_impl(std::string name, nic_spec nic, device_handler h);
    void add_share_impl(std::string name, shared_dir_spec dir, device_handler h);
    void remove_device_impl(std::string name, std::string id,
                            boost::asio::any_completion_handler<void(error_code, std::string)> h);
    void pull_impl(std::string reference, image::pull_options options,
                   boost::asio::any_completion_handler<void(error_code, image::pulled_image)> h);
    void counters_impl(std::string name,
                       boost::asio::any_completion_handler<void(error_code, device_counters)> h);
    void vsock_impl(
        std::string name, std::uint32_t port,
        boost::asio::any_completion_handler<void(error_code, boost::asio::local::stream_protocol::socket)> h);
    void vsock_listen_impl(std::string name, std::uint32_t port,
                           boost::asio::any_completion_handler<void(error_code, vsock_listener)> h);
    void wait_ready_impl(std::vector<std::string> names, std::chrono::steady_clock::duration deadline,
                         infos_handler h);
    void shutdown_impl(std::chrono::steady_clock::duration deadline, count_handler h);

    std::shared_ptr<detail::vm_actor> find(const std::string& name) const;
    std::shared_ptr<detail::nic_attachments> attach_switch_ports(vm_spec& spec);

    executor_type ex_;
    manager_options opts_;
    std::shared_ptr<detail::manager_shared> shared_;
    mutable std::mutex mutex_;  // guards drivers_ and actors_; never held across a wait
    std::map<backend_kind, std::shared_ptr<driver>> drivers_;
    std::map<std::string, std::shared_ptr<detail::vm_actor>> actors_;
    std::shared_ptr<net::l2_switch> switch_;                  // created on first use
    std::map<std::string, net::network_id> switch_networks_;  // made for NICs, by name
};

}  // namespace vmrt
