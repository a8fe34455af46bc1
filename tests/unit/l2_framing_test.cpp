// The byte-level framing of the switch's ports, without sockets: the stream deframer (length
// prefixes split across reads at every position, oversize frames skipped in sync, broken framing
// detected) and the transmit queue (bounded, stream writes cut anywhere, frames counted once).
#include "net/frame_queue.hpp"
#include "net/stream_deframer.hpp"

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cstdint>
#include <vector>

namespace {

using vmrt::net::frame_queue;
using vmrt::net::stream_deframer;
using bytes = std::vector<std::byte>;

bytes payload(std::size_t len, std::uint8_t seed) {
    bytes b(len);
    for (std::size_t i = 0; i < len; ++i) b[i] = std::byte(static_cast<std::uint8_t>(seed + i * 7));
    return b;
}

void append_prefix(bytes& out, std::uint32_t n) {
    for (int s = 24; s >= 0; s -= 8) out.push_back(std::byte(n >> s));
}

void append_framed(bytes& out, const bytes& frame) {
    append_prefix(out, static_cast<std::uint32_t>(frame.size()));
    out.insert(out.end(), frame.begin(), frame.end());
}

struct parsed {
    std::vector<bytes> frames;
    std::vector<std::size_t> oversize;
    bool in_sync = true;
};

// Feeds `stream` to a deframer in reads of `step` bytes.
parsed feed(stream_deframer& d, const bytes& stream, std::size_t step) {
    parsed r;
    for (std::size_t pos = 0; pos < stream.size() && r.in_sync; pos += step) {
        std::size_t n = std::min(step, stream.size() - pos);
        auto space = d.space();
        BOOST_REQUIRE(space.size() >= n);
        std::copy_n(stream.begin() + static_cast<std::ptrdiff_t>(pos), n, space.begin());
        r.in_sync = d.commit(
            n, [&](std::span<const std::byte> f) { r.frames.emplace_back(f.begin(), f.end()); },
            [&](std::size_t len) { r.oversize.push_back(len); });
    }
    return r;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(l2_framing_test)

BOOST_AUTO_TEST_CASE(frames_survive_any_split_of_the_stream) {
    std::vector<bytes> frames{payload(60, 1), payload(1514, 2), payload(14, 3), payload(700, 4)};
    bytes stream;
    for (auto& f : frames) append_framed(stream, f);
    for (std::size_t step : {1u, 2u, 3u, 4u, 5u, 13u, 64u, 1000u, 4096u}) {
        stream_deframer d(1514, 4096);
        parsed r = feed(d, stream, step);
        BOOST_TEST(r.in_sync);
        BOOST_TEST_REQUIRE(r.frames.size() == frames.size());
        for (std::size_t i = 0; i < frames.size(); ++i) BOOST_TEST((r.frames[i] == frames[i]));
        BOOST_TEST(d.pending() == 0u);
    }
}

BOOST_AUTO_TEST_CASE(an_oversize_frame_is_skipped_and_the_stream_stays_in_sync) {
    bytes stream;
    append_framed(stream, payload(100, 1));
    append_framed(stream, payload(9000, 2));  // a jumbo frame on a 1514-byte switch
    append_framed(stream, payload(200, 3));
    for (std::size_t step : {1u, 7u, 512u, 4096u}) {
        stream_deframer d(1514, 4096);
        parsed r = feed(d, stream, step);
        BOOST_TEST(r.in_sync);
        BOOST_TEST_REQUIRE(r.frames.size() == 2u);
        BOOST_TEST((r.frames[0] == payload(100, 1)));
        BOOST_TEST((r.frames[1] == payload(200, 3)));
        BOOST_TEST(r.oversize == std::vector<std::size_t>{9000}, boost::test_tools::per_element());
    }
}

BOOST_AUTO_TEST_CASE(a_zero_or_impossible_length_breaks_the_framing) {
    for (std::uint32_t bad : {0u, 65536u, 0xffffffffu}) {
        bytes stream;
        append_framed(stream, payload(100, 1));
        append_prefix(stream, bad);
        stream.resize(stream.size() + 8);  // whatever follows the broken prefix
        append_framed(stream, payload(100, 2));
        stream_deframer d(1514, 4096);
        parsed r = feed(d, stream, 4096);
        BOOST_TEST(!r.in_sync);
        BOOST_TEST(r.frames.size() == 1u);  // what came before the broken prefix got through
        // Once broken, it stays broken.
        BOOST_TEST(!d.commit(
            0, [](auto) {}, [](auto) {}));
    }
}

BOOST_AUTO_TEST_CASE(the_queue_refuses_frames_beyond_its_limit) {
    frame_queue q(3 * (4 + 100));
    bytes f = payload(100, 9);
    BOOST_TEST(q.push(f.data(), f.size()));
    BOOST_TEST(q.push(f.data(), f.size()));
    BOOST_TEST(q.push(f.data(), f.size()));
    BOOST_TEST(!q.push(f.data(), f.size()));
    BOOST_TEST(q.bytes() == 312u);
    std::size_t done = 0;
    q.consume_frames(1, [&](std::span<const std::byte> s) { done += s.size() == 100 ? 1 : 0; });
    BOOST_TEST(done == 1u);
    BOOST_TEST(q.push(f.data(), f.size()));  // room again
}

BOOST_AUTO_TEST_CASE(stream_writes_cut_anywhere_count_each_frame_once) {
    frame_queue q(1 << 20);
    std::vector<bytes> sent;
    bytes expected_wire;
    for (std::uint8_t i = 0; i < 50; ++i) {
        bytes f = payload(10 + i * 31u, i);
        BOOST_REQUIRE(q.push(f.data(), f.size()));
        append_framed(expected_wire, f);
        sent.push_back(f);
    }
    bytes wire;
    std::vector<bytes> completed;
    for (std::size_t cut = 1; !q.empty(); cut = cut * 3 % 997 + 1) {
        auto data = q.unwritten();
        std::size_t n = std::min(cut, data.size());
        wire.insert(wire.end(), data.begin(), data.begin() + static_cast<std::ptrdiff_t>(n));
        q.consume_bytes(n, [&](std::span<const std::byte> f) { completed.emplace_back(f.begin(), f.end()); });
    }
    BOOST_TEST((wire == expected_wire));
    BOOST_TEST_REQUIRE(completed.size() == sent.size());
    for (std::size_t i = 0; i < sent.size(); ++i) BOOST_TEST((completed[i] == sent[i]));
    BOOST_TEST(q.bytes() == 0u);
}

BOOST_AUTO_TEST_CASE(the_queue_reuses_its_buffer_while_partly_written) {
    // Pushing and writing in an interleaved pattern must slide the live bytes, never lose them.
    frame_queue q(8 * 1024);
    bytes wire, expected;
    std::uint8_t seed = 0;
    for (int round = 0; round < 2000; ++round) {
        bytes f = payload(1 + (round * 37) % 1500, seed++);
        if (q.push(f.data(), f.size())) append_framed(expected, f);
        auto data = q.unwritten();
        std::size_t n = std::min<std::size_t>(data.size(), 700 + (round * 13) % 900);
        wire.insert(wire.end(), data.begin(), data.begin() + static_cast<std::ptrdiff_t>(n));
        q.consume_bytes(n, [](auto) {});
    }
    auto rest = q.unwritten();
    wire.insert(wire.end(), rest.begin(), rest.end());
    BOOST_TEST((wire == expected));
}

BOOST_AUTO_TEST_SUITE_END()
