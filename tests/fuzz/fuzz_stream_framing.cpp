// Fuzz target: the switch's stream-port deframer (4-byte big-endian length prefixes), fed the
// same bytes in reads of arbitrary sizes. Invariants: no crash; every frame handed out is 1 to
// max_frame_bytes long; the frames, the oversize lengths and the broken-framing verdict are the
// same however the bytes are split (a differential check against one read of everything).
#include "net/stream_deframer.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

struct outcome {
    std::vector<std::string> frames;
    std::vector<std::size_t> oversize;
    bool broken = false;
    bool operator==(const outcome&) const = default;
};

outcome deframe(const std::uint8_t* data, std::size_t size, std::size_t chunk, std::size_t max_frame) {
    vmrt::net::stream_deframer d(max_frame, chunk);
    outcome out;
    for (std::size_t at = 0; at < size && !out.broken; at += chunk) {
        const std::size_t n = std::min(chunk, size - at);
        auto space = d.space();
        if (space.size() < n) std::abort();  // the deframer promised room for a whole read
        std::memcpy(space.data(), data + at, n);
        out.broken = !d.commit(
            n,
            [&](std::span<const std::byte> f) {
                if (f.empty() || f.size() > max_frame) std::abort();
                out.frames.emplace_back(reinterpret_cast<const char*>(f.data()), f.size());
            },
            [&](std::size_t len) {
                if (len <= max_frame) std::abort();
                out.oversize.push_back(len);
            });
    }
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2) return 0;
    // The first byte chooses the read size, the second the largest frame; the rest is the stream.
    const std::size_t chunk = 1 + data[0] % 97;
    const std::size_t max_frame = 14 + data[1] % 200;
    data += 2;
    size -= 2;
    const auto whole = deframe(data, size, std::max<std::size_t>(size, 1), max_frame);
    const auto pieces = deframe(data, size, chunk, max_frame);
    if (!(whole == pieces)) std::abort();
    return 0;
}
