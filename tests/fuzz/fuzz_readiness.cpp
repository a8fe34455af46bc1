// Fuzz target: the serial-console readiness parser, fed arbitrary bytes in arbitrary splits.
// Invariants: no crash; the same bytes give the same events however they are split; a reported
// ready line always parses on its own.
#include <vmrt/io/readiness.hpp>

#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    // The first byte chooses the split size, the rest is console output.
    const std::size_t chunk = 1 + data[0] % 61;
    std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);

    vmrt::io::readiness_parser whole(8, 256), pieces(8, 256);
    auto all = whole.feed(text);
    std::vector<vmrt::io::serial_event> split;
    for (std::size_t at = 0; at < text.size(); at += chunk) {
        auto evs = pieces.feed(text.substr(at, chunk));
        split.insert(split.end(), evs.begin(), evs.end());
    }
    if (all != split) std::abort();
    if (whole.ready_ip() != pieces.ready_ip()) std::abort();
    for (auto& e : all)
        if (e.what == vmrt::io::serial_event::kind::ready && !vmrt::io::parse_ready_line(e.line))
            std::abort();
    return 0;
}
