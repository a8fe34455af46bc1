#include "vsock_muxer.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <sstream>

namespace fake_ch {

namespace asio = boost::asio;
namespace json = boost::json;
using asio::local::stream_protocol;
using boost::system::error_code;
using namespace std::chrono_literals;

namespace {

constexpr std::size_t max_command = 32;        // bytes, with the `\n` (§4)
constexpr auto guest_answer_timeout = 2000ms;  // CONN_REQUEST_TIMEOUT_MS (§4)
constexpr auto guest_connect_retry = 50ms;     // a guest service retrying its connect
constexpr auto guest_connect_give_up = std::chrono::minutes(1);

std::vector<std::string> split(const std::string& s, char sep) {
    std::vector<std::string> out;
    std::string item;
    std::istringstream in(s);
    while (std::getline(in, item, sep))
        if (!item.empty()) out.push_back(item);
    return out;
}

std::optional<std::uint32_t> parse_port(const std::string& s) {
    if (s.empty() || s.size() > 10 ||
        !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }))
        return std::nullopt;
    const auto n = std::strtoull(s.c_str(), nullptr, 10);
    if (n > UINT32_MAX) return std::nullopt;
    return static_cast<std::uint32_t>(n);
}

// CH's reading of the command: `<keyword> <port>` split on whitespace, keyword "connect" in any
// case, the port a u32. Anything else is malformed.
std::optional<std::uint32_t> parse_connect(const std::string& command) {
    std::istringstream words(command);
    std::string keyword, port, extra;
    words >> keyword >> port;
    if (words >> extra) return std::nullopt;
    std::transform(keyword.begin(), keyword.end(), keyword.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (keyword != "connect") return std::nullopt;
    return parse_port(port);
}

}  // namespace

// Everything one bound device owns. Coroutines hold it by shared_ptr; stop() closes what they
// wait on, so they all end promptly.
struct vsock_muxer::session {
    explicit session(asio::any_io_executor ex) : acceptor(ex) {}

    stream_protocol::acceptor acceptor;
    std::string path;
    dev_t device = 0;
    ino_t inode = 0;
    bool stopped = false;
    std::vector<std::weak_ptr<stream_protocol::socket>> sockets;
    std::vector<std::weak_ptr<asio::steady_timer>> timers;
    std::shared_ptr<std::uint32_t> next_host_port;
    std::shared_ptr<const vsock_muxer::settings> settings;

    template <typename T>
    std::shared_ptr<T> track(std::shared_ptr<T> p, std::vector<std::weak_ptr<T>>& list) {
        std::erase_if(list, [](const auto& w) { return w.expired(); });
        list.push_back(p);
        return p;
    }

    void close_all() {
        stopped = true;
        error_code ignored;
        acceptor.close(ignored);
        for (auto& w : sockets)
            if (auto s = w.lock()) s->close(ignored);
        for (auto& w : timers)
            if (auto t = w.lock()) t->cancel();
        struct stat st {};
        if (inode != 0 && ::lstat(path.c_str(), &st) == 0 && st.st_dev == device && st.st_ino == inode)
            ::unlink(path.c_str());
        inode = 0;
    }
};

namespace {

using session_ptr = std::shared_ptr<vsock_muxer::session>;

// The guest service: every byte comes back until EOF.
asio::awaitable<void> echo(std::shared_ptr<stream_protocol::socket> s) {
    char buf[4096];
    for (;;) {
        error_code ec;
        auto n =
            co_await s->async_read_some(asio::buffer(buf), asio::redirect_error(asio::use_awaitable, ec));
        if (ec) break;
        co_await asio::async_write(*s, asio::buffer(buf, n), asio::redirect_error(asio::use_awaitable, ec));
        if (ec) break;
    }
    error_code ignored;
    s->close(ignored);
}

asio::awaitable<void> host_connection(session_ptr sess, std::shared_ptr<stream_protocol::socket> s) {
    const auto& settings = sess->settings;
    // Byte by byte up to the `\n`, at most 32 bytes (§4).
    std::string command;
    error_code ec;
    for (;;) {
        char c = 0;
        co_await s->async_read_some(asio::buffer(&c, 1), asio::redirect_error(asio::use_awaitable, ec));
        if (ec || sess->stopped) break;
        if (c == '\n') break;
        command.push_back(c);
        if (command.size() >= max_command) {
            ec = asio::error::message_size;  // 32 bytes and still no `\n`
            break;
        }
    }
    std::optional<std::uint32_t> port;
    if (!ec && !sess->stopped) port = parse_connect(command);
    if (!port || !settings->listening.count(*port)) {  // RST from the guest, or malformed: no message
        s->close(ec);
        co_return;
    }
    if (settings->silent) {  // the guest never answers: CH gives up after 2 s and closes
        auto timer = sess->track(
            std::make_shared<asio::steady_timer>(s->get_executor(), guest_answer_timeout), sess->timers);
        co_await timer->async_wait(asio::redirect_error(asio::use_awaitable, ec));
        s->close(ec);
        co_return;
    }
    const std::string reply = settings->bad_reply ? std::string("NOPE\n")
                                                  : "OK " + std::to_string((*sess->next_host_port)++) + "\n";
    co_await asio::async_write(*s, asio::buffer(reply), asio::redirect_error(asio::use_awaitable, ec));
    if (ec || settings->bad_reply) {
        s->close(ec);
        co_return;
    }
    co_await echo(s);
}

asio::awaitable<void> accept_loop(session_ptr sess) {
    for (;;) {
        error_code ec;
        auto s = co_await sess->acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
        if (ec || sess->stopped) co_return;
        auto shared = sess->track(std::make_shared<stream_protocol::socket>(std::move(s)), sess->sockets);
        asio::co_spawn(sess->acceptor.get_executor(), host_connection(sess, shared), asio::detached);
    }
}

// The guest connects to CID 2, port P: CH connects to `<socket>_<P>` (§4).
asio::awaitable<void> guest_connect(session_ptr sess, vsock_muxer::guest_connection conn) {
    const std::string path = sess->path + "_" + std::to_string(conn.port);
    auto ex = sess->acceptor.get_executor();
    const auto give_up = std::chrono::steady_clock::now() + guest_connect_give_up;
    for (;;) {
        if (sess->stopped) co_return;
        auto s = sess->track(std::make_shared<stream_protocol::socket>(ex), sess->sockets);
        error_code ec;
        co_await s->async_connect(stream_protocol::endpoint(path),
                                  asio::redirect_error(asio::use_awaitable, ec));
        if (sess->stopped) co_return;
        if (!ec) {
            co_await asio::async_write(*s, asio::buffer(conn.text),
                                       asio::redirect_error(asio::use_awaitable, ec));
            if (!ec) co_await echo(s);
            co_return;
        }
        if (std::chrono::steady_clock::now() > give_up) co_return;
        auto timer = sess->track(std::make_shared<asio::steady_timer>(ex, guest_connect_retry), sess->timers);
        co_await timer->async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
}

}  // namespace

vsock_muxer::settings vsock_muxer::from_environment() {
    settings s;
    if (const char* listen = std::getenv("VMRT_FAKE_CH_VSOCK_LISTEN"))
        for (const auto& p : split(listen, ','))
            if (auto port = parse_port(p)) s.listening.insert(*port);
    if (const char* connects = std::getenv("VMRT_FAKE_CH_VSOCK_GUEST_CONNECT"))
        for (const auto& item : split(connects, ';')) {
            auto colon = item.find(':');
            auto port = parse_port(item.substr(0, colon));
            if (colon != std::string::npos && port)
                s.guest_connects.push_back({*port, item.substr(colon + 1)});
        }
    if (const char* faults = std::getenv("VMRT_FAKE_CH_FAULTS"))
        for (const auto& f : split(faults, ',')) {
            if (f == "vsock-bad-reply") s.bad_reply = true;
            if (f == "vsock-silent") s.silent = true;
        }
    return s;
}

vsock_muxer::vsock_muxer(asio::any_io_executor ex, settings s)
    : ex_(std::move(ex)), settings_(std::make_shared<const settings>(std::move(s))) {}

vsock_muxer::~vsock_muxer() { stop(); }

std::optional<std::string> vsock_muxer::start(const json::object& vsock) {
    stop();
    auto* socket = vsock.if_contains("socket");
    if (!socket || !socket->is_string()) return "Cannot create virtio-vsock device: no socket path";
    auto sess = std::make_shared<session>(ex_);
    sess->path = std::string(socket->as_string());
    sess->next_host_port = next_host_port_;
    sess->settings = settings_;
    error_code ec;
    sess->acceptor.open(stream_protocol(), ec);
    // No unlink first: CH fails on an existing file (§3 --vsock, §10.2).
    if (!ec) sess->acceptor.bind(stream_protocol::endpoint(sess->path), ec);
    if (!ec) sess->acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
        return "Cannot create virtio-vsock device: Error binding vsock socket " + sess->path + ": " +
               std::strerror(ec.value()) + " (os error " + std::to_string(ec.value()) + ")";
    }
    struct stat st {};
    if (::lstat(sess->path.c_str(), &st) == 0) {
        sess->device = st.st_dev;
        sess->inode = st.st_ino;
    }
    session_ = sess;
    asio::co_spawn(ex_, accept_loop(sess), asio::detached);
    for (const auto& c : settings_->guest_connects)
        asio::co_spawn(ex_, guest_connect(sess, c), asio::detached);
    return std::nullopt;
}

void vsock_muxer::stop() {
    if (!session_) return;
    session_->close_all();
    session_.reset();
}

}  // namespace fake_ch
