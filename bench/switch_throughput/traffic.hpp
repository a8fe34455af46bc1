// The load generator of bench/switch_throughput, the same for every series (vmrt, vde_switch,
// the ideal relay), so that the series differ only in what sits between the endpoints.
//
// N endpoints (fds), endpoint i has MAC endpoint_mac(i). Warm-up: every endpoint sends one
// broadcast, so a learning switch knows every address before the timed window. Then, for the
// window, endpoint i sends frames to endpoint (i + 1) % N as fast as the kernel accepts them
// (non-blocking sends, batched: sendmmsg for datagrams, ~64 KiB writes of length-prefixed frames
// for streams), while every endpoint's receives are counted (recvmmsg, big reads parsed frame by
// frame). After the window the receivers drain what is still in flight.
//
// Counting, precisely:
//  - offered: frames the kernel accepted from the senders (a send that would block is retried
//    later, so the switch's back-pressure lowers the offered rate instead of counting as loss);
//  - delivered: frames received by the endpoint they were addressed to (in the window for the
//    rate, after the drain for the loss);
//  - loss = 1 - delivered / offered: frames the switch took in and never delivered (dropped);
//  - misdelivered: frames an endpoint received that were not addressed to it (flooding).
#pragma once

#include "cpu_time.hpp"
#include "frames.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <span>
#include <vector>

namespace swbench {

struct traffic_options {
    framing kind = framing::dgram;
    std::size_t frame_bytes = 64;
    std::chrono::duration<double> window{2.0};
    /// Each endpoint broadcasts once before the window; the run fails if the broadcasts are not
    /// flooded to every other endpoint (the ideal relay, which only forwards i -> i+1, skips it).
    bool warm_up = true;
    /// 1: one thread both sends and receives; 2: a sender thread and a receiver thread.
    int threads = 1;
    /// The forwarder's threads (switch, relay, vde_switch process), whose CPU time over the window
    /// is reported.
    std::vector<thread_ref> forwarder;
};

struct traffic_result {
    std::uint64_t offered = 0;
    std::uint64_t delivered_in_window = 0;
    std::uint64_t delivered = 0;
    std::uint64_t misdelivered = 0;
    double window_seconds = 0;
    cpu_times forwarder_cpu;  ///< over the window, summed over opts.forwarder
    cpu_times generator_cpu;  ///< over the window, the generator's threads

    double frames_per_second() const {
        return window_seconds > 0 ? static_cast<double>(delivered_in_window) / window_seconds : 0.0;
    }
    double offered_per_second() const {
        return window_seconds > 0 ? static_cast<double>(offered) / window_seconds : 0.0;
    }
    double loss() const {
        return offered == 0 ? 0.0 : 1.0 - static_cast<double>(delivered) / static_cast<double>(offered);
    }
};

/// Runs warm-up and window on `fds` (made non-blocking; not closed). Returns early, with what
/// was counted so far, once `interrupted` is set. Throws std::runtime_error when the warm-up
/// broadcasts do not arrive or a stream carries a broken length prefix.
traffic_result run_traffic(std::span<const int> fds, const traffic_options& opts,
                           const std::atomic<bool>& interrupted);

}  // namespace swbench
