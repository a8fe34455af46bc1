#include "ideal_relay.hpp"

#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <stdexcept>
#include <system_error>

namespace swbench {
namespace {

constexpr unsigned dgram_batch = 64;
constexpr std::size_t dgram_slot_bytes = 2048;
constexpr std::size_t stream_buffer_bytes = 256 << 10;

[[noreturn]] void throw_errno(const char* what) {
    throw std::system_error(errno, std::generic_category(), what);
}
bool would_block(int err) { return err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS || err == EINTR; }

// One input's frames on their way to the next output: what was read and not yet written.
struct lane {
    int in = -1, out = -1;
    std::vector<std::uint8_t> buf;
    std::vector<iovec> iovs;
    std::vector<mmsghdr> msgs;
    std::size_t begin = 0, end = 0;  // pending datagrams [begin, end) or pending bytes [begin, end)
};

}  // namespace

ideal_relay::ideal_relay(framing kind, std::size_t ports) : kind_(kind) {
    for (std::size_t i = 0; i < ports; ++i) {
        int sv[2];
        int type = (kind == framing::dgram ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC;
        // Default socket buffers: the plain hop. 4 MiB buffers measured slower here (64 B stream,
        // 2 ports: 10-14 M vs ~22 M frames/s), likely because the frames in flight outgrow the caches.
        if (::socketpair(AF_UNIX, type, 0, sv) < 0) throw_errno("socketpair");
        endpoint_fds_.emplace_back(sv[0]);
        relay_fds_.emplace_back(sv[1]);
    }
    thread_ = std::thread([this] {
        tid_ = current_tid();
        try {
            run();
        } catch (...) {
            error_ = std::current_exception();
        }
    });
}

ideal_relay::~ideal_relay() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
}

std::vector<int> ideal_relay::endpoints() const {
    std::vector<int> fds;
    for (auto& fd : endpoint_fds_) fds.push_back(fd.get());
    return fds;
}

thread_ref ideal_relay::forwarder() const {
    while (tid_ == 0) std::this_thread::yield();
    return {::getpid(), tid_};
}

void ideal_relay::stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
}

void ideal_relay::run() {
    const std::size_t n = relay_fds_.size();
    std::vector<lane> lanes(n);
    for (std::size_t i = 0; i < n; ++i) {
        auto& l = lanes[i];
        l.in = relay_fds_[i].get();
        l.out = relay_fds_[(i + 1) % n].get();
        if (kind_ == framing::dgram) {
            l.buf.resize(std::size_t{dgram_batch} * dgram_slot_bytes);
            l.iovs.resize(dgram_batch);
            l.msgs.resize(dgram_batch);
            for (unsigned k = 0; k < dgram_batch; ++k) {
                l.iovs[k] = {l.buf.data() + std::size_t{k} * dgram_slot_bytes, dgram_slot_bytes};
                l.msgs[k] = {};
                l.msgs[k].msg_hdr.msg_iov = &l.iovs[k];
                l.msgs[k].msg_hdr.msg_iovlen = 1;
            }
        } else {
            l.buf.resize(stream_buffer_bytes);
        }
    }
    std::vector<pollfd> pfds(2 * n);
    while (!stop_) {
        bool progress = false;
        for (auto& l : lanes) {
            if (l.begin == l.end) {  // nothing pending: read
                l.begin = l.end = 0;
                if (kind_ == framing::dgram) {
                    for (unsigned k = 0; k < dgram_batch; ++k) l.iovs[k].iov_len = dgram_slot_bytes;
                    int got = ::recvmmsg(l.in, l.msgs.data(), dgram_batch, MSG_DONTWAIT, nullptr);
                    if (got < 0 && !would_block(errno)) throw_errno("relay recvmmsg");
                    // sendmmsg sends iov_len bytes: set each one to the datagram's length.
                    for (int k = 0; k < got; ++k)
                        l.iovs[static_cast<std::size_t>(k)].iov_len =
                            l.msgs[static_cast<std::size_t>(k)].msg_len;
                    l.end = got > 0 ? static_cast<std::size_t>(got) : 0;
                } else {
                    ssize_t got = ::recv(l.in, l.buf.data(), l.buf.size(), MSG_DONTWAIT);
                    if (got < 0 && !would_block(errno)) throw_errno("relay recv");
                    if (got == 0) return;  // an endpoint closed: the run is over
                    l.end = got > 0 ? static_cast<std::size_t>(got) : 0;
                }
                progress |= l.end > 0;
            }
            if (l.begin < l.end) {  // pending: write as much as the output takes
                if (kind_ == framing::dgram) {
                    int sent = ::sendmmsg(l.out, l.msgs.data() + l.begin,
                                          static_cast<unsigned>(l.end - l.begin), MSG_DONTWAIT);
                    if (sent < 0 && !would_block(errno)) throw_errno("relay sendmmsg");
                    if (sent > 0) l.begin += static_cast<std::size_t>(sent);
                    progress |= sent > 0;
                } else {
                    ssize_t sent =
                        ::send(l.out, l.buf.data() + l.begin, l.end - l.begin, MSG_DONTWAIT | MSG_NOSIGNAL);
                    if (sent < 0 && !would_block(errno)) throw_errno("relay send");
                    if (sent > 0) l.begin += static_cast<std::size_t>(sent);
                    progress |= sent > 0;
                }
            }
        }
        if (!progress) {
            for (std::size_t i = 0; i < n; ++i) {
                bool pending = lanes[i].begin < lanes[i].end;
                pfds[2 * i] = {lanes[i].in, static_cast<short>(pending ? 0 : POLLIN), 0};
                pfds[2 * i + 1] = {lanes[i].out, static_cast<short>(pending ? POLLOUT : 0), 0};
            }
            if (::poll(pfds.data(), pfds.size(), 5) < 0 && errno != EINTR) throw_errno("relay poll");
        }
    }
}

}  // namespace swbench
