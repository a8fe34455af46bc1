// One network's MAC address table: which port a source address was last seen on, with aging and
// a hard bound on its size. A switch does this lookup twice per frame, so it is a flat
// open-addressing hash table keyed by the 48-bit address as an integer, with an intrusive
// least-recently-seen list threaded through its entries: learning, lookup, aging and eviction of
// the stalest entry are all O(1) and never allocate after construction.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

namespace vmrt::net {

/// A port's index within its network (small, dense, reused after the port leaves).
using port_slot = std::uint32_t;
inline constexpr port_slot no_port = std::numeric_limits<port_slot>::max();

/// A MAC address as an integer: octet 0 in the most significant of the low 48 bits.
using mac_key = std::uint64_t;

class mac_table {
public:
    using clock = std::chrono::steady_clock;

    /// `capacity` >= 1 entries; an entry not refreshed for `aging` is forgotten.
    mac_table(std::size_t capacity, clock::duration aging);

    /// Records that `mac` was just seen on `port`. A new address takes a free entry or, with the
    /// table full, the stalest one's.
    void learn(mac_key mac, port_slot port, clock::time_point now);
    /// The port `mac` was learned on, or no_port if it is unknown or aged out.
    port_slot lookup(mac_key mac, clock::time_point now);
    /// Drops every entry pointing at `port` (the port left the network).
    void forget_port(port_slot port);
    /// Drops the entries older than the aging time.
    void expire(clock::time_point now);

    std::size_t size() const noexcept { return size_; }
    std::size_t capacity() const noexcept { return entries_.size(); }

private:
    static constexpr std::uint32_t none = std::numeric_limits<std::uint32_t>::max();
    struct entry {
        mac_key mac = 0;
        std::int64_t seen = 0;  ///< steady_clock ticks
        port_slot port = no_port;
        std::uint32_t older = none, newer = none;  ///< the age list (or the free list, via newer)
    };

    std::size_t home(mac_key mac) const noexcept {
        return static_cast<std::size_t>((mac * 0x9E3779B97F4A7C15ull) >> shift_);
    }
    /// Index slot holding `mac`, or the empty slot where it would go.
    std::size_t find_slot(mac_key mac) const noexcept;
    bool expired(const entry& e, std::int64_t now) const noexcept { return now - e.seen > aging_; }
    void unlink(std::uint32_t e) noexcept;
    void push_newest(std::uint32_t e) noexcept;
    /// Removes entry `e` (found at index slot `slot`) from the index and the age list.
    void erase_at(std::size_t slot) noexcept;
    void erase(mac_key mac) noexcept { erase_at(find_slot(mac)); }

    std::vector<entry> entries_;
    std::vector<std::uint32_t> index_;  ///< entry number + 1, 0 = empty; linear probing
    std::size_t mask_ = 0;
    unsigned shift_ = 0;
    std::int64_t aging_ = 0;
    std::size_t size_ = 0;
    std::uint32_t oldest_ = none, newest_ = none, free_ = none;
};

}  // namespace vmrt::net
