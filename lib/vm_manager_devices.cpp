// vm_manager's device operations (hotplug, counters, memory, vsock): each runs on the VM's strand.
#include "vm_manager_ops.hpp"

#include <vmrt/vm_manager.hpp>

#include <boost/asio/co_spawn.hpp>

namespace vmrt {

namespace asio = boost::asio;
using detail::run_vm_op;

void vm_manager::memory_impl(std::string name, std::uint64_t mib,
                             asio::any_completion_handler<void(error_code, std::uint64_t)> h) {
    run_vm_op<std::uint64_t>(ex_, find(name), 0, std::move(h),
                             [mib](detail::vm_actor& a) { return a.resize_memory(mib); });
}

void vm_manager::add_disk_impl(std::string name, disk_spec disk, device_handler h) {
    run_vm_op<plugged_device>(ex_, find(name), {}, std::move(h),
                              [d = std::move(disk)](detail::vm_actor& a) { return a.add_disk(d); });
}

void vm_manager::add_nic_impl(std::string name, nic_spec nic, device_handler h) {
    run_vm_op<plugged_device>(ex_, find(name), {}, std::move(h),
                              [n = std::move(nic)](detail::vm_actor& a) { return a.add_network(n); });
}

void vm_manager::add_share_impl(std::string name, shared_dir_spec dir, device_handler h) {
    run_vm_op<plugged_device>(ex_, find(name), {}, std::move(h),
                              [d = std::move(dir)](detail::vm_actor& a) { return a.add_shared_dir(d); });
}

void vm_manager::remove_device_impl(std::string name, std::string id,
                                    asio::any_completion_handler<void(error_code, std::string)> h) {
    run_vm_op<std::string>(ex_, find(name), {}, std::move(h),
                           [i = std::move(id)](detail::vm_actor& a) { return a.remove_device(i); });
}

void vm_manager::counters_impl(std::string name,
                               asio::any_completion_handler<void(error_code, device_counters)> h) {
    run_vm_op<device_counters>(ex_, find(name), {}, std::move(h),
                               [](detail::vm_actor& a) { return a.counters(); });
}

net::hybrid_vsock_listener vm_manager::vsock_listen(const std::string& name, std::uint32_t port) {
    auto actor = find(name);
    if (!actor) throw error(make_error_code(errc::not_found), {.message = "no VM named " + name});
    const auto& spec = actor->spec();
    if (!spec.vsock)
        throw error(make_error_code(errc::unsupported),
                    {.message = "the VM has no vsock device (set \"vsock\" in its spec)", .field = "vsock"});
    if (spec.vsock->socket.empty())
        throw error(make_error_code(errc::unsupported),
                    {.message = "the VM's vsock device has no host socket path (hybrid vsock): use "
                                "async_vsock_listen",
                     .field = "vsock.socket"});
    return net::hybrid_vsock_listener::bind(ex_, spec.vsock->socket, port);
}

void vm_manager::vsock_listen_impl(std::string name, std::uint32_t port,
                                   asio::any_completion_handler<void(error_code, vsock_listener)> h) {
    run_vm_op<vsock_listener>(ex_, find(name), vsock_listener{}, std::move(h),
                              [port](detail::vm_actor& a) { return a.vsock_listen(port); });
}

namespace {

using socket_type = asio::local::stream_protocol::socket;

// The stream as a plain fd across the strand hop (a socket is bound to its executor, and the
// completion wants one on the manager's).
asio::awaitable<std::pair<error_code, int>> vsock_on_actor(std::shared_ptr<detail::vm_actor> actor,
                                                           std::uint32_t port) {
    auto s = co_await actor->vsock_connect(port);
    co_return std::pair{error_code{}, s.release()};
}

}  // namespace

void vm_manager::vsock_impl(std::string name, std::uint32_t port,
                            asio::any_completion_handler<void(error_code, socket_type)> h) {
    auto actor = find(name);
    asio::any_completion_handler<void(error_code, int)> adapted = [h = std::move(h),
                                                                   ex = ex_](error_code ec, int fd) mutable {
        socket_type s(ex);
        if (!ec && fd >= 0) s.assign(asio::local::stream_protocol(), fd);
        std::move(h)(ec, std::move(s));
    };
    if (!actor)
        return detail::run_op<int>(ex_, detail::immediate(make_error_code(errc::not_found), -1),
                                   std::move(adapted));
    auto strand = actor->strand();
    detail::run_op<int>(strand, vsock_on_actor(std::move(actor), port), std::move(adapted));
}

}  // namespace vmrt
