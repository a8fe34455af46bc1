// The transmitting half of a port: writes as much of its queue as the peer's socket takes
// without blocking. Datagram ports send up to tx_batch frames per sendmmsg, stream ports send the
// queue's bytes (already length-prefixed) with one send, TAP ports write one frame per write().
#include "net/switch_port.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

namespace vmrt::net {

namespace {

bool full(int err) noexcept { return err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS; }

}  // namespace

switch_port::io_result switch_port::transmit() {
    switch (kind_) {
    case port_kind::dgram:
        return transmit_datagrams();
    case port_kind::stream:
        return transmit_stream();
    case port_kind::tap:
        return transmit_tap();
    }
    return io_result::closed;
}

switch_port::io_result switch_port::transmit_datagrams() {
    batch_buffers& b = *bufs_;
    auto done = [this](std::span<const std::byte> f) {
        count_tx(f);
    };
    while (!txq_.empty()) {
        std::size_t count = 0, pos = 0, queued = txq_.unwritten().size();
        for (; count < batch_buffers::tx_batch && pos < queued; ++count) {
            std::size_t len = txq_.frame_len_at(pos);
            b.tx_iovs[count] = {const_cast<std::byte*>(txq_.frame_at(pos)), len};
            pos += frame_prefix_bytes + len;
        }
        int n = ::sendmmsg(sd_.native_handle(), b.tx_msgs.data(), static_cast<unsigned>(count),
                           MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (full(errno)) return io_result::would_block;
            if (errno == EMSGSIZE) {
                // The peer's socket cannot hold a datagram this large at all: waiting would not
                // help, so this one frame is lost (and counted).
                txq_.consume_frames(1, [](std::span<const std::byte>) {});
                count_drop(drop_reason::backpressure);
                continue;
            }
            return io_result::closed;  // ECONNREFUSED, EPIPE, ...: the peer is gone
        }
        txq_.consume_frames(static_cast<std::size_t>(n), done);
        // A short count means the peer's buffer filled up (or the next frame fails, which the
        // retry after writability reports): either way, wait rather than spin.
        if (static_cast<std::size_t>(n) < count) return io_result::would_block;
    }
    return io_result::progress;
}

switch_port::io_result switch_port::transmit_stream() {
    auto done = [this](std::span<const std::byte> f) {
        count_tx(f);
    };
    while (!txq_.empty()) {
        std::span<const std::byte> data = txq_.unwritten();
        ssize_t n = ::send(sd_.native_handle(), data.data(), data.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            return full(errno) ? io_result::would_block : io_result::closed;
        }
        txq_.consume_bytes(static_cast<std::size_t>(n), done);
        if (static_cast<std::size_t>(n) < data.size()) return io_result::would_block;
    }
    return io_result::progress;
}

switch_port::io_result switch_port::transmit_tap() {
    auto done = [this](std::span<const std::byte> f) {
        count_tx(f);
    };
    while (!txq_.empty()) {
        ssize_t n = ::write(sd_.native_handle(), txq_.frame_at(0), txq_.frame_len_at(0));
        if (n < 0) {
            if (errno == EINTR) continue;
            if (full(errno)) return io_result::would_block;
            if (errno == EIO || errno == EINVAL) {
                // The interface is down or refuses this frame: like an unplugged cable, the frame
                // is lost (and counted), the port stays.
                txq_.consume_frames(1, [](std::span<const std::byte>) {});
                count_drop(drop_reason::backpressure);
                continue;
            }
            return io_result::closed;
        }
        txq_.consume_frames(1, done);
    }
    return io_result::progress;
}

}  // namespace vmrt::net
