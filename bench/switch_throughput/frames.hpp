// The frames bench/switch_throughput sends: Ethernet frames between endpoints with fixed, distinct
// unicast MACs, and how they travel on a port (one per datagram, or length-prefixed in a stream).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace swbench {

/// How an endpoint's fd carries frames: the two socketpair port kinds of vmrt's switch.
enum class framing {
    dgram,   ///< one frame per datagram
    stream,  ///< each frame prefixed by its length, 4 bytes big-endian
};

inline std::string_view to_string(framing f) { return f == framing::dgram ? "dgram" : "stream"; }

using mac = std::array<std::uint8_t, 6>;

inline constexpr mac broadcast_mac{0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

/// Locally administered unicast address of endpoint `i`: 02:76:6d:62:hi:lo ("vmb").
inline mac endpoint_mac(std::size_t i) {
    return {
        0x02, 0x76, 0x6d, 0x62, static_cast<std::uint8_t>((i + 1) >> 8), static_cast<std::uint8_t>(i + 1)};
}

/// An Ethernet frame of exactly `size` bytes (header included, no FCS), EtherType 0x88b5 (IEEE
/// local experimental, so nothing on a host would ever interpret it), zero payload.
inline std::vector<std::uint8_t> make_frame(const mac& dst, const mac& src, std::size_t size) {
    std::vector<std::uint8_t> f(size, 0);
    for (std::size_t i = 0; i < 6; ++i) {
        f[i] = dst[i];
        f[6 + i] = src[i];
    }
    f[12] = 0x88;
    f[13] = 0xb5;
    return f;
}

/// The stream-port form of a frame: 4-byte big-endian length, then the frame.
inline void append_stream_record(std::vector<std::uint8_t>& out, std::span<const std::uint8_t> frame) {
    auto n = static_cast<std::uint32_t>(frame.size());
    out.push_back(static_cast<std::uint8_t>(n >> 24));
    out.push_back(static_cast<std::uint8_t>(n >> 16));
    out.push_back(static_cast<std::uint8_t>(n >> 8));
    out.push_back(static_cast<std::uint8_t>(n));
    out.insert(out.end(), frame.begin(), frame.end());
}

}  // namespace swbench
