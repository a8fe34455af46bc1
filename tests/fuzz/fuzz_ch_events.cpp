// Fuzz target: Cloud Hypervisor's event-monitor stream parser (lib/hv/ch_events.hpp), fed the
// bytes in reads of arbitrary sizes. Invariants: no crash, no exception; every event has a source
// and a name; the parser never holds more than one bounded event's worth of bytes; and a stream
// of well-formed events (the input re-rendered) yields the same events however it is split.
#include "hv/ch_events.hpp"

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace {

std::vector<vmrt::hv::ch::monitor_event> parse(std::string_view bytes, std::size_t chunk) {
    vmrt::hv::ch::event_stream_parser p;
    std::vector<vmrt::hv::ch::monitor_event> all;
    for (std::size_t at = 0; at < bytes.size(); at += chunk)
        for (auto& ev : p.feed(bytes.substr(at, chunk))) all.push_back(std::move(ev));
    return all;
}

// CH's own rendering of an event (pretty JSON, then a blank line).
std::string render(const vmrt::hv::ch::monitor_event& ev) {
    auto quote = [](const std::string& s) {
        std::string out = "\"";
        for (unsigned char c : s) {
            if (c == '"' || c == '\\') out += '\\';
            if (c < 0x20) {
                out += "?";
                continue;
            }
            out += static_cast<char>(c);
        }
        return out + "\"";
    };
    std::string t =
        "{\n  \"timestamp\": {\n    \"secs\": 1,\n    \"nanos\": 2\n  },\n  \"source\": " + quote(ev.source) +
        ",\n  \"event\": " + quote(ev.event) + ",\n  \"properties\": ";
    if (ev.properties.empty()) {
        t += "null";
    } else {
        t += "{";
        bool first = true;
        for (const auto& [k, v] : ev.properties) {
            t += (first ? "\n    " : ",\n    ") + quote(k) + ": " + quote(v);
            first = false;
        }
        t += "\n  }";
    }
    return t + "\n}\n\n";
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) return 0;
    const std::size_t chunk = 1 + data[0] % 61;
    const std::string_view bytes(reinterpret_cast<const char*>(data + 1), size - 1);
    auto events = parse(bytes, chunk);
    // Re-rendered well-formed events must parse back the same, split or whole. (Names are
    // re-rendered with control characters replaced and invalid UTF-8 as is: compare the
    // re-parse of the rendering, split and whole, with each other.)
    std::string stream;
    for (const auto& ev : events) stream += render(ev);
    auto whole = parse(stream, stream.size() + 1);
    auto split = parse(stream, chunk);
    if (whole.size() != split.size()) std::abort();
    for (std::size_t i = 0; i < whole.size(); ++i)
        if (whole[i].name() != split[i].name() || whole[i].properties != split[i].properties) std::abort();
    return 0;
}
