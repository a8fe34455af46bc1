// Sans-I/O parser of a guest's serial console: finds the `VMRS_READY <ip>` line (the vm-rs
// readiness protocol), notices a guest reboot (a kernel banner after Ready clears readiness)
// and kernel panics, and keeps the last lines for diagnostics.
//
// Rules (each one is a bug in vm-rs 0.2.4's ReadyMarkerCache, see vm-rs-study §1.7):
//  * a marker counts only on a complete line (terminated by '\n'); a partial write such as
//    "VMRS_READY 10.0" is held until the rest of the line arrives;
//  * the line must be exactly the marker, one space-separated token and nothing else (leading and
//    trailing blanks and a '\r' are tolerated); the token must be a valid IPv4 or IPv6 address,
//    or "-" for a guest that is ready without an address;
//  * the parser never looks across a line boundary for the address;
//  * a kernel banner ("Linux version ...") after Ready means the guest rebooted: readiness is
//    cleared and a reboot is reported;
//  * lines are bounded (max_line_bytes): a console that never prints '\n' cannot grow memory.
#pragma once

#include <cstddef>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vmrt::io {

inline constexpr std::string_view ready_marker = "VMRS_READY";

struct serial_event {
    enum class kind {
        ready,         ///< a valid ready line; `ip` is empty for "VMRS_READY -"
        reboot,        ///< a kernel banner after the guest had been ready
        kernel_panic,  ///< "Kernel panic - not syncing" seen
    };
    kind what;
    std::optional<std::string> ip;
    std::string line;  ///< the console line that caused the event
    friend bool operator==(const serial_event&, const serial_event&) = default;
};

/// Parses one complete console line (without its '\n'). Returns the address ("" for "-") if it
/// is a valid ready line, nothing otherwise.
std::optional<std::string> parse_ready_line(std::string_view line);

class readiness_parser {
public:
    explicit readiness_parser(std::size_t kept_lines = 20, std::size_t max_line_bytes = 4096);

    /// Feeds console bytes as they were written; returns the events they completed, in order.
    std::vector<serial_event> feed(std::string_view bytes);

    /// The log was truncated or replaced: forget the partial line and the readiness.
    void reset();

    /// The address of the current readiness, if the guest is ready ("" for no address).
    const std::optional<std::string>& ready_ip() const noexcept { return ready_ip_; }
    bool is_ready() const noexcept { return ready_ip_.has_value(); }

    /// The last complete lines (oldest first), for Failed{serial_tail}.
    std::vector<std::string> last_lines() const;

    /// Bytes held for the current, unfinished line (never more than max_line_bytes).
    std::size_t buffered_bytes() const noexcept { return partial_.size(); }

private:
    void complete_line(std::string_view line, std::vector<serial_event>& out);
    void hold(std::string_view piece);
    void remember(std::string_view line);

    std::size_t kept_lines_;
    std::size_t max_line_bytes_;
    std::string partial_;
    bool partial_overflowed_ = false;
    std::optional<std::string> ready_ip_;
    std::deque<std::string> last_lines_;
};

}  // namespace vmrt::io
