// vmrt-fake-cloud-hypervisor: a protocol double of Cloud Hypervisor's VMM process for tests, since
// CH cannot run on this machine (it is not packaged for Debian 12 and needs KVM). It is built from
// shared/reference/cloud-hypervisor.md and serves CH's REST API the way CH's micro_http server
// does on the wire (§2), with CH's state machine and status codes (fake_ch/fake_vmm.cpp, §1).
//
// Command line: CH's flags (§3). --api-socket fd=N (a bound, listening socket it inherits) or
// path=P (bare value = path; a `<P>.lock` flock, stale-socket unlink and umask 077 as in v53+,
// §2.1); --event-monitor fd=N or path=P (pretty JSON events followed by a blank line, §7);
// --no-shutdown; with --kernel (or --firmware) it creates and boots the VM from the command line
// (§3.1), parsing key=value lists as CH's OptionParser does (quotes, [brackets]); `--net fd=[..]`
// takes inherited TAP fds (num_queues must be twice their count); `--restore source_url=..,
// resume=true` restores as vm.restore does. Other VM flags are accepted and ignored. fds passed
// with a request (SCM_RIGHTS) are taken by vm.add-net, which records them and the TAP's name.
// The serial console (File mode) gets a kernel banner at boot and a `VMRS_READY` line after it.
// Exit: 0 after vmm.shutdown, SIGTERM/SIGINT or a guest power-off (§3.1); 1 on runtime errors;
// 2 on usage errors; 3 when an injected crash fires.
//
// virtio-fs (§8 "CH side", fake_ch/vhost_user_frontend.cpp): the `socket` of every --fs / "fs"
// device is connected when CH would connect it: at boot (CLI or vm.boot), hot vm.add-fs, the
// re-creation of a rebooted VM and vm.restore; never at vm.create. The double retries every 100 ms
// for up to 60 s (VMRT_FAKE_CH_VHOST_USER_WAIT_MS for tests), blocking the whole API as CH does
// (#8052), then sends VHOST_USER_GET_FEATURES and needs a reply (a real backend is there). Cannot
// connect: CLI mode exits 1 with the error on stderr; vm.boot / vm.reboot / vm.add-fs /
// vm.restore answer 500 with the error chain (a failed reboot leaves the VM not running). The
// connection is held while the VM runs and closed at vm.shutdown, vm.delete, vm.reboot (then
// reconnected), vm.remove-device, vmm.shutdown, SIGTERM and guest power-off; closing it is what
// makes virtiofsd exit. --fs needs --memory shared=on (checked at boot, §3).
//
// Faults for tests, from the environment (comma-separated), never from CH's command line:
//   VMRT_FAKE_CH_FAULTS=crash-on=<endpoint>         exit 3 after reading that request, no reply
//                       crash-mid-reply=<endpoint>  write half of the reply, then exit 3
//                       slow=<endpoint>:<ms>        sleep before answering (blocks every
//                                                   connection, as CH's single VMM thread does)
//                       late-socket=<ms>            path mode: bind the socket that much later;
//                                                   fd mode: start accepting that much later
//                       malformed-body=<endpoint>   answer 200 with a body that is not JSON
//                       vsock-bad-reply             hybrid vsock: answer `NOPE\n` to a valid CONNECT
//                       vsock-silent                hybrid vsock: the guest never answers a CONNECT;
//                                                   the connection closes after CH's 2 s
//   VMRT_FAKE_CH_POWER_OFF_MS  how long the guest takes to react to vm.power-button (default 50;
//                              "never": the guest ignores it, as a guest without ACPI does)
//   VMRT_FAKE_CH_READY_IP      the address in the serial ready line (default 192.168.64.2; "none")
//   VMRT_FAKE_CH_READY_MS      delay from boot to the ready line (default 50)
// Hybrid vsock (§4, fake_ch/vsock_muxer.hpp): with a `vsock` device (--vsock cid=N,socket=P, or in
// the vm.create config, or vm.add-vsock on a live VM) the double binds P when the VM is built
// (boot/restore/hot-add; an existing P fails it: exit 1 in CLI mode, 500 from the API), answers
// `CONNECT <port>\n` with `OK <host_port>\n` for guest ports that listen, and removes P when the
// VM shuts down, is deleted or rebooted, the device is removed, or the VMM exits cleanly. The
// emulated guest:
//   VMRT_FAKE_CH_VSOCK_LISTEN=<port>,...           guest ports with an echo service
//   VMRT_FAKE_CH_VSOCK_GUEST_CONNECT=<port>:<text>[;<port>:<text>...]
//                                                  once the device is up, the guest connects to
//                                                  CID 2 <port> (the double connects to P_<port>,
//                                                  retrying every 50 ms), sends <text>, then echoes
//                                                  back what it reads until EOF
// A leaked double cannot live on: it exits after 10 minutes.
#include "fake_ch/fake_vmm.hpp"
#include "fake_ch/vhost_user_frontend.hpp"
#include "fake_ch/vsock_muxer.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace asio = boost::asio;
namespace json = boost::json;
using asio::local::stream_protocol;
using namespace std::chrono_literals;

namespace {

// ---- faults ----

struct faults {
    std::string crash_on, crash_mid_reply, malformed_body;
    std::map<std::string, int> slow_ms;
    int late_socket_ms = 0;
};

faults read_faults() {
    faults f;
    const char* env = std::getenv("VMRT_FAKE_CH_FAULTS");
    std::string spec = env ? env : "";
    std::size_t at = 0;
    while (at < spec.size()) {
        auto end = std::min(spec.find(',', at), spec.size());
        auto item = spec.substr(at, end - at);
        at = end + 1;
        auto eq = item.find('=');
        if (eq == std::string::npos) continue;
        auto key = item.substr(0, eq), value = item.substr(eq + 1);
        if (key == "crash-on") f.crash_on = value;
        if (key == "crash-mid-reply") f.crash_mid_reply = value;
        if (key == "malformed-body") f.malformed_body = value;
        if (key == "late-socket") f.late_socket_ms = std::atoi(value.c_str());
        if (key == "slow") {
            auto colon = value.find(':');
            if (colon != std::string::npos)
                f.slow_ms[value.substr(0, colon)] = std::atoi(value.c_str() + colon + 1);
        }
    }
    return f;
}

// ---- event monitor (§7) ----

class event_monitor {
public:
    void open_fd(int fd) {
        fd_ = fd;
        ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) | O_NONBLOCK);
    }
    bool open_path(const std::string& path) {
        fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NONBLOCK | O_CLOEXEC, 0600);
        return fd_ >= 0;
    }
    // serde_json's pretty format: 2-space indentation, then "\n\n". Write errors are ignored.
    void write(const std::string& source, const std::string& event, const json::value& properties) {
        if (fd_ < 0) return;
        auto since = std::chrono::steady_clock::now() - start_;
        auto secs = std::chrono::duration_cast<std::chrono::seconds>(since);
        auto nanos = std::chrono::duration_cast<std::chrono::nanoseconds>(since - secs);
        std::string text = "{\n  \"timestamp\": {\n    \"secs\": " + std::to_string(secs.count()) +
                           ",\n    \"nanos\": " + std::to_string(nanos.count()) +
                           "\n  },\n  \"source\": " + json::serialize(json::string(source)) +
                           ",\n  \"event\": " + json::serialize(json::string(event)) +
                           ",\n  \"properties\": ";
        if (properties.is_object() && !properties.as_object().empty()) {
            text += "{";
            bool first = true;
            for (const auto& [k, v] : properties.as_object()) {
                text += first ? "\n" : ",\n";
                first = false;
                text += "    " + json::serialize(json::string(k)) + ": " + json::serialize(v);
            }
            text += "\n  }";
        } else {
            text += properties.is_object() ? "{}" : "null";
        }
        text += "\n}\n\n";
        [[maybe_unused]] auto n = ::write(fd_, text.data(), text.size());
    }

private:
    int fd_ = -1;
    std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

// ---- the guest's serial console (--serial file=P, or "serial": {"mode": "File"}) ----
// A booted guest prints a kernel banner and, after VMRT_FAKE_CH_READY_MS (default 50), the
// readiness line `VMRS_READY <VMRT_FAKE_CH_READY_IP>` (default 192.168.64.2; "none": never).
// CH creates (truncates) the file when it builds the VM; a reboot prints a new banner.

class serial_console {
public:
    void boot(asio::any_io_executor ex, const json::object& config, bool fresh) {
        const auto* serial = config.if_contains("serial");
        if (!serial || !serial->is_object()) return;
        const auto* mode = serial->as_object().if_contains("mode");
        const auto* file = serial->as_object().if_contains("file");
        if (!mode || *mode != "File" || !file || !file->is_string()) return;
        const std::string path(file->as_string());
        int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | (fresh ? O_TRUNC : O_APPEND), 0644);
        if (fd < 0) return;
        ::close(fd);
        append(path, "[    0.000000] Linux version 6.1.0-vmrt-fake (vmrt-fake-cloud-hypervisor)\n");
        const char* ip = std::getenv("VMRT_FAKE_CH_READY_IP");
        std::string address = ip ? ip : "192.168.64.2";
        if (address == "none") return;
        const char* ms = std::getenv("VMRT_FAKE_CH_READY_MS");
        auto timer =
            std::make_shared<asio::steady_timer>(ex, std::chrono::milliseconds(ms ? std::atoi(ms) : 50));
        const auto generation = ++generation_;
        timer->async_wait([this, timer, path, address, generation](boost::system::error_code ec) {
            if (!ec && generation == generation_) append(path, "VMRS_READY " + address + "\n");
        });
    }
    void stop() { ++generation_; }

private:
    static void append(const std::string& path, const std::string& text) {
        int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
        if (fd < 0) return;
        [[maybe_unused]] auto n = ::write(fd, text.data(), text.size());
        ::close(fd);
    }
    unsigned generation_ = 0;
};

// ---- process state ----

struct fake_process {
    event_monitor monitor;
    serial_console console;
    asio::io_context* ctx = nullptr;
    faults fault = read_faults();
    std::optional<fake_ch::vmm> vmm;
    std::optional<fake_ch::vsock_muxer> vsock;  // the hybrid-vsock device's host side (§4)
    fake_ch::fs_frontends fs;                   // virtio-fs backends (virtiofsd) of the VM
    std::string socket_path;                    // path mode: removed on a clean exit (§2.1)
    int connections = 0;

    [[noreturn]] void clean_exit(int code) {
        vmm->shutdown_events();
        if (!socket_path.empty()) ::unlink(socket_path.c_str());  // the .lock file stays (§2.1)
        std::fflush(nullptr);
        ::_exit(code);
    }
};

fake_process* proc = nullptr;

// ---- hybrid vsock (§4): the device lives as long as the VM object ----

void vsock_follow(const std::string& source, const std::string& event) {
    if (source != "vm" || !proc->vsock) return;
    if (event == "shutdown" || event == "deleted" || event == "rebooting") {
        proc->vsock->stop();           // the socket file goes with the device
    } else if (event == "rebooted") {  // CH re-creates the VM, and the device with it
        const auto& config = proc->vmm->config();
        if (auto* v = config ? config->if_contains("vsock") : nullptr; v && v->is_object())
            if (auto failed = proc->vsock->start(v->as_object()))
                std::fprintf(stderr, "Error: %s\n", failed->c_str());
    } else if (event == "device-removed") {
        const auto& config = proc->vmm->config();
        if (!config || !config->contains("vsock")) proc->vsock->stop();
    }
}

// ---- HTTP on the wire (§2.2) ----

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

std::string trim(std::string s) {
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.pop_back();
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.erase(0, 1);
    return s;
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
std::string tap_name(int fd) {
    ifreq ifr{};
    if (::ioctl(fd, TUNGETIFF, &ifr) != 0) return {};
    return ifr.ifr_name;
}

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

// ---- command line (§3) ----

[[noreturn]] void usage_error(const std::string& what);

// CH's OptionParser (§3): items split on ',' outside double quotes and [brackets]; every '"' is
// dropped; keys and values are trimmed.
std::map<std::string, std::string> key_values(const std::string& spec) {
    std::map<std::string, std::string> kv;
    std::vector<std::string> items(1);
    bool quoted = false;
    int depth = 0;
    for (char c : spec) {
        if (c == '"') {
            quoted = !quoted;
            continue;
        }
        if (!quoted && c == '[') ++depth;
        if (!quoted && c == ']') --depth;
        if (!quoted && depth == 0 && c == ',') {
            items.emplace_back();
            continue;
        }
        items.back() += c;
    }
    if (quoted || depth != 0) usage_error("unbalanced quotes or brackets in '" + spec + "'");
    for (const auto& item : items) {
        auto eq = item.find('=');
        if (eq == std::string::npos)
            kv[trim(item)] = "";
        else
            kv[trim(item.substr(0, eq))] = trim(item.substr(eq + 1));
    }
    return kv;
}

// "[3,4]" -> {3, 4}
std::vector<int> fd_list(const std::string& value) {
    std::vector<int> fds;
    std::string inner = value;
    if (inner.size() >= 2 && inner.front() == '[' && inner.back() == ']')
        inner = inner.substr(1, inner.size() - 2);
    std::size_t at = 0;
    while (at < inner.size()) {
        auto end = std::min(inner.find(',', at), inner.size());
        fds.push_back(std::atoi(inner.substr(at, end - at).c_str()));
        at = end + 1;
    }
    return fds;
}

std::uint64_t parse_size(const std::string& s) {
    char* end = nullptr;
    std::uint64_t n = std::strtoull(s.c_str(), &end, 10);
    switch (end && *end ? *end : 0) {
    case 'K':
        return n << 10;
    case 'M':
        return n << 20;
    case 'G':
        return n << 30;
    default:
        return n;
    }
}

// A VM config CH's parser refuses: an error chain on stderr and exit 1 (§3.1).
[[noreturn]] void fail_config(const std::string& what) {
    std::fprintf(stderr, "Error: %s\n", what.c_str());
    std::exit(1);
}

void usage_error(const std::string& what) {
    std::fprintf(stderr, "error: %s\n", what.c_str());
    std::exit(2);
}

int bind_path(const std::string& path, int late_ms) {
    int lock = ::open((path + ".lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock < 0 || ::flock(lock, LOCK_EX | LOCK_NB) != 0) {
        std::fprintf(stderr, "Error: API socket in use: %s\n", path.c_str());
        std::exit(1);
    }
    if (late_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(late_ms));
    ::unlink(path.c_str());  // stale socket of a crashed predecessor (§10.2)
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path) usage_error("API socket path too long");
    std::memcpy(addr.sun_path, path.c_str(), path.size());
    ::umask(077);  // socket mode 0600 (§2.1)
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 16) != 0) {
        std::fprintf(stderr, "Error: cannot bind API socket %s: %s\n", path.c_str(), std::strerror(errno));
        std::exit(1);
    }
    return fd;
}

// What the rest of the "machine" does when the VM changes state.
void on_vm_event(const std::string& source, const std::string& event) {
    if (source != "vm") return;
    const auto& config = proc->vmm->config();
    if ((event == "booted" || event == "rebooted") && config && proc->ctx)
        proc->console.boot(proc->ctx->get_executor(), *config, event == "booted");
    if (event == "shutdown" || event == "deleted" || event == "rebooting") proc->console.stop();
}

}  // namespace

int main(int argc, char** argv) {
    fake_process p;
    proc = &p;
    std::string api_socket, event_monitor_spec;
    std::optional<std::map<std::string, std::string>> restore;
    bool no_shutdown = false;
    json::object cli_config;
    json::object payload;
    auto add_list = [&](const char* key, json::object item) {
        auto& list = cli_config[key];
        if (!list.is_array()) list = json::array();
        list.as_array().emplace_back(std::move(item));
    };
    for (int i = 1; i < argc; ++i) {
        std::string flag = argv[i];
        if (flag == "-V" || flag == "--version") {
            std::printf("cloud-hypervisor v54.0.0-fake\n");
            return 0;
        }
        if (flag == "--no-shutdown") {
            no_shutdown = true;
            continue;
        }
        if (flag == "-v") continue;
        if (i + 1 >= argc) usage_error("a value is required for '" + flag + "'");
        std::string value = argv[++i];
        auto kv = key_values(value);
        if (flag == "--api-socket")
            api_socket = value;
        else if (flag == "--event-monitor")
            event_monitor_spec = value;
        else if (flag == "--kernel")
            payload["kernel"] = value;
        else if (flag == "--firmware")
            payload["firmware"] = value;
        else if (flag == "--initramfs")
            payload["initramfs"] = value;
        else if (flag == "--cmdline")
            payload["cmdline"] = value;
        else if (flag == "--cpus") {
            auto boot = std::strtoul(kv.count("boot") ? kv["boot"].c_str() : "1", nullptr, 10);
            auto max = kv.count("max") ? std::strtoul(kv["max"].c_str(), nullptr, 10) : boot;
            cli_config["cpus"] = json::object{{"boot_vcpus", boot}, {"max_vcpus", max}};
        } else if (flag == "--memory") {
            json::object m{{"size", parse_size(kv.count("size") ? kv["size"] : "512M")}};
            if (kv["shared"] == "on" || kv["shared"] == "true") m["shared"] = true;
            if (kv.count("hotplug_size")) m["hotplug_size"] = parse_size(kv["hotplug_size"]);
            cli_config["memory"] = std::move(m);
        } else if (flag == "--disk") {
            json::object d{{"path", kv["path"]}};
            if (kv["readonly"] == "on" || kv["readonly"] == "true") d["readonly"] = true;
            if (kv.count("id")) d["id"] = kv["id"];
            add_list("disks", std::move(d));
        } else if (flag == "--net") {
            json::object n;
            for (const char* k : {"tap", "mac", "id"})
                if (kv.count(k)) n[k] = kv[k];
            if (kv.count("num_queues"))
                n["num_queues"] = std::strtoull(kv["num_queues"].c_str(), nullptr, 10);
            if (kv.count("fd")) {  // open TAP fds it inherited (§3 --net)
                auto fds = fd_list(kv["fd"]);
                const auto queues =
                    kv.count("num_queues") ? std::strtoull(kv["num_queues"].c_str(), nullptr, 10) : 2;
                if (queues != 2 * fds.size())
                    fail_config("Error parsing --net: num_queues must be twice the number of fds");
                json::array list;
                for (int fd : fds) {
                    if (::fcntl(fd, F_GETFD) < 0)
                        fail_config("Error parsing --net: fd " + std::to_string(fd) + " is not open");
                    ::fcntl(fd, F_SETFD, FD_CLOEXEC);
                    list.push_back(fd);
                }
                if (auto name = fds.empty() ? std::string() : tap_name(fds.front()); !name.empty()) {
                    n["tap"] = name;
                    std::fprintf(stderr, "--net: inherited fd %d on TAP %s\n", fds.front(), name.c_str());
                }
                n["fds"] = std::move(list);
            }
            add_list("net", std::move(n));
        } else if (flag == "--fs") {
            json::object f{{"tag", kv["tag"]}, {"socket", kv["socket"]}};
            if (kv.count("id")) f["id"] = kv["id"];
            add_list("fs", std::move(f));
        } else if (flag == "--vsock") {
            cli_config["vsock"] = json::object{{"cid", std::strtoull(kv["cid"].c_str(), nullptr, 10)},
                                               {"socket", kv["socket"]}};
        } else if (flag == "--balloon") {
            cli_config["balloon"] = json::object{{"size", parse_size(kv["size"])}};
        } else if (flag == "--serial" || flag == "--console") {
            json::object c;
            if (value.starts_with("file="))
                c = {{"mode", "File"}, {"file", value.substr(5)}};
            else if (value.starts_with("socket="))
                c = {{"mode", "Socket"}, {"socket", value.substr(7)}};
            else if (value == "off")
                c = {{"mode", "Off"}};
            else if (value == "null")
                c = {{"mode", "Null"}};
            else if (value == "pty")
                c = {{"mode", "Pty"}};
            else if (value == "tty")
                c = {{"mode", "Tty"}};
            else
                usage_error("invalid value '" + value + "' for '" + flag + "'");
            cli_config[flag == "--serial" ? "serial" : "console"] = std::move(c);
        } else if (flag == "--restore") {
            restore = kv;
        } else if (flag == "--log-file" || flag == "--seccomp" || flag == "--rng" || flag == "--pmem" ||
                   flag == "--platform" || flag == "--landlock") {
            continue;  // accepted, not emulated
        } else {
            usage_error("unexpected argument '" + flag + "' found");
        }
    }

    p.vmm.emplace(
        [](const std::string& s, const std::string& e, const json::value& props) {
            proc->monitor.write(s, e, props);
            on_vm_event(s, e);
            vsock_follow(s, e);
            proc->fs.on_event(s, e, props);  // a stopping VM closes its vhost-user connections
        },
        no_shutdown);
    p.vmm->set_fs_connector([](const json::array& devices) { return proc->fs.connect(devices); });
    if (!event_monitor_spec.empty()) {
        if (event_monitor_spec.starts_with("fd="))
            p.monitor.open_fd(std::atoi(event_monitor_spec.c_str() + 3));
        else if (!event_monitor_spec.starts_with("path=") ||
                 !p.monitor.open_path(event_monitor_spec.substr(5)))
            usage_error("invalid --event-monitor '" + event_monitor_spec +
                        "'");  // a bare value is an error (§3)
    }
    p.monitor.write("vmm", "starting", nullptr);  // before the API socket exists (§7)

    asio::io_context ctx;
    p.ctx = &ctx;
    p.vsock.emplace(ctx.get_executor(), fake_ch::vsock_muxer::from_environment());
    p.vmm->set_vsock_attach([](const json::object& vsock) { return proc->vsock->start(vsock); });
    std::optional<stream_protocol::acceptor> acceptor;
    if (!api_socket.empty()) {
        int fd = -1;
        if (api_socket.starts_with("fd=")) {
            fd = std::atoi(api_socket.c_str() + 3);
            ::fcntl(fd, F_SETFD, FD_CLOEXEC);
            // A slow start: clients that connected meanwhile wait in the listen backlog.
            if (p.fault.late_socket_ms > 0)
                std::this_thread::sleep_for(std::chrono::milliseconds(p.fault.late_socket_ms));
        } else {
            p.socket_path = api_socket.starts_with("path=") ? api_socket.substr(5) : api_socket;
            fd = bind_path(p.socket_path, p.fault.late_socket_ms);
        }
        acceptor.emplace(ctx, stream_protocol(), fd);
        asio::co_spawn(ctx, accept_loop(*acceptor), asio::detached);
    }

    if (restore) {  // --restore (§3, §5): as vm.restore, then vm.resume with resume=true
        json::object request{{"source_url", (*restore)["source_url"]}};
        fake_ch::follow_up ignored{};
        auto r = p.vmm->handle("PUT", "vm.restore", json::serialize(request), ignored);
        if (r.status == 204 && ((*restore)["resume"] == "true" || (*restore)["resume"] == "on"))
            r = p.vmm->handle("PUT", "vm.resume", "", ignored);
        if (r.status != 204) {
            std::fprintf(stderr, "Error restoring VM: %s\n", r.body.value_or("").c_str());
            return 1;
        }
    } else if (payload.contains("kernel") || payload.contains("firmware")) {  // CLI mode (§3.1)
        cli_config["payload"] = std::move(payload);
        if (!cli_config.contains("cpus"))
            cli_config["cpus"] = json::object{{"boot_vcpus", 1}, {"max_vcpus", 1}};
        if (!cli_config.contains("memory")) cli_config["memory"] = json::object{{"size", 512u << 20}};
        std::string error;
        if (!p.vmm->cli_create_and_boot(std::move(cli_config), error)) {
            std::fprintf(stderr, "Error booting VM: %s\n", error.c_str());
            if (!p.socket_path.empty()) ::unlink(p.socket_path.c_str());
            return 1;
        }
    } else if (!cli_config.empty()) {
        usage_error("a payload (--kernel or --firmware) is required with VM configuration flags");
    }

    asio::signal_set signals(ctx, SIGTERM, SIGINT);
    signals.async_wait([](boost::system::error_code ec, int) {
        if (!ec) proc->clean_exit(0);  // vm_delete (hard stop), events, socket removed, exit 0 (§3.1)
    });
    asio::steady_timer lifetime(ctx, 10min);
    lifetime.async_wait([](boost::system::error_code ec) {
        if (!ec) ::_exit(4);
    });
    ctx.run();
    return 0;
}
