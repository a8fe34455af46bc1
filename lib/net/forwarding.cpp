#include "net/forwarding.hpp"

#include <algorithm>

namespace vmrt::net {

forwarding::forwarding(const forwarding_config& cfg)
    : max_frame_bytes_(cfg.max_frame_bytes), table_(cfg.mac_table_capacity, cfg.mac_aging) {}

port_slot forwarding::add_port(std::optional<mac_address> pinned) {
    auto free = std::find_if(slots_.begin(), slots_.end(), [](const slot_info& s) { return !s.used; });
    if (free == slots_.end()) free = slots_.insert(slots_.end(), slot_info{});
    free->used = true;
    free->pinned = pinned.has_value();
    free->pinned_mac = pinned ? to_key(*pinned) : 0;
    auto slot = static_cast<port_slot>(free - slots_.begin());
    members_.push_back(slot);
    return slot;
}

void forwarding::remove_port(port_slot port) {
    if (port >= slots_.size() || !slots_[port].used) return;
    slots_[port] = slot_info{};
    std::erase(members_, port);
    table_.forget_port(port);
}

verdict forwarding::decide(port_slot in, std::span<const std::byte> frame, std::size_t wire_bytes,
                           mac_table::clock::time_point now) {
    using enum verdict::action;
    if (wire_bytes > max_frame_bytes_ || frame.size() < wire_bytes)
        return {.what = drop, .reason = drop_reason::oversize};
    if (wire_bytes < ethernet_header_bytes) return {.what = drop, .reason = drop_reason::runt};
    mac_key dst = mac_at(frame.data());
    mac_key src = mac_at(frame.data() + 6);
    const slot_info& from = slots_[in];
    if (from.pinned && src != from.pinned_mac) return {.what = drop, .reason = drop_reason::spoofed};
    // A group address is never a station's own: learning it would send that group's traffic to
    // one port.
    if (is_group(src)) return {.what = drop, .reason = drop_reason::bad_source};
    table_.learn(src, in, now);
    if (is_group(dst)) return {.what = flood};
    port_slot out = table_.lookup(dst, now);
    if (out == no_port) return {.what = flood};
    if (out == in) return {.what = filter};
    return {.what = unicast, .out = out};
}

}  // namespace vmrt::net
