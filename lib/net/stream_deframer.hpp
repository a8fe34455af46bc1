// Splits a SOCK_STREAM port's byte stream into frames (4-byte big-endian length, then the frame).
// It owns the receive buffer: the port reads large chunks into space(), and commit() hands out
// every complete frame in them, keeping a partial one for the next read. Sans-I/O, so the unit
// tests feed it bytes split at every awkward point.
//
// A length above max_frame_bytes but still a possible Ethernet frame (<= 65535) is an oversize
// frame: reported, skipped, and the stream stays in sync. A zero length, or one no Ethernet frame
// can have, means the framing is broken: commit() returns false and the port must be closed.
#pragma once

#include "net/frame_queue.hpp"

#include <cstddef>
#include <cstring>
#include <span>
#include <vector>

namespace vmrt::net {

/// The largest length prefix that can still be an Ethernet frame (the largest max_frame_bytes).
inline constexpr std::size_t max_possible_frame_bytes = 65535;

class stream_deframer {
public:
    /// Each read may bring up to `read_chunk` bytes.
    stream_deframer(std::size_t max_frame_bytes, std::size_t read_chunk)
        : max_frame_(max_frame_bytes), chunk_(read_chunk),
          buf_(read_chunk + frame_prefix_bytes + max_frame_bytes) {}

    /// Where the next read goes: at least `read_chunk` bytes.
    std::span<std::byte> space() noexcept { return {buf_.data() + fill_, buf_.size() - fill_}; }

    /// Takes `n` freshly read bytes: `on_frame(span)` for each complete frame, `on_oversize(len)`
    /// for each skipped one. False if the framing is broken (nothing more can be parsed).
    template <typename OnFrame, typename OnOversize>
    bool commit(std::size_t n, OnFrame&& on_frame, OnOversize&& on_oversize) {
        if (broken_) return false;
        std::byte* data = buf_.data();
        std::size_t end = fill_ + n, pos = 0;
        if (skip_ > 0) {
            std::size_t s = std::min(skip_, end);
            skip_ -= s;
            pos = s;
        }
        while (skip_ == 0 && end - pos >= frame_prefix_bytes) {
            std::size_t len = load_be32(data + pos);
            if (len == 0 || len > max_possible_frame_bytes) {
                broken_ = true;
                return false;
            }
            if (len > max_frame_) {
                on_oversize(len);
                pos += frame_prefix_bytes;
                std::size_t s = std::min(len, end - pos);
                skip_ = len - s;
                pos += s;
                continue;
            }
            if (end - pos - frame_prefix_bytes < len) break;
            on_frame(std::span<const std::byte>(data + pos + frame_prefix_bytes, len));
            pos += frame_prefix_bytes + len;
        }
        // Keep the partial frame (at most a prefix and max_frame_bytes) at the front.
        fill_ = end - pos;
        if (fill_ > 0 && pos > 0) std::memmove(data, data + pos, fill_);
        return true;
    }

    /// Bytes of an incomplete frame waiting for the next read.
    std::size_t pending() const noexcept { return fill_; }
    std::size_t read_chunk() const noexcept { return chunk_; }

private:
    std::size_t max_frame_, chunk_;
    std::vector<std::byte> buf_;
    std::size_t fill_ = 0;
    std::size_t skip_ = 0;  ///< bytes of an oversize frame still to discard
    bool broken_ = false;
};

}  // namespace vmrt::net
