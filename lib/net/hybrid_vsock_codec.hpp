// The host side of Cloud Hypervisor's hybrid-vsock handshake as a sans-I/O layer
// (shared/reference/cloud-hypervisor.md §4): the `CONNECT <port>\n` command a host client sends
// on the VM's vsock Unix socket, and a parser for the `OK <host_port>\n` line CH answers with.
//
// The parser is fed one byte at a time and says when the line is complete, so the caller never
// reads past the `\n`: every byte after it is stream data from the guest service.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace vmrt::net::hybrid_vsock {

/// CH accepts a command of at most 32 bytes including the `\n` (§4); its reply is shorter
/// (`OK 4294967295\n` is 14 bytes), so 32 bounds the reply line too.
inline constexpr std::size_t max_line_bytes = 32;

/// `CONNECT <port>\n`, always with the newline (CH issue #6798: a command without it can crash
/// the VM).
std::string connect_command(std::uint32_t port);

/// Reads the reply line byte by byte.
class reply_parser {
public:
    enum class status {
        incomplete,  ///< feed more bytes
        ok,          ///< `OK <decimal>\n` read; host_port() holds the number
        malformed,   ///< anything else; error() says what, line() holds the bytes
    };

    /// Feeds one byte. After a verdict (ok or malformed) further bytes are not consumed and the
    /// verdict stays.
    status feed(char byte);
    status state() const noexcept { return state_; }
    std::uint32_t host_port() const noexcept { return host_port_; }
    /// The bytes fed so far (including the `\n` once complete).
    const std::string& line() const noexcept { return line_; }
    /// Why the line is malformed; empty otherwise.
    const std::string& error() const noexcept { return error_; }

private:
    status fail(std::string why);

    status state_ = status::incomplete;
    std::string line_;
    std::string error_;
    std::uint32_t host_port_ = 0;
};

/// Parses one complete reply line (`line` must end with its `\n`); the same verdict as feeding
/// it byte by byte.
reply_parser parse_reply_line(std::string_view line);

/// `bytes` with anything that is not printable ASCII written as \xNN (and \n as \n), cut to
/// `max` input bytes: safe to put in an error message.
std::string printable(std::string_view bytes, std::size_t max = 64);

}  // namespace vmrt::net::hybrid_vsock
