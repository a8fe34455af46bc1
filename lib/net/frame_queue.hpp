// A port's bounded transmit queue: frames waiting for the peer, stored back to back in one
// contiguous buffer, each behind its 4-byte big-endian length. That is exactly the stream
// framing, so a stream port writes the queue's bytes as they are with one send(); datagram and
// TAP ports walk the prefixes to send one frame per datagram. Pushing never allocates once the
// buffer has grown to the port's working size, and a push that would exceed the byte limit is
// refused (the caller counts it as backpressure).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

namespace vmrt::net {

inline constexpr std::size_t frame_prefix_bytes = 4;

inline std::uint32_t load_be32(const std::byte* p) noexcept {
    return (std::uint32_t(std::uint8_t(p[0])) << 24) | (std::uint32_t(std::uint8_t(p[1])) << 16) |
           (std::uint32_t(std::uint8_t(p[2])) << 8) | std::uint32_t(std::uint8_t(p[3]));
}

class frame_queue {
public:
    /// At most `limit_bytes` queued, prefixes included.
    explicit frame_queue(std::size_t limit_bytes) : limit_(limit_bytes) {}

    /// Appends a frame; false (and nothing queued) if it does not fit under the limit.
    bool push(const std::byte* frame, std::size_t len) {
        std::size_t need = frame_prefix_bytes + len;
        if (tail_ - mark_ + need > limit_) return false;
        if (tail_ + need > buf_.size()) make_room(need);
        std::byte* p = buf_.data() + tail_;
        auto n = static_cast<std::uint32_t>(len);
        p[0] = std::byte(n >> 24);
        p[1] = std::byte(n >> 16);
        p[2] = std::byte(n >> 8);
        p[3] = std::byte(n);
        std::memcpy(p + frame_prefix_bytes, frame, len);
        tail_ += need;
        return true;
    }

    bool empty() const noexcept { return head_ == tail_; }
    /// Bytes queued and not yet written, prefixes included.
    std::size_t bytes() const noexcept { return tail_ - mark_; }

    /// The unwritten bytes (stream ports send them as they are).
    std::span<const std::byte> unwritten() const noexcept { return {buf_.data() + head_, tail_ - head_}; }
    /// After a stream write of `n` bytes: calls `done(frame)` for every frame now fully written.
    template <typename F>
    void consume_bytes(std::size_t n, F&& done) {
        head_ += n;
        while (mark_ < tail_) {
            std::size_t len = load_be32(buf_.data() + mark_);
            if (mark_ + frame_prefix_bytes + len > head_) break;
            done(std::span<const std::byte>(buf_.data() + mark_ + frame_prefix_bytes, len));
            mark_ += frame_prefix_bytes + len;
        }
        reset_if_empty();
    }

    /// Frame-wise access for datagram and TAP ports: the frame at `pos` (an offset from the
    /// first unwritten frame), and the offset of the one after it.
    std::size_t frame_len_at(std::size_t pos) const noexcept { return load_be32(buf_.data() + head_ + pos); }
    const std::byte* frame_at(std::size_t pos) const noexcept {
        return buf_.data() + head_ + pos + frame_prefix_bytes;
    }
    /// Removes the first `count` frames (sent or given up); calls `done(frame)` for each.
    template <typename F>
    void consume_frames(std::size_t count, F&& done) {
        for (; count > 0; --count) {
            std::size_t len = load_be32(buf_.data() + head_);
            done(std::span<const std::byte>(buf_.data() + head_ + frame_prefix_bytes, len));
            head_ += frame_prefix_bytes + len;
        }
        mark_ = head_;
        reset_if_empty();
    }

    void clear() noexcept { head_ = tail_ = mark_ = 0; }

private:
    void reset_if_empty() noexcept {
        if (mark_ == tail_) head_ = tail_ = mark_ = 0;
    }
    void make_room(std::size_t need);

    std::size_t limit_;
    std::vector<std::byte> buf_;
    // [mark_, head_): the frame partly written by a stream send (kept for its length prefix);
    // [head_, tail_): not written yet.
    std::size_t mark_ = 0, head_ = 0, tail_ = 0;
};

}  // namespace vmrt::net
