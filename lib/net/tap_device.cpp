// tap_device: TUNSETIFF inside a network namespace, entered on a dedicated thread.
//
// How "created or attached" is decided without a race: the name is looked up first; if it is
// absent, TUNSETIFF is called with IFF_TUN_EXCL, which the kernel refuses with EBUSY when a device
// of that name exists by then. So created() == true means this call's TUNSETIFF made the device,
// never a guess. On that EBUSY (someone created it between the look-up and the ioctl) we attach
// to it like to any pre-existing device.
//
// What TUNSETIFF does with an existing name (drivers/net/tun.c, tun_set_iff):
//  * a TAP: attaches (a persistent TAP nobody holds, or a multi-queue one as another queue);
//  * a single-queue TAP that another fd is attached to: EBUSY;
//  * anything else (lo, a dummy, a bridge, a TUN), or a TAP whose IFF_MULTI_QUEUE setting differs
//    from ours: EINVAL. Both become errors that say which case it probably is.
#include <vmrt/error.hpp>
#include <vmrt/net/tap_device.hpp>
#include <vmrt/vm_spec.hpp>

#include <boost/system/system_category.hpp>

#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <exception>
#include <functional>
#include <string>
#include <thread>

namespace vmrt::net {
namespace {

std::string quote(std::string_view s) { return "\"" + std::string(s) + "\""; }

std::string describe(const std::string& name, const std::optional<std::string>& netns) {
    return "TAP device " + quote(name) +
           (netns ? " in network namespace " + quote(*netns)
                  : std::string(" in the caller's network namespace"));
}

[[noreturn]] void fail(error_code ec, std::string message) {
    diagnostics diag;
    diag.message = std::move(message);
    throw error(ec, std::move(diag));
}

[[noreturn]] void fail_errno(int err, const std::string& message) {
    fail(error_code(err, boost::system::system_category()), message + ": " + std::strerror(err));
}

io::unique_fd open_netns(const std::string& netns) {
    const std::string path = "/run/netns/" + netns;
    io::unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd) return fd;
    const int err = errno;
    if (err == ENOENT)
        fail(errc::not_found, "network namespace " + quote(netns) + " does not exist (no " + path + ")");
    fail_errno(err, "cannot open network namespace " + quote(netns) + " (" + path + ")");
}

/// Runs `work` inside the namespace `nsfd` refers to, on a thread of its own that ends with it,
/// so the calling thread's namespace never changes; exceptions are passed back. With no
/// namespace, runs it here.
template <typename Result>
Result run_in_netns(const io::unique_fd* nsfd, const std::string& ns_label, std::function<Result()> work) {
    if (nsfd == nullptr) return work();
    std::optional<Result> result;
    std::exception_ptr failure;
    std::thread([&] {
        try {
            if (::setns(nsfd->get(), CLONE_NEWNET) != 0) {
                const int err = errno;
                if (err == EINVAL)
                    fail(error_code(err, boost::system::system_category()),
                         ns_label + " is not a network namespace");
                fail_errno(err, "cannot enter " + ns_label);
            }
            result.emplace(work());
        } catch (...) {
            failure = std::current_exception();
        }
    }).join();
    if (failure) std::rethrow_exception(failure);
    return std::move(*result);
}

short tap_flags(const tap_options& opts) {
    short flags = IFF_TAP | IFF_NO_PI;
    if (opts.vnet_hdr) flags |= IFF_VNET_HDR;
    if (opts.multi_queue) flags |= IFF_MULTI_QUEUE;
    return flags;
}

ifreq make_ifreq(const std::string& name, short flags) {
    ifreq ifr{};
    std::memcpy(ifr.ifr_name, name.data(), name.size());  // validated: at most IFNAMSIZ - 1 bytes
    ifr.ifr_flags = flags;
    return ifr;
}

/// TUNSETIFF on a fresh /dev/net/tun fd; returns the errno instead of throwing.
int try_set_iff(io::unique_fd& fd, const std::string& name, short flags) {
    fd.reset(::open("/dev/net/tun", O_RDWR | O_CLOEXEC));
    if (!fd) return errno;
    ifreq ifr = make_ifreq(name, flags);
    if (::ioctl(fd.get(), TUNSETIFF, &ifr) == 0) return 0;
    const int err = errno;
    fd.reset();
    return err;
}

[[noreturn]] void fail_set_iff(int err, const std::string& what, bool multi_queue) {
    switch (err) {
    case EINVAL:
        fail_errno(err, "cannot attach to " + what +
                            ": an interface of that name exists and is not a TAP device" +
                            (multi_queue ? " (or is a TAP without IFF_MULTI_QUEUE)"
                                         : " (or is a multi-queue TAP: set multi_queue)"));
    case EBUSY:
        fail_errno(err, "cannot attach to " + what +
                            ": it is a single-queue TAP that another file descriptor is already attached to");
    case EPERM:
    case EACCES:
        fail_errno(err, "cannot open " + what +
                            ": not permitted (needs CAP_NET_ADMIN, or to be the persistent TAP's owner or "
                            "group, and access to /dev/net/tun)");
    default:
        fail_errno(err, "TUNSETIFF failed for " + what);
    }
}

void bring_up(const std::string& name, const std::string& what) {
    // Any socket reaches the device ioctls (netdevice(7)); it acts in the socket's namespace,
    // which is this thread's.
    io::unique_fd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!sock) fail_errno(errno, "cannot bring up " + what + ": socket");
    ifreq ifr = make_ifreq(name, 0);
    if (::ioctl(sock.get(), SIOCGIFFLAGS, &ifr) != 0) fail_errno(errno, "cannot read the flags of " + what);
    ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
    if (::ioctl(sock.get(), SIOCSIFFLAGS, &ifr) != 0) fail_errno(errno, "cannot bring up " + what);
}

struct attached {
    io::unique_fd fd;
    bool created = false;
};

/// The whole job, in the target namespace.
attached attach_here(const tap_options& opts, const std::string& what) {
    const short flags = tap_flags(opts);
    attached out;
    if (::if_nametoindex(opts.name.c_str()) == 0) {
        const int err = try_set_iff(out.fd, opts.name, static_cast<short>(flags | IFF_TUN_EXCL));
        if (err == 0) {
            out.created = true;
            // If this fails, `out.fd` closes on the way out and the new device vanishes with it.
            bring_up(opts.name, what);
            return out;
        }
        if (err != EBUSY) fail_set_iff(err, what, opts.multi_queue);
        // EBUSY with IFF_TUN_EXCL: the name appeared since the look-up; attach to it below.
    }
    const int err = try_set_iff(out.fd, opts.name, flags);
    if (err != 0) fail_set_iff(err, what, opts.multi_queue);
    return out;
}

}  // namespace

tap_device::tap_device(io::unique_fd fd, const tap_options& opts, bool created)
    : fd_(std::move(fd)), name_(opts.name), netns_(opts.netns), created_(created), vnet_hdr_(opts.vnet_hdr),
      multi_queue_(opts.multi_queue) {}

tap_device tap_device::open(const tap_options& opts) {
    const std::string what = describe(opts.name, opts.netns);
    if (!is_valid_ifname(opts.name))
        fail(errc::invalid_spec, "invalid TAP device name " + quote(opts.name) +
                                     ": a Linux interface name is 1 to 15 bytes, without '/', ':' or "
                                     "whitespace, and not \".\" or \"..\"");
    if (opts.netns && !is_valid_netns_name(*opts.netns))
        fail(errc::invalid_spec, "invalid network namespace name " + quote(*opts.netns) + " for " + what +
                                     ": 1 to 255 bytes, no '/', not \".\" or \"..\"");
    io::unique_fd nsfd;
    if (opts.netns) nsfd = open_netns(*opts.netns);
    auto result = run_in_netns<attached>(opts.netns ? &nsfd : nullptr,
                                         "network namespace " + quote(opts.netns.value_or("")),
                                         [&] { return attach_here(opts, what); });
    return tap_device(std::move(result.fd), opts, result.created);
}

io::unique_fd tap_device::dup_fd() const {
    if (!fd_) fail(errc::invalid_state, "the " + describe(name_, netns_) + " has no open fd");
    io::unique_fd copy(::fcntl(fd_.get(), F_DUPFD_CLOEXEC, 0));
    if (!copy) fail_errno(errno, "cannot duplicate the fd of " + describe(name_, netns_));
    return copy;
}

io::unique_fd tap_device::open_queue() const {
    const std::string what = describe(name_, netns_);
    if (!multi_queue_ || !fd_)
        fail(errc::invalid_state, "cannot open another queue of " + what +
                                      (fd_ ? ": it was not opened with multi_queue" : ": it has no open fd"));
    // The namespace comes from the device itself (TUNGETDEVNETNS), not from its name, which may
    // have been deleted or reused since open().
    io::unique_fd nsfd(::ioctl(fd_.get(), TUNGETDEVNETNS));
    if (!nsfd) fail_errno(errno, "cannot find the network namespace of " + what);
    tap_options opts{.name = name_, .netns = netns_, .vnet_hdr = vnet_hdr_, .multi_queue = true};
    return run_in_netns<io::unique_fd>(&nsfd, "the network namespace of " + what, [&] {
        io::unique_fd queue;
        if (const int err = try_set_iff(queue, opts.name, tap_flags(opts)); err != 0)
            fail_set_iff(err, what, true);
        return queue;
    });
}

}  // namespace vmrt::net
