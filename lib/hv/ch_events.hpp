// Cloud Hypervisor's event monitor (`--event-monitor fd=N`), reference §7: a stream of
// pretty-printed JSON objects, each followed by a blank line:
//
//   {
//     "timestamp": {"secs": 0, "nanos": 1234},
//     "source": "vm",
//     "event": "booted",
//     "properties": null
//   }
//
// CH writes it non-blocking and ignores write errors, so with a full pipe an event can be lost
// or cut short. The parser therefore never trusts the stream: a truncated or garbled object is
// skipped (counted in `discarded()`), and parsing resumes at the next object, which always
// starts with '{' at the beginning of a line.
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace vmrt::hv::ch {

struct monitor_event {
    std::chrono::nanoseconds since_start{0};        ///< CH's timestamp: since the monitor started
    std::string source;                             ///< "vmm", "vm", "virtio-device", "guest", ...
    std::string event;                              ///< "booted", "shutdown", "activated", ...
    std::map<std::string, std::string> properties;  ///< string properties ({"id": "_disk0"}); others dropped

    std::string name() const { return source + "/" + event; }  ///< "vm/booted"
};

/// Sans-I/O: feed bytes as they arrive, get whole events back.
class event_stream_parser {
public:
    /// An object larger than this is garbage (CH's events are a few hundred bytes).
    static constexpr std::size_t max_event_bytes = 64 * 1024;

    std::vector<monitor_event> feed(std::string_view bytes);
    /// Objects that were skipped because they were truncated, not JSON, or not event-shaped.
    std::size_t discarded() const noexcept { return discarded_; }

private:
    bool take_one(std::vector<monitor_event>& out);
    void skip_to_next_object();

    std::string buffer_;
    std::size_t discarded_ = 0;
};

}  // namespace vmrt::hv::ch
