#include "support/switch_harness.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/test/unit_test.hpp>

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <stdexcept>

namespace vmrt::test {

namespace {

using namespace std::chrono_literals;

bool wait_fd(int fd, short events, std::chrono::milliseconds timeout) {
    pollfd p{fd, events, 0};
    int n = ::poll(&p, 1, static_cast<int>(timeout.count()));
    return n > 0;
}

void put_be32(frame_bytes& out, std::size_t at, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) out[at + static_cast<std::size_t>(i)] = std::byte(v >> (24 - 8 * i));
}

std::uint32_t get_be32(const std::byte* p) {
    return (std::uint32_t(p[0]) << 24) | (std::uint32_t(p[1]) << 16) | (std::uint32_t(p[2]) << 8) |
           std::uint32_t(p[3]);
}

}  // namespace

mac_address test_mac(std::uint8_t last) { return {{0x52, 0x54, 0x00, 0x5e, 0x00, last}}; }

frame_bytes make_frame(const mac_address& dst, const mac_address& src, std::size_t total, std::uint32_t tag) {
    frame_bytes f(total);
    for (std::size_t i = 0; i < 6 && i < total; ++i) f[i] = std::byte(dst.octets[i]);
    for (std::size_t i = 0; i < 6 && 6 + i < total; ++i) f[6 + i] = std::byte(src.octets[i]);
    if (total >= 14) {
        f[12] = std::byte(0x88);
        f[13] = std::byte(0xb5);
    }
    if (total >= 18) put_be32(f, 14, tag);
    for (std::size_t i = 18; i < total; ++i) f[i] = std::byte(static_cast<std::uint8_t>(i * 31 + tag));
    return f;
}

std::uint32_t frame_tag(const frame_bytes& f) { return f.size() >= 18 ? get_be32(f.data() + 14) : 0; }

bool peer::try_send(const frame_bytes& f) {
    if (kind_ == net::port_kind::stream) return send(f);  // a stream cannot drop half a frame
    return ::send(fd_.get(), f.data(), f.size(), MSG_DONTWAIT | MSG_NOSIGNAL) ==
           static_cast<ssize_t>(f.size());
}

bool peer::send(const frame_bytes& f) {
    if (kind_ == net::port_kind::stream) {
        frame_bytes wire(4 + f.size());
        put_be32(wire, 0, static_cast<std::uint32_t>(f.size()));
        std::copy(f.begin(), f.end(), wire.begin() + 4);
        for (std::size_t done = 0; done < wire.size();) {
            ssize_t n = ::send(fd_.get(), wire.data() + done, wire.size() - done, MSG_NOSIGNAL);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return false;
            done += static_cast<std::size_t>(n);
        }
        return true;
    }
    while (true) {
        if (::send(fd_.get(), f.data(), f.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(f.size()))
            return true;
        if (errno == EINTR) continue;
        return false;
    }
}

void peer::send_raw(const frame_bytes& bytes) {
    std::size_t done = 0;
    while (done < bytes.size()) {
        ssize_t n = ::send(fd_.get(), bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) throw std::runtime_error("peer: stream send failed");
        done += static_cast<std::size_t>(n);
    }
}

std::optional<frame_bytes> peer::receive(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
        if (kind_ == net::port_kind::stream && pending_.size() - parsed_ >= 4) {
            std::size_t len = get_be32(pending_.data() + parsed_);
            if (pending_.size() - parsed_ >= 4 + len) {
                auto first = pending_.begin() + static_cast<std::ptrdiff_t>(parsed_ + 4);
                frame_bytes f(first, first + static_cast<std::ptrdiff_t>(len));
                parsed_ += 4 + len;
                return f;
            }
        }
        // Even past the deadline, look once more: on a busy machine this thread may have been
        // off the CPU for the whole timeout while frames sat in the socket.
        auto left =
            std::max(std::chrono::milliseconds(0), std::chrono::duration_cast<std::chrono::milliseconds>(
                                                       deadline - std::chrono::steady_clock::now()));
        if (!wait_fd(fd_.get(), POLLIN, left)) return std::nullopt;
        frame_bytes& buf = buffer_;
        buf.resize(256 * 1024);
        ssize_t n = ::recv(fd_.get(), buf.data(), buf.size(), MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) continue;
            return std::nullopt;
        }
        if (kind_ != net::port_kind::stream) {
            return frame_bytes(buf.begin(), buf.begin() + n);
        }
        if (n == 0) return std::nullopt;  // EOF
        pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(parsed_));
        parsed_ = 0;
        pending_.insert(pending_.end(), buf.begin(), buf.begin() + n);
    }
}

std::vector<frame_bytes> peer::drain(std::chrono::milliseconds quiet) {
    std::vector<frame_bytes> all;
    while (auto f = receive(quiet)) all.push_back(std::move(*f));
    return all;
}

bool peer::hung_up(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        if (!wait_fd(fd_.get(), POLLIN, 50ms)) continue;
        std::byte b[4096];
        ssize_t n = ::recv(fd_.get(), b, sizeof b, MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) return true;
    }
    return false;
}

switch_harness::switch_harness(net::switch_options opts) {
    sw_.emplace(ctx_.get_executor(), opts);
    work_.emplace(ctx_.get_executor());  // released by the destructor, with the switch
    thread_ = std::thread([this] {
        ctx_.run();
        stopped_.set_value();
    });
}

switch_harness::~switch_harness() {
    boost::asio::post(ctx_, [this] {
        sw_.reset();
        work_.reset();
    });
    // Closing the switch must let every port coroutine end: the io_context then runs dry.
    auto stopped = stopped_.get_future();
    if (stopped.wait_for(10s) != std::future_status::ready) {
        ctx_.stop();
        BOOST_ERROR("the switch left work behind after its destruction");
    }
    thread_.join();
}

net::network_id switch_harness::add_network(const std::string& name) {
    return call([&](net::l2_switch& sw) { return sw.add_network(name); });
}

std::pair<net::port_id, peer> switch_harness::add_port(net::network_id net, net::port_kind kind,
                                                       net::port_options opts) {
    auto [id, fd] = call([&](net::l2_switch& sw) { return sw.add_socketpair_port(net, kind, opts); });
    return {id, peer(std::move(fd), kind)};
}

net::port_counters switch_harness::counters(net::port_id port) {
    auto c = call([&](net::l2_switch& sw) { return sw.counters(port); });
    if (!c) throw std::runtime_error("no counters for port " + std::to_string(port));
    return *c;
}

void switch_harness::remove_port(net::port_id port) {
    call([&](net::l2_switch& sw) { sw.remove_port(port); });
}

}  // namespace vmrt::test
