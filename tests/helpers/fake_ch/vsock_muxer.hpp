// The hybrid-vsock side of vmrt-fake-cloud-hypervisor: an emulation of CH's vsock muxer
// (shared/reference/cloud-hypervisor.md §4; Firecracker's virtio-devices/src/vsock/unix/muxer.rs)
// with an emulated guest behind it.
//
// While the VM's vsock device exists, the muxer listens on the device's `socket` path. A host
// connection sends `CONNECT <port>\n` (keyword case-insensitive, spaces around the port trimmed,
// at most 32 bytes with the `\n`, read byte by byte so nothing after the `\n` is swallowed). If
// the emulated guest listens on that port the muxer answers `OK <host_port>\n` (host_port = 2^30 +
// a counter) and the guest service echoes every byte back until EOF. If the guest does not listen,
// or the command is malformed or too long, the connection is closed without a message, as CH does.
//
// The emulated guest comes from the environment (never from CH's command line):
//   VMRT_FAKE_CH_VSOCK_LISTEN=<port>,<port>...   guest ports with an echo service
//   VMRT_FAKE_CH_VSOCK_GUEST_CONNECT=<port>:<text>[;<port>:<text>...]
//        after the device comes up, the guest connects to CID 2 port <port>: the muxer connects to
//        `<socket>_<port>` (retrying every 50 ms while nothing listens there, as a guest service
//        would), writes <text>, then echoes back whatever it reads until EOF
//   VMRT_FAKE_CH_FAULTS (comma-separated, shared with the API faults):
//        vsock-bad-reply  answer `NOPE\n` instead of `OK <port>\n` to a valid CONNECT
//        vsock-silent     read the command and never answer: the guest does not respond, so the
//                         muxer closes the connection after CH's 2 s (CONN_REQUEST_TIMEOUT_MS)
//
// The socket file is removed when the device goes (VM shut down, deleted or rebooted, the vsock
// device removed, the VMM exiting cleanly); a SIGKILL leaves it behind, as with CH.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/json.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace fake_ch {

class vsock_muxer {
public:
    struct guest_connection {
        std::uint32_t port = 0;
        std::string text;
    };
    struct settings {
        std::set<std::uint32_t> listening;
        std::vector<guest_connection> guest_connects;
        bool bad_reply = false;
        bool silent = false;
    };
    /// The emulated guest's behaviour from VMRT_FAKE_CH_VSOCK_* and VMRT_FAKE_CH_FAULTS.
    static settings from_environment();

    vsock_muxer(boost::asio::any_io_executor ex, settings s);
    vsock_muxer(const vsock_muxer&) = delete;
    vsock_muxer& operator=(const vsock_muxer&) = delete;
    ~vsock_muxer();

    /// The VM's vsock device comes up with `vsock` ({"cid":N,"socket":P,...}): binds P. Returns
    /// CH's root error text when that fails (P exists: EADDRINUSE; CH never unlinks it, §10.2).
    std::optional<std::string> start(const boost::json::object& vsock);
    /// The device goes: closes the listener and every connection, removes the socket file.
    void stop();
    bool running() const { return session_ != nullptr; }

    struct session;

private:
    boost::asio::any_io_executor ex_;
    std::shared_ptr<const settings> settings_;
    // CH's allocator of host-side ports (bit 30 set), shared by the device's successive sessions.
    std::shared_ptr<std::uint32_t> next_host_port_ = std::make_shared<std::uint32_t>(1u << 30);
    std::shared_ptr<session> session_;
};

}  // namespace fake_ch
