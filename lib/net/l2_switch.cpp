// The public face of the switch: networks and ports by id. The data path lives in switch_port
// and network_state; this file only creates, finds and closes them.
#include "net/batch_buffers.hpp"
#include "net/network_state.hpp"
#include "net/port_fd.hpp"
#include "net/switch_port.hpp"

#include <vmrt/error.hpp>
#include <vmrt/net/l2_switch.hpp>

#include <boost/asio/strand.hpp>

#include <map>
#include <unordered_map>

namespace vmrt::net {

namespace asio = boost::asio;

std::string_view to_string(drop_reason r) noexcept {
    switch (r) {
    case drop_reason::runt:
        return "runt";
    case drop_reason::oversize:
        return "oversize";
    case drop_reason::spoofed:
        return "spoofed";
    case drop_reason::bad_source:
        return "bad_source";
    case drop_reason::backpressure:
        return "backpressure";
    case drop_reason::malformed:
        return "malformed";
    case drop_reason::count_:
        break;
    }
    return "unknown";
}

struct l2_switch::impl {
    impl(asio::any_io_executor ex, switch_options o)
        : strand(asio::make_strand(std::move(ex))), opts(o),
          bufs(std::make_shared<batch_buffers>(o.max_frame_bytes)) {}

    const std::shared_ptr<network_state>& network(network_id net) {
        auto it = networks.find(net);
        if (it == networks.end())
            throw error(errc::not_found, {.message = "no switch network with id " + std::to_string(net)});
        return it->second;
    }

    void close_ports_if(auto&& pred) {
        for (auto it = ports.begin(); it != ports.end();) {
            if (pred(*it->second)) {
                it->second->close();
                it = ports.erase(it);
            } else {
                ++it;
            }
        }
    }

    asio::any_io_executor strand;
    switch_options opts;
    std::shared_ptr<batch_buffers> bufs;
    std::map<network_id, std::shared_ptr<network_state>> networks;
    std::unordered_map<port_id, std::shared_ptr<switch_port>> ports;
    std::unordered_map<port_id, network_id> port_network;
    network_id next_network = 1;
    port_id next_port = 1;
};

namespace {

void validate(const switch_options& o) {
    auto refuse = [](std::string why) {
        throw error(errc::invalid_spec, {.message = "switch_options: " + why});
    };
    if (o.max_frame_bytes < 60 || o.max_frame_bytes > 65535)
        refuse("max_frame_bytes must be within 60..65535, not " + std::to_string(o.max_frame_bytes));
    if (o.mac_table_capacity == 0 || o.mac_table_capacity > (1u << 24))
        refuse("mac_table_capacity must be within 1..16777216");
    if (o.mac_aging <= std::chrono::steady_clock::duration::zero()) refuse("mac_aging must be positive");
    if (o.port_queue_bytes < o.max_frame_bytes + 4)
        refuse("port_queue_bytes must hold at least one frame (max_frame_bytes + 4)");
}

}  // namespace

l2_switch::l2_switch(asio::any_io_executor ex, switch_options opts) {
    validate(opts);
    impl_ = std::make_shared<impl>(std::move(ex), opts);
}

l2_switch::~l2_switch() {
    // The ports' coroutines hold the ports (and through them their networks) until they have
    // seen the close; nothing they touch goes away before.
    for (auto& [id, port] : impl_->ports) port->close();
}

network_id l2_switch::add_network(std::string name) {
    if (name.empty()) throw error(errc::invalid_spec, {.message = "a switch network needs a name"});
    for (auto& [id, net] : impl_->networks)
        if (net->name == name)
            throw error(errc::already_exists, {.message = "switch network '" + name + "' already exists"});
    network_id id = impl_->next_network++;
    forwarding_config cfg{.max_frame_bytes = impl_->opts.max_frame_bytes,
                          .mac_table_capacity = impl_->opts.mac_table_capacity,
                          .mac_aging = impl_->opts.mac_aging};
    impl_->networks.emplace(id, std::make_shared<network_state>(id, std::move(name), cfg));
    return id;
}

void l2_switch::remove_network(network_id net) {
    impl_->network(net);  // throws for an unknown id
    impl_->close_ports_if([&](const switch_port& p) { return impl_->port_network.at(p.id()) == net; });
    std::erase_if(impl_->port_network, [&](const auto& kv) { return kv.second == net; });
    impl_->networks.erase(net);
}

port_id l2_switch::add_port(network_id net, io::unique_fd fd, port_kind kind, port_options opts) {
    std::shared_ptr<network_state> state = impl_->network(net);
    if (opts.pinned_mac && opts.pinned_mac->is_multicast())
        throw error(errc::invalid_spec,
                    {.message = "switch port '" + opts.name + "': a pinned MAC must be unicast, not " +
                                opts.pinned_mac->to_string()});
    bool seqpacket = prepare_port_fd(fd.get(), kind, opts.name);
    port_id id = impl_->next_port++;
    auto port = std::make_shared<switch_port>(impl_->strand, id, kind, seqpacket, std::move(fd),
                                              std::move(opts), std::move(state), impl_->bufs, impl_->opts);
    impl_->ports.emplace(id, port);
    impl_->port_network.emplace(id, net);
    port->start();
    return id;
}

std::pair<port_id, io::unique_fd> l2_switch::add_socketpair_port(network_id net, port_kind kind,
                                                                 port_options opts) {
    impl_->network(net);
    if (kind == port_kind::tap)
        throw error(errc::invalid_spec, {.message = "a socketpair port is dgram or stream, not tap"});
    auto [ours, theirs] = make_port_socketpair(kind);
    port_id id = add_port(net, std::move(ours), kind, std::move(opts));
    return {id, std::move(theirs)};
}

void l2_switch::remove_port(port_id port) {
    auto it = impl_->ports.find(port);
    if (it == impl_->ports.end())
        throw error(errc::not_found, {.message = "no switch port with id " + std::to_string(port)});
    it->second->close();
    impl_->ports.erase(it);
    impl_->port_network.erase(port);
}

std::optional<port_counters> l2_switch::counters(port_id port) const {
    auto it = impl_->ports.find(port);
    if (it == impl_->ports.end()) return std::nullopt;
    return it->second->counters();
}

std::size_t l2_switch::mac_table_size(network_id net) const {
    auto it = impl_->networks.find(net);
    if (it == impl_->networks.end()) return 0;
    mac_table& table = it->second->core.table();
    table.expire(std::chrono::steady_clock::now());
    return table.size();
}

}  // namespace vmrt::net
