// One network of the switch as its ports see it: the forwarding core, the member ports by slot,
// and the ports that received frames during the batch being forwarded (flushed at its end).
#pragma once

#include "net/forwarding.hpp"
#include "net/switch_port.hpp"

#include <string>
#include <vector>

namespace vmrt::net {

struct network_state {
    network_state(network_id id_, std::string name_, const forwarding_config& cfg)
        : id(id_), name(std::move(name_)), core(cfg) {}

    /// Forwards one frame received on `in` (its rx counters are updated here too).
    void forward(switch_port& in, std::span<const std::byte> frame, std::size_t wire_bytes,
                 mac_table::clock::time_point now) {
        in.count_rx(frame, wire_bytes);
        verdict v = core.decide(in.slot(), frame, wire_bytes, now);
        switch (v.what) {
        case verdict::action::drop:
            in.count_drop(v.reason);
            break;
        case verdict::action::filter:
            break;
        case verdict::action::unicast:
            queue_on(*ports[v.out], frame);
            break;
        case verdict::action::flood:
            for (port_slot s : core.members())
                if (s != in.slot()) queue_on(*ports[s], frame);
            break;
        }
    }

    /// Writes out what the batch queued.
    void end_batch() {
        // flush() may close a port whose peer is gone: that takes it out of `ports` but leaves
        // this list alone (the port object outlives the batch; flush() of a closed port is a no-op).
        for (switch_port* p : to_flush) p->flush();
        to_flush.clear();
    }

    void join(switch_port& p) {
        if (ports.size() <= p.slot()) ports.resize(p.slot() + 1, nullptr);
        ports[p.slot()] = &p;
    }
    void leave(switch_port& p) {
        core.remove_port(p.slot());
        ports[p.slot()] = nullptr;
    }

    network_id id;
    std::string name;
    forwarding core;
    std::vector<switch_port*> ports;  ///< by slot; null where no port is
    std::vector<switch_port*> to_flush;

private:
    void queue_on(switch_port& out, std::span<const std::byte> frame) {
        if (out.enqueue(frame)) to_flush.push_back(&out);
    }
};

}  // namespace vmrt::net
