// What a VM's queue tells the VM's strand: the delegate's callbacks (guest stopped, stopped with an
// error, a NIC lost its attachment) and the completions of stops nobody awaits (kill, terminate).
//
// They cross threads through an AF_UNIX datagram socket pair (reliable and ordered on Linux and
// macOS; macOS has no SOCK_SEQPACKET for AF_UNIX): the queue side sends one datagram per
// event (never blocking, from any thread), the instance reads them on its strand. The kernel holds
// what was sent until it is read, so neither side needs the other to be alive: a callback that fires
// while the instance is being destroyed writes into a socket nobody reads, and an instance that is
// gone never sees it. Nothing is ever posted into an io_context from the queue.
#pragma once

#include <vmrt/io/unique_fd.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace vmrt::hv::vz {

enum class vz_event_kind : std::uint8_t {
    guest_stopped = 'G',       ///< -guestDidStopVirtualMachine:
    stopped_with_error = 'E',  ///< -virtualMachine:didStopWithError: (text: the NSError)
    stopped_by_host = 'H',     ///< a -stopWithCompletionHandler: of vmrt's ended the VM (signal: its kind)
    note = 'N',                ///< something worth an event (a NIC disconnected, a failed stop...)
};

struct vz_event {
    vz_event_kind kind = vz_event_kind::note;
    /// stopped_by_host: the signal the stop stands for (SIGTERM: terminate/request_vmm_exit,
    /// SIGKILL: kill), as exit_status reports it.
    int signal = 0;
    std::string text;
};

/// The sending end, shared by the delegate and completion blocks. Thread-safe; never blocks.
class vz_event_sender {
public:
    explicit vz_event_sender(io::unique_fd fd) noexcept : fd_(std::move(fd)) {}
    /// Sends `e` (text cut to what one datagram carries); false if it could not be sent (the
    /// reader is gone, or the socket buffer is full).
    bool send(const vz_event& e) const noexcept;

private:
    io::unique_fd fd_;
};

/// A connected (reader, sender) pair of AF_UNIX datagram sockets, close-on-exec, whose sends never
/// raise SIGPIPE. Throws std::system_error.
std::pair<io::unique_fd, io::unique_fd> make_datagram_pair();

/// Sends one datagram without blocking (and, with `fd_to_pass` >= 0, that descriptor with it,
/// SCM_RIGHTS); false if it could not be sent.
bool send_datagram(int socket, std::string_view data, int fd_to_pass = -1) noexcept;

/// Receives one datagram without blocking into `buffer`; its size, and the descriptor passed with
/// it (close-on-exec; -1 if none). Size -1 with errno set when nothing could be read.
struct received_datagram {
    long size = -1;
    io::unique_fd fd;
};
received_datagram receive_datagram(int socket, char* buffer, std::size_t capacity) noexcept;

/// Decodes one datagram; nothing for a malformed one.
std::optional<vz_event> decode_event(std::string_view datagram);

/// The largest datagram an event takes.
inline constexpr std::size_t max_event_size = 2048;

}  // namespace vmrt::hv::vz
