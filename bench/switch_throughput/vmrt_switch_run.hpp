// vmrt's l2_switch as bench/switch_throughput runs it: one network, one socketpair port per
// endpoint, the switch on an io_context of its own thread (the switch is single-strand).
#pragma once

#include "cpu_time.hpp"
#include "frames.hpp"

#include <vmrt/net/l2_switch.hpp>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

namespace swbench {

/// Drops summed over the switch's ports, by reason.
struct switch_drops {
    std::array<std::uint64_t, static_cast<std::size_t>(vmrt::net::drop_reason::count_)> by_reason{};
    std::uint64_t total() const {
        std::uint64_t t = 0;
        for (auto d : by_reason) t += d;
        return t;
    }
};

class vmrt_switch_run {
public:
    vmrt_switch_run(framing kind, std::size_t ports);
    vmrt_switch_run(const vmrt_switch_run&) = delete;
    vmrt_switch_run& operator=(const vmrt_switch_run&) = delete;
    ~vmrt_switch_run();  ///< destroys the switch on its thread and joins it

    /// The VM-side ends of the ports (owned here).
    std::vector<int> endpoints() const;
    /// The thread running the switch.
    thread_ref forwarder() const;
    /// Reads every port's counters on the switch's thread.
    switch_drops drops();

private:
    boost::asio::io_context ctx_;
    boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
    std::unique_ptr<vmrt::net::l2_switch> switch_;
    std::vector<vmrt::net::port_id> ports_;
    std::vector<vmrt::io::unique_fd> endpoints_;
    std::atomic<pid_t> tid_{0};
    std::thread thread_;
};

}  // namespace swbench
