// One port of the switch: its fd, its coroutines, its transmit queue and counters.
//
// Each port runs two coroutines on the switch's strand. The receiver waits for readability,
// then reads frames in batches (recvmmsg for datagram ports, 256 KiB chunks for stream ports,
// one read per frame for TAP) and hands each to its network, which queues it on the destination
// ports; at the end of the batch every destination that got frames is flushed with non-blocking
// batched writes. A destination whose peer is not reading keeps its frames queued (bounded by
// port_queue_bytes, beyond which they are dropped as backpressure) and its writer coroutine waits
// for writability and drains the queue, while every other port carries on.
//
// Lifetime: the coroutines own the port (shared_ptr) and the port owns its network's state, so
// nothing they touch is freed under them. close() takes the port out of its network (no frame
// reaches it afterwards), closes the fd and wakes both coroutines, which then end.
#pragma once

#include "net/batch_buffers.hpp"
#include "net/frame_queue.hpp"
#include "net/mac_table.hpp"
#include "net/pcap_writer.hpp"
#include "net/stream_deframer.hpp"

#include <vmrt/io/unique_fd.hpp>
#include <vmrt/net/l2_switch.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <memory>
#include <optional>
#include <span>
#include <string>

namespace vmrt::net {

struct network_state;

class switch_port : public std::enable_shared_from_this<switch_port> {
public:
    using clock = std::chrono::steady_clock;

    /// `ex` is the switch's strand. `seqpacket`: a datagram port on SOCK_SEQPACKET (where a
    /// zero-length read is the peer hanging up, not an empty datagram).
    switch_port(boost::asio::any_io_executor ex, port_id id, port_kind kind, bool seqpacket, io::unique_fd fd,
                port_options opts, std::shared_ptr<network_state> net, std::shared_ptr<batch_buffers> bufs,
                const switch_options& sw);
    ~switch_port();

    /// Joins the network and starts the coroutines.
    void start();
    /// Leaves the network, drops the queued frames, closes the fd and lets the coroutines end.
    void close() noexcept;

    port_id id() const noexcept { return id_; }
    port_slot slot() const noexcept { return slot_; }
    bool closed() const noexcept { return closed_; }
    const port_counters& counters() const noexcept { return counters_; }
    const std::string& name() const noexcept { return name_; }

    // Called by the network while it forwards a batch.
    void count_rx(std::span<const std::byte> frame, std::size_t wire_bytes) {
        ++counters_.rx_frames;
        counters_.rx_bytes += wire_bytes;
        if (pcap_ && frame.size() == wire_bytes) pcap_->record(frame, std::chrono::system_clock::now());
    }
    void count_drop(drop_reason r) noexcept { ++counters_.drops[static_cast<std::size_t>(r)]; }
    /// Queues a frame for this port's peer (or counts it as backpressure); true if it was queued
    /// on an idle queue, so that the caller flushes this port at the end of its batch.
    bool enqueue(std::span<const std::byte> frame) {
        if (!txq_.push(frame.data(), frame.size())) {
            count_drop(drop_reason::backpressure);
            return false;
        }
        if (dirty_) return false;
        dirty_ = true;
        return true;
    }
    /// Writes what the queue holds without blocking; if the peer cannot take it all, the writer
    /// coroutine takes over.
    void flush();

private:
    /// progress: a receive batch came back full (the peer may have more right away), or a
    /// transmit emptied the queue. would_block: the kernel has nothing more / takes nothing more.
    /// closed: the peer is gone (or broke the framing); the port must close.
    enum class io_result { progress, would_block, closed };

    static boost::asio::awaitable<void> receive_loop(std::shared_ptr<switch_port> self);
    static boost::asio::awaitable<void> transmit_loop(std::shared_ptr<switch_port> self);

    // port_receive.cpp: one batch of reads, forwarded and flushed before returning.
    io_result receive_batch();
    io_result receive_datagrams();
    io_result receive_stream();
    io_result receive_tap();

    // port_transmit.cpp: writes as much of the queue as the peer takes now.
    io_result transmit();
    io_result transmit_datagrams();
    io_result transmit_stream();
    io_result transmit_tap();
    void count_tx(std::span<const std::byte> frame) {
        ++counters_.tx_frames;
        counters_.tx_bytes += frame.size();
        if (pcap_) pcap_->record(frame, std::chrono::system_clock::now());
    }

    port_id id_;
    port_kind kind_;
    bool seqpacket_;
    std::string name_;
    std::optional<mac_address> pinned_;
    std::shared_ptr<network_state> net_;
    std::shared_ptr<batch_buffers> bufs_;
    boost::asio::posix::stream_descriptor sd_;
    boost::asio::steady_timer wake_;  ///< cancelled to wake the writer; never expires
    frame_queue txq_;
    std::optional<stream_deframer> deframer_;
    std::unique_ptr<pcap_writer> pcap_;
    port_counters counters_;
    port_slot slot_ = no_port;
    bool closed_ = false;
    bool dirty_ = false;           ///< on its network's list of ports to flush
    bool writer_waiting_ = false;  ///< the writer coroutine owns the queue until the peer drains it
};

}  // namespace vmrt::net
