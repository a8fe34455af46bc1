#include "hv/ch_api.hpp"

#include <boost/json.hpp>

namespace vmrt::hv::ch {

namespace json = boost::json;
using boost::asio::awaitable;

namespace {

std::string join_message(const std::string& endpoint, int status, const std::vector<std::string>& chain) {
    std::string m = endpoint + ": HTTP " + std::to_string(status);
    for (const auto& c : chain) m += ": " + c;
    if (chain.empty()) m += " (no error text)";
    return m;
}

[[noreturn]] void bad_reply(const std::string& endpoint, const io::http1::response& r,
                            const std::string& why) {
    throw vmrt::error(errc::protocol_error,
                      {.message = endpoint + ": unexpected reply (HTTP " + std::to_string(r.status) +
                                  "): " + why + ": \"" + io::http1::printable_excerpt(r.body) + "\""});
}

json::value parse_body(const std::string& endpoint, const io::http1::response& r) {
    error_code ec;
    auto v = json::parse(r.body, ec);
    if (ec) bad_reply(endpoint, r, "body is not JSON (" + ec.message() + ")");
    return v;
}

std::string body_of(const json::value& v) { return json::serialize(v); }

}  // namespace

api_error::api_error(std::string endpoint, int status, std::vector<std::string> chain)
    : vmrt::error(errc_for_status(status), {.message = join_message(endpoint, status, chain)}),
      endpoint_(std::move(endpoint)), status_(status), chain_(std::move(chain)) {}

api_client::api_client(io::http_unix_client http) : http_(std::move(http)) {}

awaitable<io::http1::response> api_client::call(const char* method, const char* endpoint,
                                                std::optional<std::string> body,
                                                std::optional<std::chrono::steady_clock::duration> timeout,
                                                std::vector<int> fds) {
    std::string target = std::string("/api/v1/") + endpoint;
    auto r =
        co_await http_.async_request(method, std::move(target), std::move(body), timeout, std::move(fds));
    if (r.status < 200 || r.status > 299) throw api_error(endpoint, r.status, parse_error_chain(r.body));
    co_return r;
}

awaitable<void> api_client::action(const char* endpoint, std::optional<std::string> body) {
    co_await call("PUT", endpoint, std::move(body), std::nullopt);
}

awaitable<ping_info> api_client::vmm_ping() {
    auto r = co_await call("GET", "vmm.ping", std::nullopt, std::nullopt);
    auto v = parse_body("vmm.ping", r);
    ping_info p;
    const auto* o = v.if_object();
    if (!o) bad_reply("vmm.ping", r, "not an object");
    if (auto* s = o->if_contains("version"); s && s->is_string()) p.version = s->as_string();
    if (auto* s = o->if_contains("build_version"); s && s->is_string()) p.build_version = s->as_string();
    if (auto* s = o->if_contains("pid"); s && s->is_int64()) p.pid = s->as_int64();
    if (auto* f = o->if_contains("features"); f && f->is_array())
        for (const auto& e : f->as_array())
            if (e.is_string()) p.features.emplace_back(e.as_string());
    if (p.version.empty()) bad_reply("vmm.ping", r, "no version");
    co_return p;
}

awaitable<void> api_client::vmm_shutdown() {
    try {
        co_await action("vmm.shutdown");
    } catch (const vmrt::error& e) {
        // The process may exit before the reply reaches us (§10.4): that is the requested outcome.
        if (e.code() != errc::vmm_crashed) throw;
    }
}

awaitable<void> api_client::vm_create(const vm_config& config) {
    co_await action("vm.create", body_of(to_json(config)));
}

awaitable<void> api_client::vm_boot(std::optional<std::chrono::steady_clock::duration> timeout) {
    co_await call("PUT", "vm.boot", std::nullopt, timeout);
}

awaitable<void> api_client::vm_shutdown() { co_await action("vm.shutdown"); }
awaitable<void> api_client::vm_reboot() { co_await action("vm.reboot"); }
awaitable<void> api_client::vm_power_button() { co_await action("vm.power-button"); }
awaitable<void> api_client::vm_pause() { co_await action("vm.pause"); }
awaitable<void> api_client::vm_resume() { co_await action("vm.resume"); }
awaitable<void> api_client::vm_delete() { co_await action("vm.delete"); }

awaitable<void> api_client::vm_snapshot(std::string destination_url) {
    json::object o;
    o["destination_url"] = destination_url;
    co_await action("vm.snapshot", body_of(o));
}

awaitable<void> api_client::vm_restore(restore_request request) {
    co_await action("vm.restore", body_of(to_json(request)));
}

awaitable<vm_details> api_client::vm_info() {
    auto r = co_await call("GET", "vm.info", std::nullopt, std::nullopt);
    auto v = parse_body("vm.info", r);
    const auto* o = v.if_object();
    if (!o) bad_reply("vm.info", r, "not an object");
    const auto* state = o->if_contains("state");
    if (!state || !state->is_string()) bad_reply("vm.info", r, "no state");
    vm_details info;
    info.state_text = state->as_string();
    info.state = parse_vm_state(info.state_text);
    if (const auto* c = o->if_contains("config")) {
        info.config = vm_config_from_json(*c);
        info.raw_config = *c;
    } else {
        bad_reply("vm.info", r, "no config");
    }
    if (const auto* m = o->if_contains("memory_actual_size"); m && m->is_number()) {
        error_code ec;
        auto n = m->to_number<std::uint64_t>(ec);
        if (!ec) info.memory_actual_size = n;
    }
    co_return info;
}

awaitable<device_counters> api_client::vm_counters() {
    auto r = co_await call("GET", "vm.counters", std::nullopt, std::nullopt);
    auto v = parse_body("vm.counters", r);
    const auto* o = v.if_object();
    if (!o) bad_reply("vm.counters", r, "not an object");
    device_counters out;
    for (const auto& [device, counters] : *o) {
        if (!counters.is_object()) bad_reply("vm.counters", r, "counters of a device are not an object");
        auto& slot = out[std::string(device)];
        for (const auto& [name, value] : counters.as_object()) {
            error_code ec;
            auto n = value.to_number<std::uint64_t>(ec);
            if (ec)
                bad_reply("vm.counters", r,
                          "counter " + std::string(name) + " is not a non-negative integer");
            slot[std::string(name)] = n;
        }
    }
    co_return out;
}

awaitable<void> api_client::vm_resize(resize_request request) {
    co_await action("vm.resize", body_of(to_json(request)));
}

awaitable<void> api_client::vm_resize_zone(std::string zone_id, std::uint64_t desired_ram) {
    json::object o;
    o["id"] = zone_id;
    o["desired_ram"] = desired_ram;
    co_await action("vm.resize-zone", body_of(o));
}

awaitable<std::optional<pci_device_info>> api_client::add_device(const char* endpoint, std::string body,
                                                                 std::vector<int> fds) {
    auto r = co_await call("PUT", endpoint, std::move(body), std::nullopt, std::move(fds));
    if (r.status == 204) co_return std::nullopt;  // cold: only the config was edited
    auto v = parse_body(endpoint, r);
    const auto* o = v.if_object();
    const auto* id = o ? o->if_contains("id") : nullptr;
    const auto* bdf = o ? o->if_contains("bdf") : nullptr;
    if (!id || !id->is_string() || !bdf || !bdf->is_string())
        bad_reply(endpoint, r, "not a PciDeviceInfo {id, bdf}");
    co_return pci_device_info{std::string(id->as_string()), std::string(bdf->as_string())};
}

awaitable<std::optional<pci_device_info>> api_client::vm_add_disk(disk_config disk) {
    co_return co_await add_device("vm.add-disk", body_of(to_json(disk)));
}
awaitable<std::optional<pci_device_info>> api_client::vm_add_fs(fs_config fs) {
    co_return co_await add_device("vm.add-fs", body_of(to_json(fs)));
}
awaitable<std::optional<pci_device_info>> api_client::vm_add_net(net_config net, std::vector<int> fds) {
    co_return co_await add_device("vm.add-net", body_of(to_json(net)), std::move(fds));
}
awaitable<std::optional<pci_device_info>> api_client::vm_add_pmem(pmem_config pmem) {
    co_return co_await add_device("vm.add-pmem", body_of(to_json(pmem)));
}
awaitable<std::optional<pci_device_info>> api_client::vm_add_vsock(vsock_config vsock) {
    co_return co_await add_device("vm.add-vsock", body_of(to_json(vsock)));
}

awaitable<void> api_client::vm_remove_device(std::string id) {
    json::object o;
    o["id"] = id;
    co_await action("vm.remove-device", body_of(o));
}

}  // namespace vmrt::hv::ch
