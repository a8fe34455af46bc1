// The API state machine of vmrt-fake-cloud-hypervisor: what Cloud Hypervisor's VMM thread answers
// to each REST call, with no I/O (the HTTP side is in fake_cloud_hypervisor.cpp). Every rule
// cites shared/reference/cloud-hypervisor.md: §1.1 status codes, §1.2 the state model, §1.3 the
// endpoint table, §5 snapshot/restore, §6 resize, §7 events.
#pragma once

#include <boost/json.hpp>

#include <functional>
#include <map>
#include <optional>
#include <string>

namespace fake_ch {

namespace json = boost::json;

struct reply {
    int status = 204;
    std::optional<std::string> body;  ///< JSON text; nullopt with a non-204 status: Content-Length: 0
};

/// What the process must do after sending a reply.
enum class follow_up { none, exit_vmm, guest_power_off_soon };

/// (source, event, properties or null), in CH's event-monitor vocabulary (§7).
using event_sink = std::function<void(const std::string&, const std::string&, const json::value&)>;

/// Connects the vhost-user backends of virtio-fs devices (objects with "socket" and "id"), blocking,
/// as CH does when it builds them (§8 "CH side"); returns the error text if one cannot be reached.
/// The I/O lives outside the state machine (vhost_user_frontend.hpp); disconnects follow the events.
using fs_connector = std::function<std::optional<std::string>(const json::array& devices)>;

class vmm {
public:
    vmm(event_sink events, bool no_shutdown);

    /// One routed request: `endpoint` is the path after /api/v1/ ("vm.boot"), `method` GET or
    /// PUT (other methods are refused before this), `body` empty when none was sent.
    reply handle(const std::string& method, const std::string& endpoint, const std::string& body,
                 follow_up& next);
    /// True if `endpoint` is a route CH has (GET-only or PUT-only, §2.3). vm.coredump is one only
    /// when VMRT_FAKE_CH_FEATURES lists guest_debug (the double then acts as a guest_debug build).
    static bool known_route(const std::string& endpoint, bool& is_get);
    /// True if the route takes no body (a non-empty one is 400 ["Bad Request"], §2.1).
    static bool bodyless(const std::string& endpoint);

    /// The guest powered itself off (ACPI S5, e.g. after vm.power-button). Returns true if the
    /// VMM must exit (the default; false with --no-shutdown: only the VM stops, §3.1).
    bool guest_power_off();
    /// CLI mode (§3.1): create and boot from a config given on the command line.
    bool cli_create_and_boot(json::object config, std::string& error);
    /// vmm.shutdown / SIGTERM: the events CH writes before exiting (§3.1 step 2).
    void shutdown_events();

    bool booted() const { return live_; }
    const std::optional<json::object>& config() const { return config_; }

    /// The host side of the VM's vsock device (the process's vsock muxer, vsock_muxer.hpp): run
    /// with the device's config when the VM object is built (boot, restore) or a vsock is hot-added
    /// to a live VM. It returns CH's root error text to fail that request (socket path in use).
    using vsock_attach = std::function<std::optional<std::string>(const json::object& vsock)>;
    void set_vsock_attach(vsock_attach attach) { vsock_attach_ = std::move(attach); }
    /// Called at boot, hot vm.add-fs, reboot and restore; unset: no backend is contacted.
    void set_fs_connector(fs_connector c) { connect_fs_ = std::move(c); }

private:
    reply error(int status, const std::string& action, const std::string& root) const;
    std::string next_id(const std::string& prefix);
    std::string next_bdf();
    void assign_ids();
    bool id_in_use(const std::string& id) const;
    std::string state_name() const;
    reply add_device(const std::string& endpoint, const std::string& body);
    reply boot();
    std::optional<std::string> attach_vsock(const json::object& config) const;
    std::optional<std::string> connect_fs(const json::array& devices) const;
    std::optional<std::string> connect_all_fs() const;

    event_sink events_;
    bool no_shutdown_;
    std::optional<json::object> config_;  // vm_config (§1.2)
    bool live_ = false;                   // the vm object exists (booted or restored)
    bool paused_ = false;
    bool power_off_pending_ = false;  // a power-button press the (paused) guest has not seen yet
    std::map<std::string, unsigned> id_counters_;
    std::map<std::string, std::string> bdfs_;  // id -> bdf of devices of the live VM
    unsigned next_slot_ = 1;
    vsock_attach vsock_attach_;
    fs_connector connect_fs_;
};

}  // namespace fake_ch
