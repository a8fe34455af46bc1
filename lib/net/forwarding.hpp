// The switch's forwarding logic for one network, free of I/O: which ports belong to it, what
// each learned address maps to, and what happens to a frame that arrives on a port. The port
// layer (switch_port) feeds it frames and carries out its verdicts; the unit tests drive it
// directly with frames and timestamps.
#pragma once

#include "net/mac_table.hpp"

#include <vmrt/net/l2_switch.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace vmrt::net {

/// Ethernet header: destination (6), source (6), EtherType (2).
inline constexpr std::size_t ethernet_header_bytes = 14;

inline mac_key mac_at(const std::byte* p) noexcept {
    mac_key k = 0;
    for (int i = 0; i < 6; ++i) k = (k << 8) | static_cast<std::uint8_t>(p[i]);
    return k;
}
inline mac_key to_key(const mac_address& m) noexcept {
    return mac_at(reinterpret_cast<const std::byte*>(m.octets.data()));
}
/// The group bit: multicast, and broadcast (ff:ff:ff:ff:ff:ff) with it.
inline bool is_group(mac_key k) noexcept { return (k >> 40) & 1; }

struct verdict {
    enum class action : std::uint8_t {
        drop,     ///< counted on the ingress port under `reason`
        filter,   ///< not forwarded and not an error: the destination sits behind the ingress port
        unicast,  ///< to `out` only
        flood,    ///< to every port of the network but the ingress one
    };
    action what = action::drop;
    drop_reason reason = drop_reason::count_;
    port_slot out = no_port;
};

struct forwarding_config {
    std::size_t max_frame_bytes = 1514;
    std::size_t mac_table_capacity = 4096;
    mac_table::clock::duration mac_aging = std::chrono::minutes(5);
};

class forwarding {
public:
    explicit forwarding(const forwarding_config& cfg);

    /// A new member port (optionally pinned to one source address); returns its slot.
    port_slot add_port(std::optional<mac_address> pinned = std::nullopt);
    /// The port leaves: its addresses are forgotten and its slot may be reused.
    void remove_port(port_slot port);

    /// What to do with `frame`, received on `in` at `now`; `wire_bytes` is its length on the
    /// wire, which is larger than frame.size() only when the receive buffer cut it short.
    verdict decide(port_slot in, std::span<const std::byte> frame, std::size_t wire_bytes,
                   mac_table::clock::time_point now);
    verdict decide(port_slot in, std::span<const std::byte> frame, mac_table::clock::time_point now) {
        return decide(in, frame, frame.size(), now);
    }

    /// The member ports, in the order they joined (the targets of a flood, minus the ingress).
    const std::vector<port_slot>& members() const noexcept { return members_; }
    mac_table& table() noexcept { return table_; }
    const mac_table& table() const noexcept { return table_; }

private:
    struct slot_info {
        bool used = false;
        bool pinned = false;
        mac_key pinned_mac = 0;
    };
    std::size_t max_frame_bytes_;
    mac_table table_;
    std::vector<slot_info> slots_;
    std::vector<port_slot> members_;
};

}  // namespace vmrt::net
