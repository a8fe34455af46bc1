#include "fake_ch/api_server.hpp"

#include "fake_ch/process_state.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace fake_ch {

using asio::local::stream_protocol;
using namespace std::chrono_literals;

namespace {

std::string http_reply(const fake_ch::reply& r) {
    std::string out = "HTTP/1.1 " + std::to_string(r.status) +
                      " \r\nServer: Cloud Hypervisor API\r\nConnection: keep-alive\r\n";
    if (r.status != 204 && r.status != 100) {
        const std::string body = r.body.value_or("");
        out += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
               "\r\n\r\n" + body;
    } else {
        out += "\r\n";
    }
    return out;
}

// Built outside the coroutines: GCC 12 miscompiles a braced temporary inside a co_await expression.
std::string canned_reply(int status, std::optional<std::string> body) {
    fake_ch::reply r;
    r.status = status;
    r.body = std::move(body);
    return http_reply(r);
}

// micro_http's own reply to a request it cannot parse (§2.3): not valid JSON (a raw newline).
std::string parse_error_reply(const std::string& reason) {
    std::string body = "{ \"error\": \"" + reason + "\nAll previous unanswered requests will be dropped.\" }";
    return "HTTP/1.1 400 \r\nServer: Firecracker API\r\nConnection: keep-alive\r\nContent-Type: "
           "application/json\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\n\r\n" + body;
}

bool iequals(const std::string& a, const char* b) {
    return a.size() == std::strlen(b) && std::equal(a.begin(), a.end(), b, [](char x, char y) {
               return std::tolower(x) == std::tolower(y);
           });
}

constexpr std::size_t max_line = 1024;             // micro_http's read buffer (§2.1)
constexpr std::size_t max_body = 4 * 1024 * 1024;  // current main (§2.1)

asio::awaitable<void> send(stream_protocol::socket& s, const std::string& bytes) {
    boost::system::error_code ec;
    co_await asio::async_write(s, asio::buffer(bytes), asio::redirect_error(asio::use_awaitable, ec));
}

void after_reply(fake_ch::follow_up next, asio::any_io_executor ex) {
    if (next == fake_ch::follow_up::exit_vmm) proc->clean_exit(0);
    if (next == fake_ch::follow_up::guest_power_off_soon) {
        const char* ms = std::getenv("VMRT_FAKE_CH_POWER_OFF_MS");
        if (ms && std::string(ms) == "never") return;  // a guest that ignores the ACPI button
        auto timer =
            std::make_shared<asio::steady_timer>(ex, std::chrono::milliseconds(ms ? std::atoi(ms) : 50));
        timer->async_wait([timer](boost::system::error_code ec) {
            if (!ec && proc->vmm->guest_power_off()) proc->clean_exit(0);  // guest poweroff exits CH (§3.1)
        });
    }
}

// A client that half-closed (shutdown(SHUT_WR)) after its request: micro_http sees READ_HANG_UP
// and drops the connection with the pending response (§2.2). The action itself has run by then.
bool peer_hung_up(int fd) {
    char c;
    return ::recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

// Reads what is there, with any file descriptors passed alongside (SCM_RIGHTS, §2.4: CH takes
// the TAP fds of vm.add-net this way). False on EOF or error.
asio::awaitable<bool> read_more(stream_protocol::socket& s, std::string& buf, std::vector<int>& fds) {
    for (;;) {
        boost::system::error_code ec;
        co_await s.async_wait(stream_protocol::socket::wait_read,
                              asio::redirect_error(asio::use_awaitable, ec));
        if (ec) co_return false;
        char data[4096];
        alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 16)];
        iovec iov{data, sizeof data};
        msghdr msg{};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
        auto n = ::recvmsg(s.native_handle(), &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (n <= 0) co_return false;
        for (auto* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
                const auto count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                for (std::size_t i = 0; i < count; ++i) {
                    int fd;
                    std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
                    fds.push_back(fd);
                }
            }
        buf.append(data, static_cast<std::size_t>(n));
        co_return true;
    }
}

// The TAP device an fd is open on, or "" (TUNGETIFF).
// vm.add-net with fds: CH uses the fds and ignores fd numbers in the JSON (§1.3). The double
// records its own fd numbers and the TAP name, so vm.info shows what CH would be using.
std::string with_passed_fds(const std::string& body, const std::vector<int>& fds) {
    boost::system::error_code ec;
    auto v = json::parse(body, ec);
    if (ec || !v.is_object()) return body;
    json::array list;
    for (int fd : fds) list.push_back(fd);
    v.as_object()["fds"] = std::move(list);
    const auto name = tap_name(fds.front());
    if (!name.empty()) v.as_object()["tap"] = name;
    std::fprintf(stderr, "vm.add-net: %zu fd(s) by SCM_RIGHTS, TAP %s\n", fds.size(),
                 name.empty() ? "(none)" : name.c_str());
    return json::serialize(v);
}

asio::awaitable<void> serve_connection(stream_protocol::socket s) {
    std::string buf;
    std::vector<int> fds;
    for (;;) {
        std::size_t head_end;
        bool open = true;
        while ((head_end = buf.find("\r\n\r\n")) == std::string::npos && buf.size() < max_line * 64 && open)
            open = co_await read_more(s, buf, fds);
        if (head_end == std::string::npos) break;  // EOF, or a header block too long: drop the connection
        const auto head_len = head_end + 4;
        std::string head = buf.substr(0, head_len - 4);
        buf.erase(0, head_len);

        std::vector<std::string> lines;
        for (std::size_t at = 0; at <= head.size();) {
            auto end = std::min(head.find("\r\n", at), head.size());
            lines.push_back(head.substr(at, end - at));
            at = end + 2;
        }
        auto parse_error = [&](const std::string& why) -> asio::awaitable<void> {
            buf.clear();  // its parser state is unreliable after this (§2.3)
            co_await send(s, parse_error_reply(why));
        };
        // Request line: METHOD SP URI SP HTTP/1.0|1.1 (§2.1).
        const auto& rl = lines[0];
        auto sp1 = rl.find(' '), sp2 = rl.rfind(' ');
        if (rl.size() > max_line || sp1 == std::string::npos || sp1 == sp2) {
            co_await parse_error("Invalid request.");
            continue;
        }
        std::string method = rl.substr(0, sp1), uri = rl.substr(sp1 + 1, sp2 - sp1 - 1),
                    version = rl.substr(sp2 + 1);
        if (method != "GET" && method != "PUT" && method != "PATCH" && method != "DELETE") {
            co_await parse_error("Invalid HTTP Method.");
            continue;
        }
        if (version != "HTTP/1.0" && version != "HTTP/1.1") {
            co_await parse_error("Unsupported HTTP version.");
            continue;
        }
        std::size_t content_length = 0;
        bool bad_header = false, expect_continue = false;
        for (std::size_t i = 1; i < lines.size(); ++i) {
            auto colon = lines[i].find(':');
            if (colon == std::string::npos || lines[i].size() > max_line) {
                bad_header = true;
                break;
            }
            auto name = lines[i].substr(0, colon), value = trim(lines[i].substr(colon + 1));
            if (iequals(name, "Content-Length")) {
                char* end = nullptr;
                content_length = std::strtoull(value.c_str(), &end, 10);
                if (value.empty() || *end) bad_header = true;
            }
            if (iequals(name, "Expect") && iequals(value, "100-continue")) expect_continue = true;
        }
        if (bad_header) {
            co_await parse_error("Invalid header.");
            continue;
        }
        if (content_length > max_body) {
            co_await parse_error("Request payload with size " + std::to_string(content_length) +
                                 " is larger than the limit of " + std::to_string(max_body) +
                                 " allowed by server.");
            continue;
        }
        if (expect_continue) co_await send(s, canned_reply(100, std::nullopt));
        while (buf.size() < content_length && open) open = co_await read_more(s, buf, fds);
        if (buf.size() < content_length) break;
        std::string body = buf.substr(0, content_length);
        buf.erase(0, content_length);

        // Routing: exact path, origin-form or absolute-form (§2.1).
        if (uri.starts_with("http://")) {
            auto slash = uri.find('/', 7);
            uri = slash == std::string::npos ? "/" : uri.substr(slash);
        }
        const std::string prefix = "/api/v1/";
        std::string endpoint = uri.starts_with(prefix) ? uri.substr(prefix.size()) : std::string();
        bool is_get = false;
        if (!fake_ch::vmm::known_route(endpoint, is_get)) {
            co_await send(s, canned_reply(404, R"(["Not Found"])"));
            continue;
        }
        if (method == "PATCH" || method == "DELETE") {  // 400 with Content-Length: 0 (§2.3)
            co_await send(s, canned_reply(400, std::string()));
            continue;
        }
        if ((method == "GET") != is_get || (fake_ch::vmm::bodyless(endpoint) && !body.empty())) {
            co_await send(s, canned_reply(400, R"(["Bad Request"])"));
            continue;
        }

        const auto& f = proc->fault;
        if (auto slow = f.slow_ms.find(endpoint); slow != f.slow_ms.end())
            std::this_thread::sleep_for(
                std::chrono::milliseconds(slow->second));  // blocks everything, like CH
        if (endpoint == f.crash_on) ::_exit(3);
        fake_ch::follow_up next{};
        fake_ch::reply r;
        try {
            if (endpoint == "vm.add-net" && !fds.empty()) {
                body = with_passed_fds(body, fds);
                fds.clear();  // kept open: the "VMM" uses them now (closed when it exits)
            }
            r = proc->vmm->handle(method, endpoint, body, next);
        } catch (const std::exception& e) {  // a gap in the double: say so instead of hanging the client
            r.status = 500;
            r.body = json::serialize(json::array{"vmrt-fake-cloud-hypervisor internal error", e.what()});
        }
        if (endpoint == f.malformed_body) {
            r.status = 200;
            r.body = "{\"state\": Runn";
        }
        for (int fd : fds) ::close(fd);  // passed with a request that takes none
        fds.clear();
        auto bytes = http_reply(r);
        if (endpoint == f.crash_mid_reply) {
            [[maybe_unused]] auto n = ::write(s.native_handle(), bytes.data(), bytes.size() / 2);
            ::_exit(3);
        }
        if (buf.empty() && peer_hung_up(s.native_handle())) break;  // the reply is thrown away (§2.2)
        co_await send(s, bytes);
        after_reply(next, s.get_executor());
    }
    --proc->connections;
}

}  // namespace

asio::awaitable<void> accept_loop(stream_protocol::acceptor& acceptor) {
    for (;;) {
        boost::system::error_code ec;
        auto s = co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
        if (ec) co_return;
        if (proc->connections >= 10) {  // the 11th connection (§2.1)
            std::string body = R"({ "error": "Too many open connections" })";
            std::string reply =
                "HTTP/1.1 503 \r\nServer: Firecracker API\r\nConnection: close\r\nContent-Type: "
                "application/json\r\nContent-Length: " +
                std::to_string(body.size()) + "\r\n\r\n" + body;
            [[maybe_unused]] auto n = ::write(s.native_handle(), reply.data(), reply.size());
            continue;  // the socket closes here
        }
        ++proc->connections;
        asio::co_spawn(acceptor.get_executor(), serve_connection(std::move(s)), asio::detached);
    }
}

}  // namespace fake_ch
