#include "hv/ch_companions.hpp"

#include <vmrt/net/tap_device.hpp>

namespace vmrt::hv {

std::unique_ptr<ch_companion> start_virtiofsd(boost::asio::any_io_executor, const shared_dir_spec&,
                                              const std::filesystem::path&, const std::filesystem::path&,
                                              const std::filesystem::path&, std::function<void(std::string)>) {
    throw error(make_error_code(errc::unsupported), {.message = "virtiofsd sidecars: not wired yet"});
}

namespace {

// Holds vmrt's fd of the TAP. CH gets its own copy (inherited, or by SCM_RIGHTS); a TAP vmrt
// created is not persistent, so it vanishes when both are closed, i.e. once CH has exited.
struct tap_companion final : ch_companion {
    explicit tap_companion(net::tap_device d) : device(std::move(d)) {}
    net::tap_device device;
};

}  // namespace

std::unique_ptr<ch_companion> open_tap(const nic_spec& nic, const std::optional<std::string>& netns, int& fd) {
    net::tap_options o;
    o.name = nic.tap_name;
    o.netns = netns;
    o.vnet_hdr = true;  // CH's virtio-net expects the virtio header on the TAP (§3 --net)
    auto c = std::make_unique<tap_companion>(net::tap_device::open(o));
    fd = c->device.fd();
    return c;
}

}  // namespace vmrt::hv
