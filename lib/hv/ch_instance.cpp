#include "hv/ch_instance.hpp"

#include "hv/ch_config.hpp"

#include <vmrt/net/hybrid_vsock.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <unistd.h>

#include <csignal>

namespace vmrt::hv {

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {
constexpr std::uint64_t mib = 1ull << 20;
// While a vCPU removal is pending, CH answers vm.resize with 429 (§6): retry for this long.
constexpr auto resize_busy_limit = 30s;
}  // namespace

// ---- event monitor ----

struct ch_event_reader {
    explicit ch_event_reader(asio::posix::stream_descriptor d) : pipe(std::move(d)) {}
    asio::posix::stream_descriptor pipe;
    ch::event_stream_parser parser;
};

namespace {

asio::awaitable<void> read_events(std::shared_ptr<ch_event_reader> r,
                                  std::function<void(const ch::monitor_event&)> on_event) {
    std::array<char, 4096> buf;
    for (;;) {
        auto [ec, n] =
            co_await r->pipe.async_read_some(asio::buffer(buf), asio::as_tuple(asio::use_awaitable));
        if (ec) co_return;  // EOF: CH exited (or the instance closed the pipe)
        for (const auto& ev : r->parser.feed(std::string_view(buf.data(), n))) on_event(ev);
    }
}

std::string describe(const ch::monitor_event& ev) {
    std::string text = "cloud-hypervisor event " + ev.name();
    for (const auto& [k, v] : ev.properties) text += " " + k + "=" + v;
    return text;
}

}  // namespace

std::shared_ptr<ch_event_reader> start_event_reader(asio::any_io_executor ex, io::unique_fd pipe,
                                                    std::function<void(const ch::monitor_event&)> on_event) {
    auto r = std::make_shared<ch_event_reader>(asio::posix::stream_descriptor(ex, pipe.release()));
    asio::co_spawn(ex, read_events(r, std::move(on_event)), asio::detached);
    return r;
}

// ---- instance ----

ch_instance::ch_instance(ch_instance_parts parts) : p_(std::move(parts)) {
    auto note = p_.note;
    reader_ = start_event_reader(p_.vmm.get_executor(), std::move(p_.events),
                                 [note](const ch::monitor_event& ev) { note(describe(ev)); });
}

ch_instance::~ch_instance() {
    kill();
    boost::system::error_code ignored;
    if (reader_) reader_->pipe.close(ignored);
    if (!p_.api_socket.empty()) ::unlink(p_.api_socket.c_str());
}

void ch_instance::ending() {
    for (auto& c : p_.companions) c->vm_ending();
    for (auto& [id, c] : hotplugged_) c->vm_ending();
}

asio::awaitable<exit_status> ch_instance::wait_exit() {
    auto status = co_await p_.vmm.async_wait(asio::use_awaitable);
    ending();
    p_.api.http().close();
    co_return status;
}

asio::awaitable<void> ch_instance::request_powerdown() { co_await p_.api.vm_power_button(); }

asio::awaitable<bool> ch_instance::request_vmm_exit() {
    // vmm.shutdown deletes the VM (a hard stop, no ACPI) and makes CH exit 0 (§10.3).
    ending();
    p_.note("the guest did not power off in time: asking Cloud Hypervisor to end the VM (vmm.shutdown)");
    try {
        co_await p_.api.vmm_shutdown();
        co_return true;
    } catch (const std::exception& e) {
        p_.note(std::string("vmm.shutdown was not delivered: ") + e.what());
        co_return false;
    }
}

void ch_instance::terminate() {
    // CH handles SIGTERM: vm_delete (hard stop), events, socket removed, exit 0 (§3.1).
    ending();
    p_.vmm.signal(SIGTERM);
}

void ch_instance::kill() {
    ending();
    p_.vmm.signal_group(SIGKILL);
    p_.vmm.signal(SIGKILL);
}

asio::awaitable<void> ch_instance::pause() { co_await p_.api.vm_pause(); }
asio::awaitable<void> ch_instance::resume() { co_await p_.api.vm_resume(); }

namespace {
// The guest's RAM as CH reports it: memory_actual_size is the RAM minus the balloon (§6).
std::uint64_t ram_bytes(const ch::vm_details& info) {
    if (!info.memory_actual_size) return info.config.memory.size;
    return *info.memory_actual_size + (info.config.balloon ? info.config.balloon->size : 0);
}
}  // namespace

asio::awaitable<std::uint64_t> ch_instance::resize_balloon(std::uint64_t target_mib) {
    auto before = co_await p_.api.vm_info();
    const std::uint64_t ram = ram_bytes(before);
    // The balloon takes what the guest must give up; the guest keeps the rest.
    ch::resize_request r;
    r.desired_balloon = ram > target_mib * mib ? ram - target_mib * mib : 0;
    co_await p_.api.vm_resize(r);
    auto after = co_await p_.api.vm_info();
    co_return after.memory_actual_size.value_or(ram - *r.desired_balloon) / mib;
}

asio::awaitable<std::uint32_t> ch_instance::resize_vcpus(std::uint32_t count) {
    ch::resize_request r;
    r.desired_vcpus = count;
    const auto give_up = std::chrono::steady_clock::now() + resize_busy_limit;
    auto pause = 50ms;
    for (;;) {
        try {
            co_await p_.api.vm_resize(r);
            break;
        } catch (const ch::api_error& e) {
            // 429: an earlier vCPU removal is still pending in the guest; it is worth waiting.
            if (e.status() != 429 || std::chrono::steady_clock::now() + pause > give_up) throw;
        }
        asio::steady_timer t(co_await asio::this_coro::executor, pause);
        co_await t.async_wait(asio::use_awaitable);
        pause = std::min<std::chrono::milliseconds>(pause * 2, 1s);
    }
    auto info = co_await p_.api.vm_info();
    co_return info.config.cpus.boot_vcpus;
}

asio::awaitable<std::uint64_t> ch_instance::resize_memory(std::uint64_t new_mib) {
    if (!p_.spec.max_memory_mib || new_mib > *p_.spec.max_memory_mib || new_mib < p_.spec.memory_mib)
        throw error(make_error_code(errc::invalid_spec),
                    {.message = "memory can be resized between memory_mib (" +
                                std::to_string(p_.spec.memory_mib) + ") and max_memory_mib (" +
                                std::to_string(p_.spec.max_memory_mib.value_or(p_.spec.memory_mib)) +
                                ") MiB, found " + std::to_string(new_mib),
                     .field = "max_memory_mib"});
    ch::resize_request r;
    r.desired_ram = new_mib * mib;
    co_await p_.api.vm_resize(r);
    auto info = co_await p_.api.vm_info();
    co_return ram_bytes(info) / mib;
}

asio::awaitable<void> ch_instance::save_snapshot(const std::filesystem::path& dir) {
    // CH snapshots only a paused VM (§5) and leaves it paused.
    auto info = co_await p_.api.vm_info();
    if (info.state == ch::vm_state::running) co_await p_.api.vm_pause();
    co_await p_.api.vm_snapshot("file://" + std::filesystem::absolute(dir).string());
}

plugged_device ch_instance::plugged(const std::optional<ch::pci_device_info>& info, std::string id) {
    plugged_device d;
    d.id = info ? info->id : std::move(id);
    if (info) d.bus_address = info->bdf;
    return d;
}

asio::awaitable<plugged_device> ch_instance::add_disk(const disk_spec& disk) {
    if (disk.interface == disk_interface::nvme)
        throw error(make_error_code(errc::unsupported),
                    {.message = "Cloud Hypervisor has no NVMe controller"});
    ch::disk_config c;
    c.path = disk.path.string();
    if (disk.read_only) c.readonly = true;
    if (disk.cache == disk_cache::none) c.direct = true;
    c.id = "hotdisk" + std::to_string(hotplug_counter_++);
    auto info = co_await p_.api.vm_add_disk(c);
    co_return plugged(info, *c.id);
}

asio::awaitable<plugged_device> ch_instance::add_network(const nic_spec& nic) {
    if (nic.kind != nic_kind::tap || !nic.switch_network.empty())
        throw error(
            make_error_code(errc::unsupported),
            {.message = "Cloud Hypervisor's virtio-net needs a TAP device: only tap NICs can be added"});
    if (!p_.open_tap)
        throw error(make_error_code(errc::unsupported), {.message = "this VM cannot open TAP devices"});
    int fd = -1;
    auto tap = p_.open_tap(nic, fd);
    ch::net_config c;
    c.id = "hotnet" + std::to_string(hotplug_counter_++);
    c.mac =
        nic.mac.value_or(default_mac(p_.spec.name, p_.spec.networks.size() + hotplug_counter_)).to_string();
    c.num_queues = 2;
    std::vector<int> fds;
    fds.push_back(fd);
    auto info = co_await p_.api.vm_add_net(c, std::move(fds));  // the fd travels by SCM_RIGHTS (§1.3)
    if (tap) hotplugged_[info ? info->id : *c.id] = std::move(tap);
    co_return plugged(info, *c.id);
}

asio::awaitable<plugged_device> ch_instance::add_shared_dir(const shared_dir_spec& dir) {
    if (!p_.start_share)
        throw error(make_error_code(errc::unsupported), {.message = "this VM cannot start virtiofsd"});
    std::filesystem::path socket;
    auto sidecar = p_.start_share(dir, socket);
    ch::fs_config c;
    c.tag = dir.tag;
    c.socket = socket.string();
    c.id = "hotfs" + std::to_string(hotplug_counter_++);
    auto info = co_await p_.api.vm_add_fs(c);
    hotplugged_[info ? info->id : *c.id] = std::move(sidecar);
    co_return plugged(info, *c.id);
}

asio::awaitable<void> ch_instance::remove_device(const std::string& id) {
    co_await p_.api.vm_remove_device(id);
    // CH confirms removal once the guest has ejected it (vm/device-removed); the backend of a
    // device vmrt started for it goes with the device.
    if (auto it = hotplugged_.find(id); it != hotplugged_.end()) {
        it->second->vm_ending();
        hotplugged_.erase(it);
    }
}

asio::awaitable<asio::local::stream_protocol::socket> ch_instance::vsock_connect(std::uint32_t port) {
    if (!p_.spec.vsock)
        throw error(make_error_code(errc::unsupported),
                    {.message = "the VM has no vsock device", .field = "vsock"});
    auto stream = co_await net::async_hybrid_vsock_connect(p_.spec.vsock->socket, port);
    co_return std::move(stream.socket);
}

namespace {

// Hybrid vsock behind the backend-neutral listener: CH connects to `<socket>_<port>`.
class hybrid_vsock_source final : public vsock_listener::source {
public:
    explicit hybrid_vsock_source(net::hybrid_vsock_listener l) : listener_(std::move(l)) {}

    asio::awaitable<asio::local::stream_protocol::socket> accept() override {
        auto ex = co_await asio::this_coro::executor;
        auto accepted = co_await listener_.accept();
        // vsock_listener hands out streams on the awaiting coroutine's executor.
        asio::local::stream_protocol::socket out(ex);
        out.assign(asio::local::stream_protocol(), accepted.release());
        co_return out;
    }

private:
    net::hybrid_vsock_listener listener_;
};

}  // namespace

asio::awaitable<vsock_listener> ch_instance::vsock_listen(std::uint32_t port) {
    if (!p_.spec.vsock)
        throw error(make_error_code(errc::unsupported),
                    {.message = "the VM has no vsock device", .field = "vsock"});
    auto ex = co_await asio::this_coro::executor;
    auto listener = net::hybrid_vsock_listener::bind(ex, p_.spec.vsock->socket, port);
    co_return vsock_listener(port, std::make_unique<hybrid_vsock_source>(std::move(listener)));
}

asio::awaitable<device_counters> ch_instance::counters() { co_return co_await p_.api.vm_counters(); }

std::string ch_instance::vmm_log_tail() const { return io::read_file_tail(p_.vmm_log, 2048); }

}  // namespace vmrt::hv
