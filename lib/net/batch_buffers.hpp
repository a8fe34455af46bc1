// Scratch memory for batched datagram I/O, shared by all ports of one switch: the ports run on
// one strand and a batch is read, forwarded and flushed without suspending, so one set serves
// every port. It holds the receive slots recvmmsg fills and the message headers sendmmsg takes.
#pragma once

#include <sys/socket.h>
#include <sys/uio.h>

#include <array>
#include <cstddef>
#include <vector>

namespace vmrt::net {

struct batch_buffers {
    /// Frames per recvmmsg call: enough to amortise the syscall, small enough to stay in cache.
    static constexpr std::size_t rx_batch = 64;
    /// Frames per sendmmsg call.
    static constexpr std::size_t tx_batch = 256;

    /// Each receive slot holds max_frame_bytes + 1, so that a frame one byte too long is seen as
    /// too long rather than cut to size (TAP reads carry no truncation flag).
    explicit batch_buffers(std::size_t max_frame_bytes)
        : stride((max_frame_bytes + 1 + 63) / 64 * 64), frames(stride * rx_batch) {
        // The headers point into this object (never moved: it lives behind a shared_ptr), and
        // the calls only write msg_len and msg_flags back, so they are set up once.
        for (std::size_t i = 0; i < rx_batch; ++i) {
            rx_iovs[i] = {slot(i), stride};
            rx_msgs[i].msg_hdr.msg_iov = &rx_iovs[i];
            rx_msgs[i].msg_hdr.msg_iovlen = 1;
        }
        for (std::size_t i = 0; i < tx_batch; ++i) {
            tx_msgs[i].msg_hdr.msg_iov = &tx_iovs[i];
            tx_msgs[i].msg_hdr.msg_iovlen = 1;
        }
    }
    batch_buffers(const batch_buffers&) = delete;
    batch_buffers& operator=(const batch_buffers&) = delete;

    std::byte* slot(std::size_t i) noexcept { return frames.data() + i * stride; }

    std::size_t stride;
    std::vector<std::byte> frames;
    std::array<mmsghdr, rx_batch> rx_msgs{};
    std::array<iovec, rx_batch> rx_iovs{};
    std::array<mmsghdr, tx_batch> tx_msgs{};
    std::array<iovec, tx_batch> tx_iovs{};
};

}  // namespace vmrt::net
