#include <vmrt/driver.hpp>

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

}  // namespace vmrt
