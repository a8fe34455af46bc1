// One running Cloud Hypervisor VM: the VMM process, its REST API (over the socket vmrt bound
// before CH started), its event monitor (a pipe), and what serves its devices (virtiofsd
// sidecars, TAP devices). Every operation is an API call; state changes arrive as events, never
// by polling vm.info. Facts from shared/reference/cloud-hypervisor.md.
#pragma once

#include "hv/ch_api.hpp"
#include "hv/ch_events.hpp"

#include <vmrt/driver.hpp>
#include <vmrt/io/process.hpp>
#include <vmrt/io/unique_fd.hpp>

#include <filesystem>
#include <functional>
#include <memory>
#include <vector>

namespace vmrt::hv {

/// Something a CH VM owns besides the VMM (a virtiofsd sidecar, a TAP device). `vm_ending` is
/// called when the VM is about to end on purpose, so that a sidecar stops restarting.
struct ch_companion {
    virtual ~ch_companion() = default;
    virtual void vm_ending() {}
};

struct ch_instance_parts {
    io::process vmm;
    ch::api_client api;
    io::unique_fd events;  ///< read end of the event-monitor pipe
    std::vector<std::unique_ptr<ch_companion>> companions;
    vm_spec spec;
    std::filesystem::path vmm_log;
    std::filesystem::path api_socket;  ///< removed with the instance (CH never learns its path)
    std::function<void(std::string)> note;
    /// Opens a TAP for a hot-plugged NIC (in the spec's netns); returns its fd owner.
    std::function<std::unique_ptr<ch_companion>(const nic_spec&, int& fd)> open_tap;
    /// Starts a virtiofsd for a hot-plugged share; returns its owner and the socket CH connects to.
    std::function<std::unique_ptr<ch_companion>(const shared_dir_spec&, std::filesystem::path& socket)>
        start_share;
};

class ch_instance final : public vm_instance {
public:
    explicit ch_instance(ch_instance_parts parts);
    ~ch_instance() override;

    boost::asio::awaitable<exit_status> wait_exit() override;
    boost::asio::awaitable<void> request_powerdown() override;
    boost::asio::awaitable<bool> request_vmm_exit() override;
    void terminate() override;
    void kill() override;
    boost::asio::awaitable<void> pause() override;
    boost::asio::awaitable<void> resume() override;
    boost::asio::awaitable<std::uint64_t> resize_balloon(std::uint64_t target_mib) override;
    boost::asio::awaitable<std::uint32_t> resize_vcpus(std::uint32_t count) override;
    boost::asio::awaitable<std::uint64_t> resize_memory(std::uint64_t mib) override;
    boost::asio::awaitable<void> save_snapshot(const std::filesystem::path& dir) override;
    boost::asio::awaitable<plugged_device> add_disk(const disk_spec& disk) override;
    boost::asio::awaitable<plugged_device> add_network(const nic_spec& nic) override;
    boost::asio::awaitable<plugged_device> add_shared_dir(const shared_dir_spec& dir) override;
    boost::asio::awaitable<void> remove_device(const std::string& id) override;
    boost::asio::awaitable<device_counters> counters() override;
    /// Hybrid vsock (§4): `CONNECT <port>` on the VM's vsock socket, retried while the guest is
    /// not (yet) listening, up to 10 s.
    boost::asio::awaitable<boost::asio::local::stream_protocol::socket>
    vsock_connect(std::uint32_t port) override;
    /// Hybrid vsock (§4): listens on `<socket>_<port>`, where CH connects for the guest.
    boost::asio::awaitable<vsock_listener> vsock_listen(std::uint32_t port) override;

    std::optional<io::process_identity> vmm_identity() const override { return p_.vmm.identity(); }
    std::string vmm_log_tail() const override;

private:
    void ending();
    plugged_device plugged(const std::optional<ch::pci_device_info>& info, std::string id);

    ch_instance_parts p_;
    std::shared_ptr<struct ch_event_reader> reader_;
    std::map<std::string, std::unique_ptr<ch_companion>> hotplugged_;  // device id -> what serves it
    unsigned hotplug_counter_ = 0;
};

/// Reads CH's event monitor until EOF and hands each event to `on_event` (on `ex`). The reader
/// owns the pipe; destroying the returned handle closes it, which ends the loop.
std::shared_ptr<struct ch_event_reader>
start_event_reader(boost::asio::any_io_executor ex, io::unique_fd pipe,
                   std::function<void(const ch::monitor_event&)> on_event);

}  // namespace vmrt::hv
