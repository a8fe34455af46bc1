// Typed client for Cloud Hypervisor's REST API (`--api-socket`), over io::http_unix_client.
// Facts from shared/reference/cloud-hypervisor.md (§1 endpoints, §1.1 status codes, §2.6 older
// releases); the request and reply shapes follow shared/reference/cloud-hypervisor-openapi.yaml.
//
//   hv::ch::api_client api(io::http_unix_client(std::move(socket)));
//   co_await api.vm_create(config);
//   co_await api.vm_boot();
//   auto info = co_await api.vm_info();   // info.state == vm_state::running
//
// Errors: every non-2xx reply is an api_error (a vmrt::error) carrying the HTTP status and CH's
// error chain (a JSON array of strings on v48+, plain text before, §2.6), joined into
// diag().message as "<endpoint>: HTTP <status>: <chain[0]>: <chain[1]>: ...". The code is chosen
// from the status alone, because CH keys it on the root error and older releases sent 500 for
// everything (§10.6):
//   400 → errc::invalid_spec     bad JSON or a config CH refused
//   404 → errc::not_found        no VM created, or an unknown device id (also vm.reboot when not booted)
//   409 → errc::already_exists   duplicate device id or path
//   429 → errc::invalid_state    vm.resize while a vCPU removal is pending (retry later)
//   5xx → errc::command_failed   everything else, including every state conflict (boot twice,
//                                pause when not running, snapshot while running, ...)
//   any other non-2xx → errc::http_status
// A 2xx reply whose body is not what the endpoint returns is errc::protocol_error. Transport
// errors are those of io::http_unix_client (errc::vmm_crashed when the VMM goes away mid-call).
// After any error, vm.info is the source of truth for the VM's state (§10.6).
#pragma once

#include "io/http_unix_client.hpp"

#include <vmrt/error.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/json/value.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace vmrt::hv::ch {

// ---- VmConfig: the subset vmrt sets (every field optional; unset fields are left out) ----

struct cpus_config {
    unsigned boot_vcpus = 1;
    std::optional<unsigned> max_vcpus;
};

struct memory_config {
    std::uint64_t size = 512ull << 20;  ///< bytes
    std::optional<std::uint64_t> hotplug_size;
    std::optional<bool> shared;  ///< needed by virtio-fs (§8)
};

struct payload_config {
    std::optional<std::string> kernel;
    std::optional<std::string> firmware;
    std::optional<std::string> initramfs;
    std::optional<std::string> cmdline;
};

struct disk_config {
    std::string path;
    std::optional<bool> readonly;
    std::optional<bool> direct;  ///< O_DIRECT: no host page cache
    std::optional<std::string> id;
};

struct net_config {
    std::optional<std::string> tap;
    std::optional<std::string> mac;
    std::optional<std::string> id;
    std::optional<unsigned> num_queues;
    /// Open TAP fds (command line `fd=[..]` only: over the API they travel by SCM_RIGHTS and CH
    /// ignores numbers in the JSON, §1.3). CH wants num_queues == 2 * fds.size().
    std::vector<int> fds;
};

struct fs_config {
    std::string tag;  ///< at most 36 characters (§3)
    std::string socket;
    unsigned num_queues = 1;     ///< required by the OpenAPI FsConfig, so always sent; CH's default
    unsigned queue_size = 1024;  ///< likewise
    std::optional<std::string> id;
};

struct pmem_config {
    std::string file;
    std::optional<std::uint64_t> size;
    std::optional<std::string> id;
};

struct vsock_config {
    std::uint32_t cid = 3;
    std::string socket;
    std::optional<std::string> id;
};

/// ConsoleConfig: mode is one of Off, Pty, Tty, File, Socket, Null.
struct console_config {
    std::string mode = "Null";
    std::optional<std::string> file;
    std::optional<std::string> socket;
};

struct balloon_config {
    std::uint64_t size = 0;
    std::optional<bool> deflate_on_oom;
    std::optional<bool> free_page_reporting;
};

struct vm_config {
    cpus_config cpus;
    memory_config memory;
    payload_config payload;
    std::vector<disk_config> disks;
    std::vector<net_config> net;
    std::vector<fs_config> fs;
    std::vector<pmem_config> pmem;
    std::optional<vsock_config> vsock;
    std::optional<console_config> serial;
    std::optional<console_config> console;
    std::optional<balloon_config> balloon;
};

// ---- Replies ----

struct ping_info {
    std::string version;
    std::string build_version;
    std::optional<std::int64_t> pid;
    std::vector<std::string> features;
};

enum class vm_state { created, running, shutdown, paused, breakpoint, unknown };
const char* to_string(vm_state s) noexcept;

struct vm_details {
    vm_state state = vm_state::unknown;
    std::string state_text;  ///< as CH sent it (kept when `state` is unknown)
    vm_config config;        ///< the subset above, parsed leniently (unknown fields are ignored)
    boost::json::value raw_config;
    std::optional<std::uint64_t> memory_actual_size;
};

/// device id → counter name → value.
using device_counters = std::map<std::string, std::map<std::string, std::uint64_t>>;

/// A hotplugged device (reply to vm.add-* on a booted VM).
struct pci_device_info {
    std::string id;
    std::string bdf;
};

struct resize_request {
    std::optional<unsigned> desired_vcpus;
    std::optional<std::uint64_t> desired_ram;      ///< bytes
    std::optional<std::uint64_t> desired_balloon;  ///< bytes
};

struct restore_request {
    std::string source_url;  ///< file:///dir
    std::optional<bool> prefault;
    std::optional<bool> resume;
    std::optional<std::string> memory_restore_mode;  ///< "Copy" or "OnDemand"
};

// ---- Which endpoints of CH's OpenAPI file the client covers (ch_endpoints.cpp) ----

/// One endpoint: `path` as the OpenAPI file spells it ("/vm.info"; the request target is "/api/v1"
/// + path), `method` as sent on the wire ("GET" or "PUT").
struct endpoint_info {
    std::string_view path;
    std::string_view method;
};
/// An endpoint of the OpenAPI file that api_client deliberately does not implement, and why.
struct skipped_endpoint {
    std::string_view path;
    std::string_view method;
    std::string_view why;
};
/// Every endpoint an api_client member function sends. component.ch_openapi_test checks both
/// lists against the OpenAPI file (each path in exactly one list, nothing stale, same method)
/// and checks this one against the requests the client really sends.
std::span<const endpoint_info> implemented_endpoints() noexcept;
std::span<const skipped_endpoint> skipped_endpoints() noexcept;

// ---- JSON (ch_api_json.cpp; usable without a connection) ----

boost::json::value to_json(const vm_config& c);
/// Lenient: unknown and unset fields are ignored; a wrong type is errc::protocol_error.
vm_config vm_config_from_json(const boost::json::value& v);
boost::json::value to_json(const disk_config& c);
boost::json::value to_json(const net_config& c);
boost::json::value to_json(const fs_config& c);
boost::json::value to_json(const pmem_config& c);
boost::json::value to_json(const vsock_config& c);
boost::json::value to_json(const resize_request& r);
boost::json::value to_json(const restore_request& r);
vm_state parse_vm_state(std::string_view s) noexcept;

/// CH's error chain from an error body: a JSON array of strings if it is one, otherwise the body
/// as one plain-text element (trimmed and made printable); empty for an empty body.
std::vector<std::string> parse_error_chain(std::string_view body);
/// The errc for a non-2xx status (table at the top of this file).
errc errc_for_status(int status) noexcept;

/// A non-2xx reply from CH.
class api_error : public vmrt::error {
public:
    api_error(std::string endpoint, int status, std::vector<std::string> chain);
    const std::string& endpoint() const noexcept { return endpoint_; }
    int status() const noexcept { return status_; }
    /// CH's error chain, top error first, root cause last.
    const std::vector<std::string>& chain() const noexcept { return chain_; }

private:
    std::string endpoint_;
    int status_;
    std::vector<std::string> chain_;
};

class api_client {
public:
    explicit api_client(io::http_unix_client http);

    boost::asio::awaitable<ping_info> vmm_ping();
    /// CH answers 200 with an empty body and exits; the reply may race the exit (§2.2, §10.4),
    /// so a connection closed before the reply (errc::vmm_crashed) counts as success here.
    boost::asio::awaitable<void> vmm_shutdown();

    boost::asio::awaitable<void> vm_create(const vm_config& config);
    /// `timeout`: vm.boot may block up to 60 s waiting for vhost-user backends (§10.7).
    boost::asio::awaitable<void>
    vm_boot(std::optional<std::chrono::steady_clock::duration> timeout = std::nullopt);
    boost::asio::awaitable<void> vm_shutdown();
    boost::asio::awaitable<void> vm_reboot();
    boost::asio::awaitable<void> vm_power_button();
    boost::asio::awaitable<void> vm_pause();
    boost::asio::awaitable<void> vm_resume();
    /// `destination_url`: file:///existing/empty/dir; the VM must be paused (§5).
    boost::asio::awaitable<void> vm_snapshot(std::string destination_url);
    boost::asio::awaitable<void> vm_restore(restore_request request);
    boost::asio::awaitable<vm_details> vm_info();
    boost::asio::awaitable<device_counters> vm_counters();
    /// Idempotent on CH's side (204 even when nothing is created).
    boost::asio::awaitable<void> vm_delete();
    boost::asio::awaitable<void> vm_resize(resize_request request);
    boost::asio::awaitable<void> vm_resize_zone(std::string zone_id, std::uint64_t desired_ram);

    /// Hotplug: the device when the VM is booted (200), nullopt when it is only created (CH
    /// edits the config and answers 204, §1.3).
    boost::asio::awaitable<std::optional<pci_device_info>> vm_add_disk(disk_config disk);
    boost::asio::awaitable<std::optional<pci_device_info>> vm_add_fs(fs_config fs);
    /// `fds`: the TAP fds of the NIC, passed by SCM_RIGHTS (CH ignores fd numbers in the JSON, §1.3).
    boost::asio::awaitable<std::optional<pci_device_info>> vm_add_net(net_config net,
                                                                      std::vector<int> fds = {});
    boost::asio::awaitable<std::optional<pci_device_info>> vm_add_pmem(pmem_config pmem);
    boost::asio::awaitable<std::optional<pci_device_info>> vm_add_vsock(vsock_config vsock);
    boost::asio::awaitable<void> vm_remove_device(std::string id);

    io::http_unix_client& http() noexcept { return http_; }

private:
    boost::asio::awaitable<io::http1::response>
    call(const char* method, const char* endpoint, std::optional<std::string> body,
         std::optional<std::chrono::steady_clock::duration> timeout, std::vector<int> fds = {});
    boost::asio::awaitable<void> action(const char* endpoint, std::optional<std::string> body = std::nullopt);
    boost::asio::awaitable<std::optional<pci_device_info>> add_device(const char* endpoint, std::string body,
                                                                      std::vector<int> fds = {});

    io::http_unix_client http_;
};

}  // namespace vmrt::hv::ch
