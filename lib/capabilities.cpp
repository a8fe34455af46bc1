#include <vmrt/capabilities.hpp>

namespace vmrt {

std::string_view to_string(operation op) noexcept {
    switch (op) {
    case operation::start:
        return "start";
    case operation::stop_graceful:
        return "stop_graceful";
    case operation::kill:
        return "kill";
    case operation::pause:
        return "pause";
    case operation::resume:
        return "resume";
    case operation::snapshot:
        return "snapshot";
    case operation::restore:
        return "restore";
    case operation::resize_cpus:
        return "resize_cpus";
    case operation::resize_memory:
        return "resize_memory";
    case operation::resize_balloon:
        return "resize_balloon";
    case operation::hotplug_disk:
        return "hotplug_disk";
    case operation::hotplug_net:
        return "hotplug_net";
    case operation::hotplug_fs:
        return "hotplug_fs";
    case operation::counters:
        return "counters";
    case operation::vsock_connect:
        return "vsock_connect";
    case operation::count_:
        break;
    }
    return "unknown";
}

capability_set::capability_set(std::string_view reason) {
    for (auto& op : ops_) op = {false, std::string(reason)};
}

capability_set& capability_set::allow(operation op) {
    ops_[static_cast<std::size_t>(op)] = {true, {}};
    return *this;
}

capability_set& capability_set::deny(operation op, std::string why_not) {
    ops_[static_cast<std::size_t>(op)] = {false, std::move(why_not)};
    return *this;
}

}  // namespace vmrt
