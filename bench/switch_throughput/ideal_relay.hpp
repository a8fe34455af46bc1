// The ceiling of bench/switch_throughput: what one socketpair hop forwarded by a userspace thread
// costs when there is no switching logic at all. Endpoint i's frames are read by one thread from
// the relay's end of socketpair i and written, unparsed and unexamined, into socketpair (i+1) % N
// (datagrams: recvmmsg/sendmmsg; streams: big reads and writes, prefixes untouched). The relay
// never drops: when an output is full it stops reading the matching input until it drains, so
// its loss is 0 and its rate is what the kernel and the load generator can move.
#pragma once

#include "cpu_time.hpp"
#include "frames.hpp"

#include <vmrt/io/unique_fd.hpp>

#include <atomic>
#include <exception>
#include <thread>
#include <vector>

namespace swbench {

class ideal_relay {
public:
    ideal_relay(framing kind, std::size_t ports);
    ideal_relay(const ideal_relay&) = delete;
    ideal_relay& operator=(const ideal_relay&) = delete;
    ~ideal_relay();  ///< stops the thread

    /// The endpoints' ends, one per port (owned by the relay).
    std::vector<int> endpoints() const;
    /// The relay thread.
    thread_ref forwarder() const;
    /// Stops the relay thread; rethrows what it failed with.
    void stop();

private:
    void run();

    framing kind_;
    std::vector<vmrt::io::unique_fd> endpoint_fds_, relay_fds_;
    std::atomic<bool> stop_{false};
    std::exception_ptr error_;
    std::atomic<pid_t> tid_{0};
    std::thread thread_;
};

}  // namespace swbench
