// Debian's vde_switch (vde2 2.3.2), run as a child of the bench in a private temporary directory,
// and N libvdeplug (vdeplug4) connections to it.
//
// vde_switch has no "no console" option: in the foreground it reads its console from stdin and
// exits ("EOF on stdin, cleaning up") when stdin ends, removing its control directory. So its
// stdin is a pipe whose write end only the bench holds: however the bench ends, even killed, the
// pipe closes and the switch exits with it. It also gets SIGTERM (which it handles the same way)
// if the bench dies, and the destructor closes the pipe, waits briefly, then kills the process
// group and removes the temporary directory. Only a SIGKILLed bench leaves that (empty) directory.
#pragma once

#include <vmrt/io/unique_fd.hpp>

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <vector>

extern "C" struct vdeconn;

namespace swbench {

class vde_switch_child {
public:
    /// Starts `vde_switch -s <tmp>/ctl` and waits until its control socket accepts connections.
    /// Throws std::runtime_error (with the switch's output) if it does not come up.
    explicit vde_switch_child(const std::filesystem::path& temp_base);
    vde_switch_child(const vde_switch_child&) = delete;
    vde_switch_child& operator=(const vde_switch_child&) = delete;
    ~vde_switch_child();

    const std::filesystem::path& control_dir() const { return ctl_; }
    /// vde_switch's process (single-threaded).
    pid_t pid() const { return pid_; }
    /// What the switch printed (stdout and stderr), for diagnostics.
    std::string output() const;

private:
    void shut_down() noexcept;

    std::filesystem::path dir_, ctl_;
    vmrt::io::unique_fd console_;  ///< write end of the switch's stdin
    vmrt::io::unique_fd log_;      ///< anonymous file (O_TMPFILE) holding its output
    pid_t pid_ = -1;
};

/// libvdeplug connections to a vde_switch: the endpoints of the vde series.
class vde_connections {
public:
    /// vde_open("vde://<ctl>") `count` times. Throws std::runtime_error on failure.
    vde_connections(const std::filesystem::path& control_dir, std::size_t count);
    vde_connections(const vde_connections&) = delete;
    vde_connections& operator=(const vde_connections&) = delete;
    ~vde_connections();

    /// vde_datafd of each connection: a datagram socket, one Ethernet frame per datagram, which
    /// vde_send/vde_recv simply send on and receive from. The generator batches on it directly
    /// (sendmmsg/recvmmsg), as it does on every other series' endpoints.
    std::vector<int> data_fds() const;

private:
    std::vector<vdeconn*> conns_;
};

}  // namespace swbench
