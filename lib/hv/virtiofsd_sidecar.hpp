// A virtiofsd daemon that serves one shared directory to one VM, supervised for the VM's lifetime.
//
// The sidecar binds and listens on the vhost-user socket itself and hands the listening fd to the
// daemon (`--fd=N`), keeping its own copy. So the socket exists before the VMM starts (no race,
// no waiting for the daemon to create it), and it never disappears while the sidecar lives.
//
// virtiofsd serves exactly one frontend connection and exits when that frontend disconnects
// (measured with QEMU 7.2's daemon: exit 0 about 1 ms after the close; the Rust one does the same,
// cloud-hypervisor#4750). Cloud Hypervisor disconnects on every guest reboot and reconnects at
// once, so while the sidecar is *armed* a daemon that exits is started again at once on the same
// listening fd: the VMM's reconnect waits in the socket's backlog and the new daemon accepts it
// (also measured: a connection queued while no daemon runs is served by the next one). A daemon
// that keeps failing fast is not restarted for ever: `crash_loop_limit` failed exits in a row, each
// within `quick_exit` of its start, end the restarts, and the failure is reported.
//
// Threading: like io::process, use a sidecar from its executor's thread only.
#pragma once

#include <vmrt/vm_state.hpp>

#include <boost/asio/any_io_executor.hpp>

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace vmrt::hv {

struct virtiofsd_options {
    std::filesystem::path binary;      ///< /usr/lib/qemu/virtiofsd (QEMU's C daemon) or the Rust one
    std::filesystem::path shared_dir;  ///< the host directory the guest sees
    std::filesystem::path socket;      ///< vhost-user socket the VMM connects to (bound by the sidecar)
    bool read_only = false;            ///< only the Rust daemon can do this (`--readonly`)
    std::filesystem::path log_file;    ///< the daemon's stdout+stderr; restarts append to it
    std::string cache = "auto";        ///< C: auto|always|none; Rust: auto|always|metadata|never
    std::string tag;                   ///< the share's name, for messages
    unsigned crash_loop_limit = 5;     ///< this many quick failed exits in a row end the restarts
    std::chrono::milliseconds quick_exit{2000};  ///< "quick": a failed exit this soon after its start
};

/// Which virtiofsd a binary is; they take different options.
enum class virtiofsd_flavour {
    qemu_c,  ///< QEMU's C daemon (QEMU <= 7.2, Debian 12's /usr/lib/qemu/virtiofsd): `-o key=value`
    rust,    ///< the Rust daemon (gitlab.com/virtio-fs/virtiofsd): `--shared-dir`, `--readonly`
};

class virtiofsd_sidecar {
public:
    using note_fn = std::function<void(std::string)>;

    /// Binds and listens on `opts.socket` (a stale socket file there is replaced; one that
    /// something still listens on, or a file that is not a socket, is refused), then starts the
    /// daemon, disarmed. Throws vmrt::error(errc::vmm_start_failed) with the reason (and the
    /// daemon's log tail) if the share cannot be served or the daemon cannot be started; nothing
    /// is left behind then. `note` hears every exit and restart of the daemon.
    virtiofsd_sidecar(boost::asio::any_io_executor ex, virtiofsd_options opts, note_fn note = {});
    /// Kills and reaps the daemon (its whole process group) and removes the socket file.
    ~virtiofsd_sidecar();
    virtiofsd_sidecar(const virtiofsd_sidecar&) = delete;
    virtiofsd_sidecar& operator=(const virtiofsd_sidecar&) = delete;

    /// Why `opts` cannot be served by its binary (missing, not executable, read-only with a daemon
    /// that cannot do it, an unknown cache mode); nothing if it can. Runs `binary --help` (once per
    /// binary, cached, bounded to 2 s) only when the answer depends on the flavour.
    static std::optional<std::string> cannot_serve(const virtiofsd_options& opts);
    /// The flavour of an installed binary, from its `--help` text; nothing if it cannot be run or
    /// is not recognised. Cached per path.
    static std::optional<virtiofsd_flavour> flavour_of(const std::filesystem::path& binary);
    /// The daemon's argv[1..] for serving `opts` on the inherited listening fd `listen_fd`: the
    /// Rust daemon's own options for `rust`, otherwise QEMU's `-o` options (which the Rust daemon
    /// also accepts, so a binary that was not probed gets those).
    static std::vector<std::string> daemon_args(const virtiofsd_options& opts,
                                                std::optional<virtiofsd_flavour> flavour, int listen_fd);

    /// The VM is live: from now on a daemon that exits is started again at once. Starts one now if
    /// none runs (and forgets an earlier crash-loop failure).
    void arm();
    /// The VM is stopping: a daemon that exits from now on stays down.
    void disarm() noexcept;
    /// Disarms, kills and reaps the daemon now, for good (arm() does nothing afterwards). The
    /// socket stays until destruction.
    void stop() noexcept;

    bool armed() const noexcept;
    /// A daemon runs (its exit has not been observed yet).
    bool running() const noexcept;
    /// The current daemon's pid; 0 when none runs.
    pid_t pid() const noexcept;
    /// How many times a daemon was started again after an exit (arm() included).
    unsigned restarts() const noexcept;
    /// The last observed exit of a daemon.
    std::optional<exit_status> last_exit() const noexcept;
    /// Set when the restarts were given up (crash loop, or a restart that could not spawn).
    std::optional<std::string> failure() const;
    const virtiofsd_options& options() const noexcept;

    struct state;

private:
    std::shared_ptr<state> s_;  // shared with the coroutine that watches the daemon
};

}  // namespace vmrt::hv
