// The receiving half of a port: one batch of frames from the peer per call, each handed to the
// network as it is parsed, and the destinations flushed once at the end of the batch.
#include "net/network_state.hpp"
#include "net/switch_port.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

namespace vmrt::net {

namespace {

bool transient(int err) noexcept { return err == EAGAIN || err == EWOULDBLOCK || err == EINTR; }

}  // namespace

switch_port::io_result switch_port::receive_batch() {
    switch (kind_) {
    case port_kind::dgram:
        return receive_datagrams();
    case port_kind::stream:
        return receive_stream();
    case port_kind::tap:
        return receive_tap();
    }
    return io_result::closed;
}

switch_port::io_result switch_port::receive_datagrams() {
    batch_buffers& b = *bufs_;
    // MSG_TRUNC makes msg_len the datagram's real length even when it did not fit, so that an
    // oversize frame is counted as such rather than forwarded cut short.
    int n = ::recvmmsg(sd_.native_handle(), b.rx_msgs.data(), batch_buffers::rx_batch,
                       MSG_DONTWAIT | MSG_TRUNC, nullptr);
    if (n < 0) return transient(errno) ? io_result::would_block : io_result::closed;
    auto now = clock::now();
    for (int i = 0; i < n; ++i) {
        const mmsghdr& m = b.rx_msgs[static_cast<std::size_t>(i)];
        std::size_t wire = m.msg_len;
        // On SOCK_SEQPACKET an empty read is the peer hanging up; on SOCK_DGRAM it is a runt.
        if (wire == 0 && seqpacket_) {
            net_->end_batch();
            return io_result::closed;
        }
        // A cut frame arrives shorter than `wire`: the core counts it as oversize.
        std::size_t held = std::min(wire, b.stride);
        net_->forward(*this, {b.slot(static_cast<std::size_t>(i)), held}, wire, now);
    }
    net_->end_batch();
    return static_cast<std::size_t>(n) == batch_buffers::rx_batch ? io_result::progress
                                                                  : io_result::would_block;
}

switch_port::io_result switch_port::receive_stream() {
    std::span<std::byte> space = deframer_->space();
    ssize_t n = ::recv(sd_.native_handle(), space.data(), space.size(), MSG_DONTWAIT);
    if (n < 0) return transient(errno) ? io_result::would_block : io_result::closed;
    if (n == 0) return io_result::closed;  // the peer hung up
    auto now = clock::now();
    bool in_sync = deframer_->commit(
        static_cast<std::size_t>(n),
        [&](std::span<const std::byte> frame) { net_->forward(*this, frame, frame.size(), now); },
        [&](std::size_t len) {
            count_rx({}, len);
            count_drop(drop_reason::oversize);
        });
    net_->end_batch();
    if (!in_sync) {
        count_drop(drop_reason::malformed);
        return io_result::closed;
    }
    return static_cast<std::size_t>(n) == space.size() ? io_result::progress : io_result::would_block;
}

switch_port::io_result switch_port::receive_tap() {
    batch_buffers& b = *bufs_;
    auto now = clock::now();
    std::size_t frames = 0;
    io_result r = io_result::progress;
    // A TAP fd gives one frame per read(); each is forwarded before the next read reuses the slot.
    for (; frames < batch_buffers::rx_batch; ++frames) {
        ssize_t n = ::read(sd_.native_handle(), b.slot(0), b.stride);
        if (n < 0) {
            if (errno == EINTR) continue;
            r = transient(errno) ? io_result::would_block : io_result::closed;
            break;
        }
        auto len = static_cast<std::size_t>(n);
        net_->forward(*this, {b.slot(0), len}, len, now);
    }
    net_->end_batch();
    return r;
}

}  // namespace vmrt::net
