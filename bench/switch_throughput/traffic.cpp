#include "traffic.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

namespace swbench {
namespace {

using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr unsigned dgram_batch = 64;                  // frames per sendmmsg / recvmmsg
constexpr std::size_t stream_chunk_bytes = 64 << 10;  // bytes per write, rounded down to whole frames
constexpr std::size_t stream_read_bytes = 256 << 10;
constexpr std::size_t dgram_slot_bytes = 2048;  // frames here are at most 1514 bytes
constexpr int calls_per_pass = 16;              // per endpoint, before moving to the next one
constexpr auto drain_quiet = 100ms;             // the drain ends after this long with nothing new
constexpr auto drain_limit = 2s;

[[noreturn]] void throw_errno(const std::string& what) {
    throw std::system_error(errno, std::generic_category(), what);
}

bool would_block(int err) { return err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS; }

void make_nonblocking(int fd) {
    int flags = ::fcntl(fd, F_GETFL);
    if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) throw_errno("fcntl(O_NONBLOCK)");
}

// Sends one endpoint's frames, batched, never blocking.
class sender {
public:
    sender(int fd, framing kind, std::vector<std::uint8_t> frame)
        : fd_(fd), kind_(kind), frame_(std::move(frame)) {
        if (kind_ == framing::dgram) {
            // On the heap, not in the object: senders are moved into a vector.
            iov_.push_back({frame_.data(), frame_.size()});
            msgs_.resize(dgram_batch);
            for (auto& m : msgs_) {
                m = {};
                m.msg_hdr.msg_iov = iov_.data();
                m.msg_hdr.msg_iovlen = 1;
            }
        } else {
            record_bytes_ = frame_.size() + 4;
            std::size_t records = std::max<std::size_t>(1, stream_chunk_bytes / record_bytes_);
            for (std::size_t i = 0; i < records; ++i) append_stream_record(chunk_, frame_);
        }
    }

    // One batched send; true if the kernel took anything.
    bool pump() {
        if (kind_ == framing::dgram) {
            int n = ::sendmmsg(fd_, msgs_.data(), dgram_batch, MSG_DONTWAIT);
            if (n < 0) {
                if (would_block(errno) || errno == EINTR) return false;
                throw_errno("sendmmsg");
            }
            frames_ += static_cast<std::uint64_t>(n);
            return n > 0;
        }
        ssize_t n =
            ::send(fd_, chunk_.data() + offset_, chunk_.size() - offset_, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0) {
            if (would_block(errno) || errno == EINTR) return false;
            throw_errno("send");
        }
        bytes_ += static_cast<std::uint64_t>(n);
        offset_ = (offset_ + static_cast<std::size_t>(n)) % chunk_.size();
        return n > 0;
    }

    // Whole frames handed to the kernel (a frame cut by the end of the window does not count).
    std::uint64_t frames_sent() const { return kind_ == framing::dgram ? frames_ : bytes_ / record_bytes_; }
    int fd() const { return fd_; }

private:
    int fd_;
    framing kind_;
    std::vector<std::uint8_t> frame_;
    std::vector<iovec> iov_;
    std::vector<mmsghdr> msgs_;
    std::vector<std::uint8_t> chunk_;
    std::size_t record_bytes_ = 0, offset_ = 0;
    std::uint64_t frames_ = 0, bytes_ = 0;
};

// Reassembles length-prefixed frames from a byte stream, keeping only what is counted: the
// length and the destination MAC of each frame.
class stream_parser {
public:
    template <typename OnFrame>
    void feed(const std::uint8_t* p, std::size_t n, OnFrame&& on_frame) {
        while (n > 0) {
            if (body_left_ == 0) {
                if (hdr_have_ == 0 && n >= 4) {
                    len_ = be32(p);
                    p += 4;
                    n -= 4;
                } else {
                    std::size_t take = std::min<std::size_t>(4 - hdr_have_, n);
                    std::memcpy(hdr_ + hdr_have_, p, take);
                    hdr_have_ += take;
                    p += take;
                    n -= take;
                    if (hdr_have_ < 4) return;
                    len_ = be32(hdr_);
                    hdr_have_ = 0;
                }
                // The generator only sends 14..1514-byte frames and the switch never changes them.
                if (len_ < 14 || len_ > 65535)
                    throw std::runtime_error("stream framing broken: length prefix " + std::to_string(len_));
                body_left_ = len_;
                dst_have_ = 0;
            }
            std::size_t take = std::min<std::size_t>(body_left_, n);
            if (dst_have_ < 6) {
                std::size_t d = std::min<std::size_t>(6 - dst_have_, take);
                std::memcpy(dst_.data() + dst_have_, p, d);
                dst_have_ += d;
            }
            p += take;
            n -= take;
            body_left_ -= take;
            if (body_left_ == 0) on_frame(dst_);
        }
    }

private:
    static std::uint32_t be32(const std::uint8_t* b) {
        return (std::uint32_t{b[0]} << 24) | (std::uint32_t{b[1]} << 16) | (std::uint32_t{b[2]} << 8) | b[3];
    }
    std::uint8_t hdr_[4]{};
    std::size_t hdr_have_ = 0, dst_have_ = 0;
    std::uint32_t len_ = 0, body_left_ = 0;
    mac dst_{};
};

struct rx_counts {
    std::uint64_t frames = 0;  ///< every frame received
    std::uint64_t to_me = 0;   ///< addressed to this endpoint
};

// Receives one endpoint's frames, batched, never blocking.
class receiver {
public:
    receiver(int fd, framing kind, mac me) : fd_(fd), kind_(kind), me_(me) {
        if (kind_ == framing::dgram) {
            buf_.resize(std::size_t{dgram_batch} * dgram_slot_bytes);
            iovs_.resize(dgram_batch);
            msgs_.resize(dgram_batch);
            for (unsigned i = 0; i < dgram_batch; ++i) {
                iovs_[i] = {buf_.data() + std::size_t{i} * dgram_slot_bytes, dgram_slot_bytes};
                msgs_[i] = {};
                msgs_[i].msg_hdr.msg_iov = &iovs_[i];
                msgs_[i].msg_hdr.msg_iovlen = 1;
            }
        } else {
            buf_.resize(stream_read_bytes);
        }
    }

    // Reads what is there (a bounded amount); true if anything came.
    bool pump(rx_counts& c) {
        bool progress = false;
        for (int call = 0; call < calls_per_pass; ++call) {
            if (kind_ == framing::dgram) {
                int n = ::recvmmsg(fd_, msgs_.data(), dgram_batch, MSG_DONTWAIT, nullptr);
                if (n < 0) {
                    if (would_block(errno) || errno == EINTR) break;
                    throw_errno("recvmmsg");
                }
                if (n == 0) break;
                progress = true;
                for (int i = 0; i < n; ++i) {
                    ++c.frames;
                    if (msgs_[static_cast<std::size_t>(i)].msg_len >= 6 &&
                        std::memcmp(iovs_[static_cast<std::size_t>(i)].iov_base, me_.data(), 6) == 0)
                        ++c.to_me;
                }
                if (static_cast<unsigned>(n) < dgram_batch) break;
            } else {
                ssize_t n = ::recv(fd_, buf_.data(), buf_.size(), MSG_DONTWAIT);
                if (n < 0) {
                    if (would_block(errno) || errno == EINTR) break;
                    throw_errno("recv");
                }
                if (n == 0) throw std::runtime_error("an endpoint's stream was closed by the switch");
                progress = true;
                parser_.feed(buf_.data(), static_cast<std::size_t>(n), [&](const mac& dst) {
                    ++c.frames;
                    if (dst == me_) ++c.to_me;
                });
                if (static_cast<std::size_t>(n) < buf_.size()) break;
            }
        }
        return progress;
    }

    int fd() const { return fd_; }

private:
    int fd_;
    framing kind_;
    mac me_;
    std::vector<std::uint8_t> buf_;
    std::vector<iovec> iovs_;
    std::vector<mmsghdr> msgs_;
    stream_parser parser_;
};

void wait_for(std::vector<pollfd>& pfds, std::chrono::milliseconds timeout) {
    if (::poll(pfds.data(), pfds.size(), static_cast<int>(timeout.count())) < 0 && errno != EINTR)
        throw_errno("poll");
}

// Sends one broadcast frame from each endpoint (retrying while the socket is full).
void send_broadcasts(std::span<const int> fds, framing kind) {
    for (std::size_t i = 0; i < fds.size(); ++i) {
        auto frame = make_frame(broadcast_mac, endpoint_mac(i), 64);
        std::vector<std::uint8_t> wire;
        if (kind == framing::dgram)
            wire = frame;
        else
            append_stream_record(wire, frame);
        std::size_t done = 0;
        auto deadline = clock_type::now() + 2s;
        while (done < wire.size()) {
            ssize_t n = ::send(fds[i], wire.data() + done, wire.size() - done, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (n > 0) {
                done += static_cast<std::size_t>(n);
                continue;
            }
            if (n < 0 && !would_block(errno) && errno != EINTR) throw_errno("send (warm-up)");
            if (clock_type::now() > deadline) throw std::runtime_error("warm-up: an endpoint cannot send");
            std::vector<pollfd> p{{fds[i], POLLOUT, 0}};
            wait_for(p, 10ms);
        }
    }
}

// Every endpoint must receive the other endpoints' broadcasts: then the switch has learned
// every address, and the window measures unicast forwarding only.
void warm_up(std::span<const int> fds, framing kind, std::vector<receiver>& receivers,
             const std::atomic<bool>& interrupted) {
    send_broadcasts(fds, kind);
    std::vector<rx_counts> counts(fds.size());
    std::vector<pollfd> pfds;
    for (int fd : fds) pfds.push_back({fd, POLLIN, 0});
    auto deadline = clock_type::now() + 3s;
    for (;;) {
        bool all = true;
        for (std::size_t i = 0; i < receivers.size(); ++i) {
            receivers[i].pump(counts[i]);
            all = all && counts[i].frames >= fds.size() - 1;
        }
        if (all || interrupted) return;
        if (clock_type::now() > deadline)
            throw std::runtime_error("warm-up: the broadcasts were not flooded to every endpoint");
        wait_for(pfds, 10ms);
    }
}

struct shared_state {
    std::atomic<int> ready{0};  // generator threads waiting for the start
    thread_ref tids[2];         // the generator threads, written before `ready` counts them
    std::atomic<bool> go{false};
    std::atomic<bool> sending{true};
    std::atomic<bool> senders_done{false};
    std::atomic<bool> failed{false};
    std::atomic<std::uint64_t> offered{0};  // final, once senders_done
    std::atomic<std::uint64_t> delivered{0};
    std::atomic<std::uint64_t> misdelivered{0};
    clock_type::time_point stopped_at{};  // written before `sending` is cleared
};

void publish_offered(const std::vector<sender>& senders, shared_state& st) {
    std::uint64_t offered = 0;
    for (auto& s : senders) offered += s.frames_sent();
    st.offered = offered;
}

// A generator thread: sends, receives, or both (with one thread, they take turns).
void run_worker(int slot, std::vector<sender>* senders, std::vector<receiver>* receivers, shared_state& st,
                const std::atomic<bool>& interrupted) {
    // The window starts once every generator thread runs: on a loaded machine a new thread can
    // wait for a core longer than a short window lasts.
    st.tids[slot] = {::getpid(), current_tid()};
    st.ready.fetch_add(1);
    while (!st.go) {
        if (interrupted || st.failed) return;
        std::this_thread::yield();
    }
    std::vector<pollfd> pfds;
    if (senders)
        for (auto& s : *senders) pfds.push_back({s.fd(), POLLOUT, 0});
    std::size_t first_rx = pfds.size();
    if (receivers)
        for (auto& r : *receivers) pfds.push_back({r.fd(), POLLIN, 0});
    std::vector<rx_counts> counts(receivers ? receivers->size() : 0);
    auto last_rx = clock_type::now();

    for (;;) {
        if (interrupted || st.failed) return;
        bool sending = senders && st.sending.load(std::memory_order_relaxed);
        bool progress = false;
        if (sending)
            for (auto& s : *senders) progress |= s.pump();
        if (receivers) {
            bool got = false;
            for (std::size_t i = 0; i < receivers->size(); ++i) got |= (*receivers)[i].pump(counts[i]);
            if (got) {
                std::uint64_t to_me = 0, all = 0;
                for (auto& c : counts) {
                    to_me += c.to_me;
                    all += c.frames;
                }
                st.delivered.store(to_me, std::memory_order_relaxed);
                st.misdelivered.store(all - to_me, std::memory_order_relaxed);
                last_rx = clock_type::now();
            }
            progress |= got;
        }
        if (senders && !sending && !receivers) {
            publish_offered(*senders, st);
            return;  // the sender thread's work ends with the window
        }
        if (receivers && !st.sending && (st.senders_done || senders)) {
            if (senders) publish_offered(*senders, st);
            auto now = clock_type::now();
            auto quiet_since = std::max(last_rx, st.stopped_at);  // the drain starts at the window's end
            if (st.delivered >= st.offered || now - quiet_since > drain_quiet ||
                now - st.stopped_at > drain_limit)
                return;
        }
        if (!progress) {
            for (std::size_t i = 0; i < first_rx; ++i) pfds[i].events = sending ? POLLOUT : 0;
            wait_for(pfds, 1ms);
        }
    }
}

}  // namespace

traffic_result run_traffic(std::span<const int> fds, const traffic_options& opts,
                           const std::atomic<bool>& interrupted) {
    if (fds.size() < 2) throw std::invalid_argument("run_traffic: at least 2 endpoints");
    for (int fd : fds) make_nonblocking(fd);

    std::vector<receiver> receivers;
    std::vector<sender> senders;
    receivers.reserve(fds.size());
    senders.reserve(fds.size());
    for (std::size_t i = 0; i < fds.size(); ++i) {
        receivers.emplace_back(fds[i], opts.kind, endpoint_mac(i));
        auto to = endpoint_mac((i + 1) % fds.size());
        senders.emplace_back(fds[i], opts.kind, make_frame(to, endpoint_mac(i), opts.frame_bytes));
    }
    if (opts.warm_up) warm_up(fds, opts.kind, receivers, interrupted);

    shared_state st;
    std::exception_ptr errors[2];
    auto guarded = [&](int slot, std::vector<sender>* s, std::vector<receiver>* r) {
        try {
            run_worker(slot, s, r, st, interrupted);
        } catch (...) {
            errors[slot] = std::current_exception();
            st.failed = true;
        }
        if (s) st.senders_done = true;
    };

    traffic_result res;
    std::vector<std::thread> threads;
    if (opts.threads <= 1) {
        threads.emplace_back(guarded, 0, &senders, &receivers);
    } else {
        threads.emplace_back(guarded, 0, &senders, nullptr);
        threads.emplace_back(guarded, 1, nullptr, &receivers);
    }
    while (st.ready < static_cast<int>(threads.size()) && !interrupted) std::this_thread::sleep_for(1ms);
    std::vector<thread_ref> generator(st.tids, st.tids + threads.size());
    auto cpu_of = [](const std::vector<thread_ref>& ts) {
        cpu_sample sum;
        for (auto t : ts)
            if (auto c = read_cpu(t)) {
                sum.on_cpu += c->on_cpu;
                sum.user += c->user;
                sum.sys += c->sys;
            }
        return sum;
    };
    auto forwarder_before = cpu_of(opts.forwarder), generator_before = cpu_of(generator);
    auto start = clock_type::now();
    st.go = true;
    auto end = start + std::chrono::duration_cast<clock_type::duration>(opts.window);
    while (!interrupted && !st.failed) {
        auto now = clock_type::now();
        if (now >= end) break;
        std::this_thread::sleep_for(std::min<clock_type::duration>(end - now, 10ms));
    }
    st.stopped_at = clock_type::now();
    // Sampled before the senders stop: a generator thread that drains quickly may be gone after.
    res.forwarder_cpu = cpu_between(forwarder_before, cpu_of(opts.forwarder));
    res.generator_cpu = cpu_between(generator_before, cpu_of(generator));
    st.sending = false;
    res.delivered_in_window = st.delivered.load();
    res.window_seconds = std::chrono::duration<double>(st.stopped_at - start).count();
    for (auto& t : threads) t.join();
    for (auto& e : errors)
        if (e) std::rethrow_exception(e);

    res.offered = st.offered;
    res.delivered = st.delivered.load();
    res.misdelivered = st.misdelivered.load();
    return res;
}

}  // namespace swbench
