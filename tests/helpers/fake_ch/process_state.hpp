// The state of the vmrt-fake-cloud-hypervisor process that its parts share: the faults tests
// inject, the event monitor (§7), the guest's serial console, the VMM and its devices. See
// fake_cloud_hypervisor.cpp for what the double does.
#pragma once

#include "fake_ch/fake_vmm.hpp"
#include "fake_ch/vhost_user_frontend.hpp"
#include "fake_ch/vsock_muxer.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <string>

namespace fake_ch {

namespace asio = boost::asio;
namespace json = boost::json;

// ---- faults ----

struct faults {
    std::string crash_on, crash_mid_reply, malformed_body;
    std::map<std::string, int> slow_ms;
    int late_socket_ms = 0;
};

/// The faults VMRT_FAKE_CH_FAULTS asks for (see fake_cloud_hypervisor.cpp).
faults read_faults();

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

/// The one process state (main owns it).
extern fake_process* proc;

/// `s` without leading and trailing blanks and tabs (CH's option and header parsing).
std::string trim(std::string s);
/// The name of the TAP device behind `fd`, or "" if it is none.
std::string tap_name(int fd);

/// Hybrid vsock (§4): the device lives as long as the VM object; follows the VM's events.
void vsock_follow(const std::string& source, const std::string& event);

}  // namespace fake_ch
