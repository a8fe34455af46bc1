// The manager's L2 switch: NICs that name a switch network get a socketpair port on it when their
// VM starts, and lose it when the VM ends.
#include "vm_actor.hpp"

#include <vmrt/vm_manager.hpp>

#include <boost/asio/post.hpp>

namespace vmrt {

net::l2_switch& vm_manager::network_switch() {
    std::lock_guard lock(mutex_);
    if (!switch_) switch_ = std::make_shared<net::l2_switch>(ex_);
    return *switch_;
}

std::optional<net::network_id> vm_manager::switch_network(const std::string& name) const {
    std::lock_guard lock(mutex_);
    auto it = switch_networks_.find(name);
    if (it == switch_networks_.end()) return std::nullopt;
    return it->second;
}

// Called with mutex_ held. Fills nic.fd of every switch NIC with the VM's end of a new port.
std::shared_ptr<detail::nic_attachments> vm_manager::attach_switch_ports(vm_spec& spec) {
    bool wanted = false;
    for (auto& nic : spec.networks) wanted = wanted || !nic.switch_network.empty();
    if (!wanted) return nullptr;
    if (!switch_) switch_ = std::make_shared<net::l2_switch>(ex_);

    auto nics = std::make_shared<detail::nic_attachments>();
    std::vector<net::port_id> ports;
    // Ports made so far are removed again if a later one fails: the attachments own them.
    std::weak_ptr<net::l2_switch> weak = switch_;
    auto release = [weak, ex = ex_](std::vector<net::port_id> ids) {
        // On the manager's executor: the switch is used from there only.
        boost::asio::post(ex, [weak, ids = std::move(ids)] {
            auto sw = weak.lock();
            if (!sw) return;  // the manager, and its switch with every port, is gone
            for (auto id : ids) {
                try {
                    sw->remove_port(id);
                } catch (const error&) {
                    // already gone with its network
                }
            }
        });
    };
    try {
        for (std::size_t i = 0; i < spec.networks.size(); ++i) {
            auto& nic = spec.networks[i];
            if (nic.switch_network.empty()) continue;
            auto net_it = switch_networks_.find(nic.switch_network);
            if (net_it == switch_networks_.end())
                net_it =
                    switch_networks_.emplace(nic.switch_network, switch_->add_network(nic.switch_network))
                        .first;
            net::port_options o;
            o.name = spec.name + "/net" + std::to_string(i);
            auto [port, vm_end] = switch_->add_socketpair_port(
                net_it->second,
                nic.kind == nic_kind::fd_dgram ? net::port_kind::dgram : net::port_kind::stream, o);
            ports.push_back(port);
            nic.fd = vm_end.get();
            nics->vm_ends.push_back(std::move(vm_end));
        }
    } catch (...) {
        release(std::move(ports));
        throw;
    }
    nics->release = [release, ports]() mutable {
        release(std::move(ports));
    };
    return nics;
}

}  // namespace vmrt
