// A TAP device opened for a VMM: the fd of /dev/net/tun attached to a named TAP interface inside a
// network namespace, ready to be handed to Cloud Hypervisor (`--net fd=[N]`) or any VMM that takes
// a pre-opened TAP fd.
//
// Namespaces: the device is created (or found) in the named namespace from a short-lived thread
// that enters it with setns(CLONE_NEWNET); setns changes only that thread, so the caller's threads
// never change namespace. The fd stays bound to the device (and so to that namespace) after the
// thread is gone.
//
// Ownership and lifetime:
//  * created() says whether vmrt created the interface. Such a device is not persistent
//    (TUNSETPERSIST is never set), so the kernel deletes it when the last file descriptor attached
//    to it is closed. A VMM that received a dup (or inherited the fd) keeps it alive until the VMM
//    closes it or exits; then it disappears without anyone deleting it. Nothing in vmrt deletes
//    it by name, so a device of the same name created later by someone else is never touched.
//    (Removing it while a VMM still holds it would take a netlink RTM_DELLINK, `ip link del`:
//    that works on a TAP with open fds, and the holders' reads and writes then fail with EBADFD.
//    vmrt has no reason to do it: with TUNSETPERSIST left at its default 0 the device goes away
//    by itself when the VMM exits, which tap_device_test measures.)
//  * A pre-existing (persistent) TAP is attached to, never deleted: closing our fd detaches us and
//    the device stays, as its owner configured it (its link state is left alone too).
#pragma once

#include <vmrt/io/unique_fd.hpp>

#include <optional>
#include <string>

namespace vmrt::net {

struct tap_options {
    std::string name;                  ///< interface name (is_valid_ifname)
    std::optional<std::string> netns;  ///< a name in /run/netns; unset: the caller's namespace
    bool vnet_hdr = true;              ///< IFF_VNET_HDR: frames carry a virtio-net header (what CH uses)
    bool multi_queue = false;          ///< IFF_MULTI_QUEUE: more queues with open_queue()
};

class tap_device {
public:
    /// Opens /dev/net/tun and attaches it (TUNSETIFF, IFF_TAP | IFF_NO_PI, plus IFF_VNET_HDR and
    /// IFF_MULTI_QUEUE as asked) to the device `opts.name` in `opts.netns`, creating the device if
    /// it does not exist; a device vmrt created is brought up (IFF_UP). The fd is O_CLOEXEC.
    /// Errors (vmrt::error, message naming the device and the namespace):
    ///  * invalid name or namespace name: errc::invalid_spec;
    ///  * /run/netns/NAME absent: errc::not_found;
    ///  * an existing interface of that name that is not a TAP (or a TAP whose multi-queue setting
    ///    differs): EINVAL; a single-queue TAP that another process has open: EBUSY;
    ///  * no permission (CAP_NET_ADMIN, CAP_SYS_ADMIN for setns, /dev/net/tun access): EPERM/EACCES;
    ///    other system errors keep their errno.
    static tap_device open(const tap_options& opts);

    tap_device() = default;
    tap_device(tap_device&&) noexcept = default;
    tap_device& operator=(tap_device&&) noexcept = default;
    ~tap_device() = default;  // closes the fd; see the lifetime notes at the top

    /// The fd attached to the device (the first queue); -1 after release_fd() or on a moved-from object.
    int fd() const noexcept { return fd_.get(); }
    const std::string& name() const noexcept { return name_; }
    const std::optional<std::string>& netns() const noexcept { return netns_; }
    /// True if this call created the interface; false if it attached to one that existed.
    bool created() const noexcept { return created_; }
    bool vnet_hdr() const noexcept { return vnet_hdr_; }
    bool multi_queue() const noexcept { return multi_queue_; }

    /// A new O_CLOEXEC descriptor for the same open file (to hand to a VMM; the VMM's copy keeps
    /// a created device alive until it is closed).
    io::unique_fd dup_fd() const;
    /// Gives up the fd to the caller (who then decides the device's lifetime by closing it).
    io::unique_fd release_fd() noexcept { return std::move(fd_); }

    /// Another queue of a multi-queue device (CH: `fd=[a,b],num_queues=4`), opened in the same
    /// namespace. errc::invalid_state unless opened with multi_queue.
    io::unique_fd open_queue() const;

private:
    tap_device(io::unique_fd fd, const tap_options& opts, bool created);

    io::unique_fd fd_;
    std::string name_;
    std::optional<std::string> netns_;
    bool created_ = false;
    bool vnet_hdr_ = false;
    bool multi_queue_ = false;
};

}  // namespace vmrt::net
