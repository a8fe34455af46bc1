#include "net/hybrid_vsock_codec.hpp"

#include <cstdio>
#include <limits>

namespace vmrt::net::hybrid_vsock {

std::string connect_command(std::uint32_t port) { return "CONNECT " + std::to_string(port) + "\n"; }

reply_parser::status reply_parser::fail(std::string why) {
    error_ = std::move(why);
    state_ = status::malformed;
    return state_;
}

// The reply CH writes is exactly `OK <u32>\n` (format!("OK {}\n", port)). Anything else, even
// with extra spaces or a CR, is not something CH sends, so it is refused rather than guessed at.
reply_parser::status reply_parser::feed(char byte) {
    if (state_ != status::incomplete) return state_;
    line_.push_back(byte);
    const std::size_t at = line_.size() - 1;
    constexpr std::string_view prefix = "OK ";
    if (at < prefix.size()) {
        if (byte != prefix[at]) return fail("the reply does not start with \"OK \"");
        return state_;
    }
    if (byte == '\n') {
        if (at == prefix.size()) return fail("the reply has no port number");
        state_ = status::ok;
        return state_;
    }
    if (byte < '0' || byte > '9') return fail("the port number has a non-digit");
    const std::uint64_t next = std::uint64_t{host_port_} * 10 + static_cast<std::uint64_t>(byte - '0');
    if (next > std::numeric_limits<std::uint32_t>::max()) return fail("the port number exceeds 32 bits");
    host_port_ = static_cast<std::uint32_t>(next);
    if (line_.size() >= max_line_bytes)
        return fail("the reply is longer than " + std::to_string(max_line_bytes) + " bytes");
    return state_;
}

reply_parser parse_reply_line(std::string_view line) {
    reply_parser p;
    for (char c : line)
        if (p.feed(c) != reply_parser::status::incomplete) break;
    return p;
}

std::string printable(std::string_view bytes, std::size_t max) {
    std::string out;
    for (std::size_t i = 0; i < bytes.size() && i < max; ++i) {
        const auto c = static_cast<unsigned char>(bytes[i]);
        if (c == '\n') {
            out += "\\n";
        } else if (c >= 0x20 && c < 0x7f && c != '\\') {
            out.push_back(static_cast<char>(c));
        } else {
            char hex[8];
            std::snprintf(hex, sizeof hex, "\\x%02x", c);
            out += hex;
        }
    }
    if (bytes.size() > max) out += "...";
    return out;
}

}  // namespace vmrt::net::hybrid_vsock
