#include <vmrt/driver.hpp>

#include <boost/asio/this_coro.hpp>

namespace vmrt {

// Backends without a pause mechanism inherit these refusals, which name the operation.
boost::asio::awaitable<void> vm_instance::pause() {
    throw error(make_error_code(errc::unsupported), {.message = "this backend cannot pause a VM"});
    co_return;
}

boost::asio::awaitable<std::uint64_t> vm_instance::resize_balloon(std::uint64_t) {
    throw error(make_error_code(errc::unsupported), {.message = "this backend cannot resize a balloon"});
    co_return 0;
}

boost::asio::awaitable<std::uint32_t> vm_instance::resize_vcpus(std::uint32_t) {
    throw error(make_error_code(errc::unsupported), {.message = "this backend cannot change the vCPU count"});
    co_return 0;
}

boost::asio::awaitable<void> vm_instance::save_snapshot(const std::filesystem::path&) {
    throw error(make_error_code(errc::unsupported), {.message = "this backend cannot take snapshots"});
    co_return;
}

boost::asio::awaitable<void> vm_instance::resume() {
    throw error(make_error_code(errc::unsupported), {.message = "this backend cannot resume a VM"});
    co_return;
}

boost::asio::awaitable<bool> vm_instance::request_vmm_exit() { co_return false; }

namespace {
[[noreturn]] void refuse(const char* what) {
    throw error(make_error_code(errc::unsupported), {.message = std::string("this backend cannot ") + what});
}
}  // namespace

boost::asio::awaitable<std::uint64_t> vm_instance::resize_memory(std::uint64_t) {
    refuse("change the memory size of a running VM");
    co_return 0;
}

boost::asio::awaitable<plugged_device> vm_instance::add_disk(const disk_spec&) {
    refuse("hot-plug disks");
    co_return plugged_device{};
}

boost::asio::awaitable<plugged_device> vm_instance::add_network(const nic_spec&) {
    refuse("hot-plug network interfaces");
    co_return plugged_device{};
}

boost::asio::awaitable<plugged_device> vm_instance::add_shared_dir(const shared_dir_spec&) {
    refuse("hot-plug shared directories");
    co_return plugged_device{};
}

boost::asio::awaitable<void> vm_instance::remove_device(const std::string&) {
    refuse("unplug devices");
    co_return;
}

boost::asio::awaitable<device_counters> vm_instance::counters() {
    refuse("report device counters");
    co_return device_counters{};
}

boost::asio::awaitable<boost::asio::local::stream_protocol::socket>
vm_instance::vsock_connect(std::uint32_t) {
    auto ex = co_await boost::asio::this_coro::executor;
    refuse("open vsock streams");
    co_return boost::asio::local::stream_protocol::socket(ex);
}

boost::asio::awaitable<vsock_listener> vm_instance::vsock_listen(std::uint32_t) {
    refuse("accept vsock connections from the guest");
    co_return vsock_listener{};
}

}  // namespace vmrt
