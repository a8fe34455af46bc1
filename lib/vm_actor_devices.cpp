// The per-VM device operations: hotplug, unplug, counters, memory resize and vsock streams. Each
// checks the VM's state and its input here, then hands the work to the backend's instance.
#include "vm_actor.hpp"

namespace vmrt::detail {

namespace asio = boost::asio;

std::shared_ptr<vm_instance> vm_actor::running_instance(const char* what, bool paused_ok) const {
    const bool ok = is_running(state_) || (paused_ok && std::holds_alternative<state::paused>(state_));
    if (!ok || !instance_)
        throw error(
            make_error_code(errc::invalid_state),
            {.message = std::string("cannot ") + what + " a VM that is " + std::string(state_name(state_))});
    return instance_;
}

void vm_actor::check_added_device(const vm_spec& with_device, const std::string& field) const {
    for (const auto& problem : validate_spec(with_device))
        if (problem.field.starts_with(field))
            throw error(make_error_code(errc::invalid_spec),
                        {.message = problem.message, .field = problem.field});
    if (auto refusal = driver_->check_spec(with_device); refusal && refusal->field.starts_with(field))
        throw error(make_error_code(errc::unsupported),
                    {.message = refusal->message, .field = refusal->field});
}

vm_spec vm_actor::spec_with_hot_devices() const {
    auto s = spec_;
    for (const auto& [id, device] : hot_devices_) {
        if (auto* d = std::get_if<disk_spec>(&device)) s.data_disks.push_back(*d);
        if (auto* n = std::get_if<nic_spec>(&device)) s.networks.push_back(*n);
        if (auto* f = std::get_if<shared_dir_spec>(&device)) s.shared_dirs.push_back(*f);
    }
    return s;
}

asio::awaitable<std::uint64_t> vm_actor::resize_memory(std::uint64_t mib) {
    auto self = shared_from_this();
    auto inst = running_instance("resize the memory of");
    if (!spec_.max_memory_mib || *spec_.max_memory_mib == spec_.memory_mib)
        throw error(make_error_code(errc::unsupported),
                    {.message = "the VM has no room for more memory (set \"max_memory_mib\" in its spec)",
                     .field = "max_memory_mib"});
    auto now = co_await inst->resize_memory(mib);
    note("memory: the VM now has " + std::to_string(now) + " MiB");
    co_return now;
}

asio::awaitable<plugged_device> vm_actor::add_disk(disk_spec disk) {
    auto self = shared_from_this();
    auto inst = running_instance("add a disk to");
    auto with = spec_with_hot_devices();
    with.data_disks.push_back(disk);
    check_added_device(with, "data_disks[" + std::to_string(with.data_disks.size() - 1) + "]");
    auto d = co_await inst->add_disk(disk);
    hot_devices_[d.id] = disk;
    note("disk " + disk.path.string() + " plugged in as " + d.id);
    co_return d;
}

asio::awaitable<plugged_device> vm_actor::add_network(nic_spec nic) {
    auto self = shared_from_this();
    auto inst = running_instance("add a network interface to");
    auto with = spec_with_hot_devices();
    with.networks.push_back(nic);
    check_added_device(with, "networks[" + std::to_string(with.networks.size() - 1) + "]");
    auto d = co_await inst->add_network(nic);
    hot_devices_[d.id] = nic;
    note("network interface plugged in as " + d.id);
    co_return d;
}

asio::awaitable<plugged_device> vm_actor::add_shared_dir(shared_dir_spec dir) {
    auto self = shared_from_this();
    auto inst = running_instance("add a shared directory to");
    auto with = spec_with_hot_devices();
    with.shared_dirs.push_back(dir);
    check_added_device(with, "shared_dirs[" + std::to_string(with.shared_dirs.size() - 1) + "]");
    auto d = co_await inst->add_shared_dir(dir);
    hot_devices_[d.id] = dir;
    note("shared directory " + dir.host_path.string() + " (tag " + dir.tag + ") plugged in as " + d.id);
    co_return d;
}

asio::awaitable<std::string> vm_actor::remove_device(std::string id) {
    auto self = shared_from_this();
    auto inst = running_instance("remove a device from");
    co_await inst->remove_device(id);
    hot_devices_.erase(id);
    note("device " + id + " removed");
    co_return id;
}

asio::awaitable<device_counters> vm_actor::counters() {
    auto self = shared_from_this();
    auto inst = running_instance("read the counters of", true);
    co_return co_await inst->counters();
}

asio::awaitable<asio::local::stream_protocol::socket> vm_actor::vsock_connect(std::uint32_t port) {
    auto self = shared_from_this();
    auto inst = running_instance("open a vsock stream to");
    if (!spec_.vsock)
        throw error(make_error_code(errc::unsupported),
                    {.message = "the VM has no vsock device (set \"vsock\" in its spec)", .field = "vsock"});
    co_return co_await inst->vsock_connect(port);
}

asio::awaitable<vsock_listener> vm_actor::vsock_listen(std::uint32_t port) {
    auto self = shared_from_this();
    auto inst = running_instance("listen for vsock connections of", true);
    if (!spec_.vsock)
        throw error(make_error_code(errc::unsupported),
                    {.message = "the VM has no vsock device (set \"vsock\" in its spec)", .field = "vsock"});
    co_return co_await inst->vsock_listen(port);
}

}  // namespace vmrt::detail
