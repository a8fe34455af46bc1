#include "net/mac_table.hpp"

#include <bit>
#include <stdexcept>

namespace vmrt::net {

mac_table::mac_table(std::size_t capacity, clock::duration aging)
    : entries_(capacity), aging_(aging.count()) {
    if (capacity == 0 || capacity >= none) throw std::invalid_argument("mac_table: capacity out of range");
    // At most half full: probe sequences stay a slot or two long.
    std::size_t slots = std::bit_ceil(std::max<std::size_t>(capacity * 2, 8));
    index_.assign(slots, 0);
    mask_ = slots - 1;
    shift_ = 64 - static_cast<unsigned>(std::countr_zero(slots));
    for (std::uint32_t i = 0; i < capacity; ++i) entries_[i].newer = i + 1 < capacity ? i + 1 : none;
    free_ = 0;
}

std::size_t mac_table::find_slot(mac_key mac) const noexcept {
    std::size_t slot = home(mac);
    while (index_[slot] != 0 && entries_[index_[slot] - 1].mac != mac) slot = (slot + 1) & mask_;
    return slot;
}

void mac_table::unlink(std::uint32_t e) noexcept {
    entry& x = entries_[e];
    (x.older == none ? oldest_ : entries_[x.older].newer) = x.newer;
    (x.newer == none ? newest_ : entries_[x.newer].older) = x.older;
}

void mac_table::push_newest(std::uint32_t e) noexcept {
    entry& x = entries_[e];
    x.older = newest_;
    x.newer = none;
    (newest_ == none ? oldest_ : entries_[newest_].newer) = e;
    newest_ = e;
}

void mac_table::erase_at(std::size_t slot) noexcept {
    if (index_[slot] == 0) return;
    std::uint32_t e = index_[slot] - 1;
    unlink(e);
    entries_[e].newer = free_;
    free_ = e;
    --size_;
    // Backward-shift deletion keeps every probe sequence unbroken without tombstones.
    std::size_t hole = slot;
    for (std::size_t next = (hole + 1) & mask_; index_[next] != 0; next = (next + 1) & mask_) {
        std::size_t want = home(entries_[index_[next] - 1].mac);
        // Move the entry into the hole unless its home lies cyclically in (hole, next].
        bool stays = hole <= next ? (want > hole && want <= next) : (want > hole || want <= next);
        if (!stays) {
            index_[hole] = index_[next];
            hole = next;
        }
    }
    index_[hole] = 0;
}

void mac_table::learn(mac_key mac, port_slot port, clock::time_point now) {
    std::int64_t t = now.time_since_epoch().count();
    std::size_t slot = find_slot(mac);
    if (index_[slot] != 0) {
        std::uint32_t e = index_[slot] - 1;
        entry& x = entries_[e];
        x.port = port;
        x.seen = t;
        if (e != newest_) {
            unlink(e);
            push_newest(e);
        }
        return;
    }
    if (free_ == none) {
        // Full: the least recently seen address makes room. Erasing may shift index slots, so
        // the new address's slot is searched again afterwards.
        erase(entries_[oldest_].mac);
        slot = find_slot(mac);
    }
    std::uint32_t e = free_;
    free_ = entries_[e].newer;
    entries_[e].mac = mac;
    entries_[e].port = port;
    entries_[e].seen = t;
    push_newest(e);
    index_[slot] = e + 1;
    ++size_;
}

port_slot mac_table::lookup(mac_key mac, clock::time_point now) {
    std::size_t slot = find_slot(mac);
    if (index_[slot] == 0) return no_port;
    const entry& x = entries_[index_[slot] - 1];
    if (expired(x, now.time_since_epoch().count())) {
        erase_at(slot);
        return no_port;
    }
    return x.port;
}

void mac_table::forget_port(port_slot port) {
    for (std::uint32_t e = oldest_; e != none;) {
        std::uint32_t next = entries_[e].newer;
        if (entries_[e].port == port) erase(entries_[e].mac);
        e = next;
    }
}

void mac_table::expire(clock::time_point now) {
    std::int64_t t = now.time_since_epoch().count();
    // The age list is ordered by last sighting: stop at the first entry still fresh.
    while (oldest_ != none && expired(entries_[oldest_], t)) erase(entries_[oldest_].mac);
}

}  // namespace vmrt::net
