// Test harness for the L2 switch: the switch lives on its own io_context thread (as in a real
// program), every call into it is posted there and waited for, and the test thread plays the
// VMs with the other ends of the ports' sockets, with blocking I/O bounded by timeouts.
#pragma once

#include <vmrt/io/unique_fd.hpp>
#include <vmrt/net/l2_switch.hpp>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <chrono>
#include <cstdint>
#include <future>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace vmrt::test {

using frame_bytes = std::vector<std::byte>;

/// An Ethernet frame of `total` bytes from `src` to `dst` (EtherType 0x88b5, local experimental),
/// with `tag` written into the payload so that tests can tell frames apart.
frame_bytes make_frame(const mac_address& dst, const mac_address& src, std::size_t total = 64,
                       std::uint32_t tag = 0);
/// The tag make_frame wrote (0 for a frame too short to hold one).
std::uint32_t frame_tag(const frame_bytes& f);
mac_address test_mac(std::uint8_t last);
inline const mac_address broadcast_mac{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};

/// The VM's side of a port.
class peer {
public:
    peer(io::unique_fd fd, net::port_kind kind) : fd_(std::move(fd)), kind_(kind) {}
    /// Sends one frame (blocking until the socket takes it); false if the switch's end is gone.
    bool send(const frame_bytes& f);
    /// Datagrams: sends without blocking; false if the socket buffer is full (or the switch's end
    /// is gone). Streams: as send().
    bool try_send(const frame_bytes& f);
    /// Sends raw bytes on a stream socket (for broken framing).
    void send_raw(const frame_bytes& bytes);
    /// The next frame, or nothing within `timeout`.
    std::optional<frame_bytes> receive(std::chrono::milliseconds timeout = std::chrono::milliseconds(2000));
    /// Frames received until `quiet` passes without one.
    std::vector<frame_bytes> drain(std::chrono::milliseconds quiet = std::chrono::milliseconds(100));
    /// True once the switch has closed its end (EOF on a stream socket).
    bool hung_up(std::chrono::milliseconds timeout = std::chrono::milliseconds(2000));
    int fd() const noexcept { return fd_.get(); }

private:
    io::unique_fd fd_;
    net::port_kind kind_;
    frame_bytes pending_;     ///< stream bytes received; those before parsed_ are handed out
    std::size_t parsed_ = 0;  ///< (kept until the next read, so that parsing is linear)
    frame_bytes buffer_;      ///< one read
};

class switch_harness {
public:
    explicit switch_harness(net::switch_options opts = {});
    ~switch_harness();

    /// Runs `f(l2_switch&)` on the switch's thread and returns its result (or rethrows).
    template <typename F>
    auto call(F f) {
        std::packaged_task<decltype(f(*sw_))()> task([&] { return f(*sw_); });
        auto result = task.get_future();
        boost::asio::post(ctx_, [&task] { task(); });
        return result.get();
    }

    net::network_id add_network(const std::string& name);
    /// A socketpair port and its peer.
    std::pair<net::port_id, peer> add_port(net::network_id net, net::port_kind kind,
                                           net::port_options opts = {});
    net::port_counters counters(net::port_id port);
    void remove_port(net::port_id port);
    /// Waits until `pred(counters(port))` holds (polling), up to `timeout`; returns whether it did.
    template <typename Pred>
    bool wait_for(net::port_id port, Pred pred,
                  std::chrono::milliseconds timeout = std::chrono::milliseconds(5000)) {
        auto deadline = std::chrono::steady_clock::now() + timeout;
        while (!pred(counters(port))) {
            if (std::chrono::steady_clock::now() > deadline) return false;
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
        }
        return true;
    }

private:
    boost::asio::io_context ctx_;
    std::optional<net::l2_switch> sw_;
    std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_;
    std::promise<void> stopped_;
    std::thread thread_;
};

}  // namespace vmrt::test
