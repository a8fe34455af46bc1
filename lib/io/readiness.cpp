// The console parser works on complete lines only: bytes are buffered (up to max_line_bytes)
// until a '\n' arrives, and only then is the line classified. This is what makes a partial
// write such as "VMRS_READY 10.0" harmless, and it is why the address is never taken from the
// next line.
#include <vmrt/io/readiness.hpp>

#include <boost/asio/ip/address.hpp>

#include <algorithm>

namespace vmrt::io {

namespace {

// Blanks tolerated around the line and between the marker and its token. '\r' is only
// tolerated at the ends (a CRLF console), not as a separator.
constexpr std::string_view edge_blanks = " \t\r";
constexpr std::string_view separators = " \t";

constexpr std::string_view panic_text = "Kernel panic - not syncing";
constexpr std::string_view banner_text = "Linux version ";

std::string_view trim_left(std::string_view s, std::string_view set = edge_blanks) {
    auto first = s.find_first_not_of(set);
    return first == std::string_view::npos ? std::string_view{} : s.substr(first);
}

std::string_view trim(std::string_view s) {
    s = trim_left(s);
    auto last = s.find_last_not_of(edge_blanks);
    return last == std::string_view::npos ? std::string_view{} : s.substr(0, last + 1);
}

// inet_aton-style shortcuts ("10.1", "0x0a.0.0.1") must not pass as addresses: a guest that
// prints one has a bug, and guessing what it meant would connect to the wrong host.
bool is_dotted_quad(std::string_view token) {
    int parts = 0;
    while (true) {
        auto dot = token.find('.');
        auto part = token.substr(0, dot);
        if (part.empty() || part.size() > 3 ||
            !std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; }))
            return false;
        ++parts;
        if (dot == std::string_view::npos) break;
        token.remove_prefix(dot + 1);
    }
    return parts == 4;
}

// The canonical text of the address ("" for "-"), or nothing if the token is not an address.
// Canonical so that consumers can compare addresses as strings ("FD00:0::2" == "fd00::2").
std::optional<std::string> parse_address(std::string_view token) {
    if (token == "-") return std::string{};
    boost::system::error_code ec;
    if (token.find(':') != std::string_view::npos) {
        // A scope id ("fe80::1%eth0") names one of the guest's interfaces: meaningless on the host.
        if (token.find('%') != std::string_view::npos) return std::nullopt;
        auto address = boost::asio::ip::make_address_v6(token, ec);
        if (ec) return std::nullopt;
        return address.to_string();
    }
    if (!is_dotted_quad(token)) return std::nullopt;
    // Range (<= 255) and leading-zero checks are left to inet_pton.
    auto address = boost::asio::ip::make_address_v4(token, ec);
    if (ec) return std::nullopt;
    return address.to_string();
}

// "Linux version 6.1.0 ..." or, with printk timestamps, "[    0.000000] Linux version 6.1.0 ...".
bool is_kernel_banner(std::string_view line) {
    line = trim_left(line);
    if (line.starts_with('[')) {
        auto close = line.find(']');
        if (close == std::string_view::npos) return false;
        if (line.substr(1, close - 1).find_first_not_of(" 0123456789.") != std::string_view::npos)
            return false;
        line = trim_left(line.substr(close + 1));
    }
    return line.starts_with(banner_text);
}

}  // namespace

std::optional<std::string> parse_ready_line(std::string_view line) {
    line = trim(line);
    if (!line.starts_with(ready_marker)) return std::nullopt;
    auto rest = line.substr(ready_marker.size());
    // The marker must be a whole word ("VMRS_READYX 1.2.3.4" is not one) followed by a token:
    // a bare "VMRS_READY" is not ready, and the address is never looked for on the next line.
    if (rest.empty() || separators.find(rest.front()) == std::string_view::npos) return std::nullopt;
    auto token = trim_left(rest, separators);
    if (token.empty() || token.find_first_of(separators) != std::string_view::npos) return std::nullopt;
    return parse_address(token);
}

readiness_parser::readiness_parser(std::size_t kept_lines, std::size_t max_line_bytes)
    : kept_lines_(kept_lines), max_line_bytes_(max_line_bytes) {}

std::vector<serial_event> readiness_parser::feed(std::string_view bytes) {
    std::vector<serial_event> out;
    while (!bytes.empty()) {
        auto newline = bytes.find('\n');
        if (newline == std::string_view::npos) {
            hold(bytes);
            break;
        }
        auto piece = bytes.substr(0, newline);
        bytes.remove_prefix(newline + 1);
        if (partial_.empty() && !partial_overflowed_ && piece.size() <= max_line_bytes_) {
            // The common case, a whole line inside one feed: classify it in place, no copy.
            complete_line(piece, out);
        } else {
            hold(piece);
            complete_line(partial_, out);
            partial_.clear();
            partial_overflowed_ = false;
        }
    }
    return out;
}

void readiness_parser::reset() {
    partial_.clear();
    partial_overflowed_ = false;
    ready_ip_.reset();
}

std::vector<std::string> readiness_parser::last_lines() const {
    return {last_lines_.begin(), last_lines_.end()};
}

void readiness_parser::hold(std::string_view piece) {
    // Only the beginning of an over-long line is kept: enough for the diagnostics and for the
    // prefix checks (panic, banner), and memory stays bounded whatever the guest prints.
    auto room = max_line_bytes_ - partial_.size();
    if (piece.size() > room) {
        partial_overflowed_ = true;
        piece = piece.substr(0, room);
    }
    partial_.append(piece);
}

void readiness_parser::remember(std::string_view line) {
    if (kept_lines_ == 0) return;
    if (last_lines_.size() == kept_lines_) last_lines_.pop_front();
    last_lines_.emplace_back(line);
}

void readiness_parser::complete_line(std::string_view line, std::vector<serial_event>& out) {
    if (line.ends_with('\r')) line.remove_suffix(1);
    remember(line);
    // A truncated line was not seen whole, so it cannot be trusted as a ready line.
    if (!partial_overflowed_) {
        if (auto ip = parse_ready_line(line)) {
            ready_ip_ = *ip;
            out.push_back({serial_event::kind::ready, std::move(ip), std::string(line)});
            return;
        }
    }
    if (line.find(panic_text) != std::string_view::npos) {
        out.push_back({serial_event::kind::kernel_panic, std::nullopt, std::string(line)});
    } else if (ready_ip_ && is_kernel_banner(line)) {
        // A banner before the first Ready is just the boot; after it, the guest rebooted and
        // must announce itself again.
        ready_ip_.reset();
        out.push_back({serial_event::kind::reboot, std::nullopt, std::string(line)});
    }
}

}  // namespace vmrt::io
