// vmrt's userspace Ethernet switch: isolated networks of ports (datagram socketpairs, stream
// socketpairs with 4-byte big-endian length framing, TAP devices), MAC learning with aging and a
// bounded table, flooding of broadcast / multicast / unknown unicast, no hairpin, optional
// per-port source-MAC pinning, jumbo frames, and per-port counters with drops by reason.
//
// A VM's NIC is one end of a socketpair: `add_socketpair_port` keeps the switch's end and returns
// the other, which goes into `nic_spec::fd` (nic_kind::fd_dgram / fd_stream). QEMU's
// `-netdev dgram`/`stream` and Apple VZ's file-handle attachment speak exactly these framings.
// Frames are re-framed between kinds as they cross the switch.
//
// Forwarding policy is a real switch's: a port whose peer is slow (its socket buffer and its
// bounded transmit queue full) loses frames, counted as drop_reason::backpressure; it never
// stalls the other ports. A frame larger than switch_options::max_frame_bytes is counted and
// dropped, never truncated.
//
// Threading: every port runs as a coroutine on one strand of the given executor, so forwarding
// takes no locks. The l2_switch object itself is not thread-safe: call its members from one
// thread at a time (typically the io_context's). Destroying it closes every port.
#pragma once

#include <vmrt/io/unique_fd.hpp>
#include <vmrt/vm_spec.hpp>

#include <boost/asio/any_io_executor.hpp>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <utility>

namespace vmrt::net {

/// How a port's fd carries frames.
enum class port_kind {
    dgram,   ///< one Ethernet frame per datagram (SOCK_DGRAM / SOCK_SEQPACKET)
    stream,  ///< SOCK_STREAM: each frame prefixed by its length, 4 bytes big-endian
    tap,     ///< a TAP device fd (IFF_TAP | IFF_NO_PI): one frame per read/write
};

struct switch_options {
    /// Largest Ethernet frame (header + payload, no FCS) a port accepts: 1514 for a 1500-byte
    /// MTU, up to 65535; jumbo frames (9000-byte MTU) need 9014.
    std::size_t max_frame_bytes = 1514;
    /// MAC table entries per network. When full, the stalest entry is evicted: a flood of random
    /// source MACs cannot grow memory without bound.
    std::size_t mac_table_capacity = 4096;
    /// A learned address is forgotten after this long without a frame from it.
    std::chrono::steady_clock::duration mac_aging = std::chrono::minutes(5);
    /// Per port: frames queued for a peer that is not reading, in bytes, before new ones are dropped.
    std::size_t port_queue_bytes = 4 << 20;
};

struct port_options {
    std::string name;  ///< shown in counters and errors
    /// Anti-spoofing: only frames whose source MAC is this one are accepted from the port.
    std::optional<mac_address> pinned_mac;
    /// Non-empty: a pcap file (LINKTYPE_ETHERNET) of every frame the port receives and sends.
    std::filesystem::path pcap;
};

enum class drop_reason : std::size_t {
    runt,          ///< shorter than an Ethernet header (14 bytes)
    oversize,      ///< longer than max_frame_bytes (never truncated)
    spoofed,       ///< source MAC is not the port's pinned MAC
    bad_source,    ///< multicast/broadcast source MAC
    backpressure,  ///< the destination port's queue was full
    /// Stream framing broken (a zero length prefix, or one above 65535 that no Ethernet frame can
    /// have): the port is closed. A prefix above max_frame_bytes but <= 65535 is an oversize frame,
    /// skipped with the stream kept in sync.
    malformed,
    count_,
};

std::string_view to_string(drop_reason) noexcept;

struct port_counters {
    std::uint64_t rx_frames = 0, rx_bytes = 0;  ///< received from the port's peer (dropped ones included)
    std::uint64_t tx_frames = 0, tx_bytes = 0;  ///< delivered to the port's peer
    /// rx-side reasons count frames the port sent in; backpressure counts frames meant for it.
    std::array<std::uint64_t, static_cast<std::size_t>(drop_reason::count_)> drops{};
    std::uint64_t dropped(drop_reason r) const noexcept { return drops[static_cast<std::size_t>(r)]; }
};

using network_id = std::uint32_t;
using port_id = std::uint64_t;

class l2_switch {
public:
    explicit l2_switch(boost::asio::any_io_executor ex, switch_options opts = {});
    l2_switch(const l2_switch&) = delete;
    l2_switch& operator=(const l2_switch&) = delete;
    ~l2_switch();

    /// A new, empty network; frames never cross networks. Throws vmrt::error(errc::already_exists)
    /// for a name in use, errc::invalid_spec for an empty one.
    network_id add_network(std::string name);
    /// Removes a network and closes its ports. errc::not_found for an unknown id.
    void remove_network(network_id net);

    /// Adds a port on `fd`, which the switch takes over (and makes non-blocking). Traffic flows at
    /// once. Throws vmrt::error: errc::not_found (network), errc::invalid_spec (fd type does not
    /// match `kind`).
    port_id add_port(network_id net, io::unique_fd fd, port_kind kind, port_options opts = {});
    /// A socketpair port (kind dgram or stream): the switch keeps one end and returns the other,
    /// for the VM (nic_spec::fd with nic_kind::fd_dgram / fd_stream). Socket buffers are sized
    /// for bursts of frames.
    std::pair<port_id, io::unique_fd> add_socketpair_port(network_id net, port_kind kind,
                                                          port_options opts = {});
    /// Closes a port while traffic flows: frames queued for it are dropped, its MAC entries are
    /// forgotten. errc::not_found for an unknown id.
    void remove_port(port_id port);

    /// Counters of a live port, or nothing for an unknown one.
    std::optional<port_counters> counters(port_id port) const;
    /// Learned addresses in a network, aged-out ones excluded (for tests and diagnostics); 0 for an
    /// unknown network.
    std::size_t mac_table_size(network_id net) const;

    struct impl;

private:
    std::shared_ptr<impl> impl_;
};

}  // namespace vmrt::net
