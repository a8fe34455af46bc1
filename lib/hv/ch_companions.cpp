#include "hv/ch_companions.hpp"

#include "hv/virtiofsd_sidecar.hpp"

#include <vmrt/net/tap_device.hpp>

namespace vmrt::hv {

namespace {

// A virtiofsd that is restarted whenever it exits while the VM lives: it serves one vhost-user
// connection only, and CH reconnects after every guest reboot (§8, #4750). The socket stays bound
// by vmrt across restarts, so CH's reconnect waits in the backlog instead of failing.
struct virtiofsd_companion final : ch_companion {
    virtiofsd_companion(boost::asio::any_io_executor ex, virtiofsd_options o,
                        std::function<void(std::string)> note)
        : sidecar(std::move(ex), std::move(o), std::move(note)) {
        sidecar.arm();
    }
    void vm_ending() override { sidecar.disarm(); }
    virtiofsd_sidecar sidecar;
};

}  // namespace

std::unique_ptr<ch_companion> start_virtiofsd(boost::asio::any_io_executor ex, const shared_dir_spec& dir,
                                              const std::filesystem::path& socket,
                                              const std::filesystem::path& binary,
                                              const std::filesystem::path& log_file,
                                              std::function<void(std::string)> note) {
    virtiofsd_options o;
    o.binary = binary;
    o.shared_dir = dir.host_path;
    o.socket = socket;
    o.read_only = dir.read_only;
    o.log_file = log_file;
    o.tag = dir.tag;
    if (auto why = virtiofsd_sidecar::cannot_serve(o))
        throw error(make_error_code(errc::vmm_start_failed),
                    {.message = "shared directory " + dir.tag + ": " + *why});
    return std::make_unique<virtiofsd_companion>(std::move(ex), std::move(o), std::move(note));
}

namespace {

// Holds vmrt's fd of the TAP. CH gets its own copy (inherited, or by SCM_RIGHTS); a TAP vmrt
// created is not persistent, so it vanishes when both are closed, i.e. once CH has exited.
struct tap_companion final : ch_companion {
    explicit tap_companion(net::tap_device d) : device(std::move(d)) {}
    net::tap_device device;
};

}  // namespace

std::unique_ptr<ch_companion> open_tap(const nic_spec& nic, const std::optional<std::string>& netns,
                                       int& fd) {
    net::tap_options o;
    o.name = nic.tap_name;
    o.netns = netns;
    o.vnet_hdr = true;  // CH's virtio-net expects the virtio header on the TAP (§3 --net)
    auto c = std::make_unique<tap_companion>(net::tap_device::open(o));
    fd = c->device.fd();
    return c;
}

}  // namespace vmrt::hv
