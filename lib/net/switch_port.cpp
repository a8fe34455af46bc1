// A port's lifecycle and its two coroutines. The I/O itself is in port_receive.cpp and
// port_transmit.cpp.
#include "net/switch_port.hpp"

#include "net/network_state.hpp"

#include <vmrt/error.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/post.hpp>

namespace vmrt::net {

namespace asio = boost::asio;

namespace {

// Batches a receiver reads before letting the other ports' coroutines run: long enough to
// amortise the trip through the scheduler, short enough that one busy peer cannot hog the strand.
constexpr int batches_per_turn = 8;
constexpr std::size_t stream_read_chunk = 256 * 1024;

}  // namespace

switch_port::switch_port(asio::any_io_executor ex, port_id id, port_kind kind, bool seqpacket,
                         io::unique_fd fd, port_options opts, std::shared_ptr<network_state> net,
                         std::shared_ptr<batch_buffers> bufs, const switch_options& sw)
    : id_(id), kind_(kind), seqpacket_(seqpacket), name_(std::move(opts.name)), pinned_(opts.pinned_mac),
      net_(std::move(net)), bufs_(std::move(bufs)), sd_(ex), wake_(ex), txq_(sw.port_queue_bytes) {
    wake_.expires_at(clock::time_point::max());
    if (kind_ == port_kind::stream) deframer_.emplace(sw.max_frame_bytes, stream_read_chunk);
    if (!opts.pcap.empty()) pcap_ = std::make_unique<pcap_writer>(opts.pcap, sw.max_frame_bytes);
    sd_.assign(fd.get());
    fd.release();
}

switch_port::~switch_port() { close(); }

void switch_port::start() {
    slot_ = net_->core.add_port(pinned_);
    net_->join(*this);
    // An exception escaping a coroutine (only allocation failure can) takes the port down rather
    // than the process.
    auto on_end = [weak = weak_from_this()](std::exception_ptr e) {
        if (auto self = weak.lock(); e && self) self->close();
    };
    asio::co_spawn(sd_.get_executor(), receive_loop(shared_from_this()), on_end);
    asio::co_spawn(sd_.get_executor(), transmit_loop(shared_from_this()), on_end);
}

void switch_port::close() noexcept {
    if (closed_) return;
    closed_ = true;
    if (slot_ != no_port) net_->leave(*this);
    txq_.clear();
    boost::system::error_code ignored;
    sd_.close(ignored);  // aborts the pending waits: both coroutines resume and end
    wake_.cancel();
    if (pcap_) pcap_->flush();
}

void switch_port::flush() {
    dirty_ = false;
    if (closed_ || writer_waiting_) return;
    switch (transmit()) {
    case io_result::progress:
        break;
    case io_result::would_block:
        writer_waiting_ = true;
        wake_.cancel();
        break;
    case io_result::closed:
        close();
        break;
    }
    if (pcap_) pcap_->flush();
}

asio::awaitable<void> switch_port::receive_loop(std::shared_ptr<switch_port> self) {
    while (!self->closed_) {
        io_result r = io_result::would_block;
        for (int i = 0; i < batches_per_turn && !self->closed_; ++i)
            if ((r = self->receive_batch()) != io_result::progress) break;
        if (r == io_result::closed) self->close();
        if (self->closed_) co_return;
        if (self->pcap_) self->pcap_->flush();
        if (r == io_result::progress) {
            // More is waiting: yield to the other ports, then carry on without asking epoll.
            co_await asio::post(self->sd_.get_executor(), asio::deferred);
            continue;
        }
        auto [ec] = co_await self->sd_.async_wait(asio::posix::descriptor_base::wait_read,
                                                  asio::as_tuple(asio::deferred));
        if (ec && !self->closed_) self->close();
    }
}

asio::awaitable<void> switch_port::transmit_loop(std::shared_ptr<switch_port> self) {
    while (!self->closed_) {
        if (!self->writer_waiting_) {
            // Idle until flush() finds the peer's buffer full (it cancels the timer to wake us).
            co_await self->wake_.async_wait(asio::as_tuple(asio::deferred));
            continue;
        }
        auto [ec] = co_await self->sd_.async_wait(asio::posix::descriptor_base::wait_write,
                                                  asio::as_tuple(asio::deferred));
        if (self->closed_) co_return;
        io_result r = ec ? io_result::closed : self->transmit();
        if (self->pcap_) self->pcap_->flush();
        if (r == io_result::closed) self->close();
        if (r == io_result::progress) self->writer_waiting_ = false;
    }
}

}  // namespace vmrt::net
