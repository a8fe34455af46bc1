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
#include "fake_ch/api_server.hpp"
#include "fake_ch/process_state.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace asio = boost::asio;
namespace json = boost::json;
using asio::local::stream_protocol;
using namespace std::chrono_literals;

using namespace fake_ch;

namespace {

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
