// The test-facing side of the simulated VZVirtualMachine (vz_sim_machine.hpp): the knobs a test
// scopes (behaviour, macOS version), the checks it reads (queue violations, misuses), and the
// handle to find, inspect and drive a live machine.
#include "hv/apple_vz/objc/block.hpp"
#include "hv/apple_vz/objc/foundation.hpp"
#include "vz_sim.hpp"
#include "vz_sim_model.hpp"
#include "vz_sim_runtime_model.hpp"

#include <vmrt/io/dispatch_queue.hpp>

#include <boost/asio/post.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <future>
#include <sstream>

namespace vmrt::objc::sim::vz {

// ---- test-facing API -------------------------------------------------------------------------------

using detail::machine_core;
using detail::rec;

scoped_behaviour::scoped_behaviour(guest_behaviour b) {
    std::lock_guard lock(rec().mutex);
    previous_ = std::exchange(rec().behaviour, std::move(b));
}

scoped_behaviour::~scoped_behaviour() {
    std::lock_guard lock(rec().mutex);
    rec().behaviour = std::move(previous_);
}

scoped_unsupported::scoped_unsupported() { detail::virtualization_supported = false; }
scoped_unsupported::~scoped_unsupported() { detail::virtualization_supported = true; }

namespace {

struct runtime_api {
    const char* class_name;
    const char* selector;
    int macos;
    bool arm64_only;
};

// API_AVAILABLE of VZVirtualMachine.h (macOS 26 SDK); save/restore sit inside `#if defined(__arm64__)`.
constexpr runtime_api runtime_table[] = {
    {"VZVirtualMachine", "stopWithCompletionHandler:", 12, false},
    {"VZVirtualMachine", "canStop", 12, false},
    {"VZVirtualMachine", "networkDevices", 12, false},
    {"VZVirtualMachine", "saveMachineStateToURL:completionHandler:", 14, true},
    {"VZVirtualMachine", "restoreMachineStateFromURL:completionHandler:", 14, true},
};

}  // namespace

scoped_macos::scoped_macos(int major, bool apple_silicon) : configuration_(major, apple_silicon) {
    install();
    for (const auto& api : runtime_table)
        if (api.macos > major || (api.arm64_only && !apple_silicon))
            runtime_.push_back(std::make_unique<scoped_hidden_method>(api.class_name, api.selector));
}

scoped_macos::~scoped_macos() = default;

std::vector<queue_violation> queue_violations() {
    std::lock_guard lock(rec().mutex);
    return rec().violations;
}

void clear_queue_violations() {
    std::lock_guard lock(rec().mutex);
    rec().violations.clear();
}

std::vector<std::string> misuses() {
    std::lock_guard lock(rec().mutex);
    return rec().misuses;
}

void clear_misuses() {
    std::lock_guard lock(rec().mutex);
    rec().misuses.clear();
}

machine machine::find(std::string_view queue_label) {
    std::lock_guard lock(rec().mutex);
    auto& list = rec().machines;
    for (auto it = list.rbegin(); it != list.rend(); ++it) {
        auto core = it->lock();
        if (!core || core->queue_label != queue_label) continue;
        std::lock_guard core_lock(core->mutex);
        if (core->self) return machine(core);
    }
    return machine();
}

std::size_t machine::live_count() {
    std::lock_guard lock(rec().mutex);
    std::size_t n = 0;
    for (const auto& w : rec().machines)
        if (auto core = w.lock()) {
            std::lock_guard core_lock(core->mutex);
            n += core->self != nullptr;
        }
    return n;
}

bool machine::alive() const {
    std::lock_guard lock(core_->mutex);
    return core_->self != nullptr;
}

machine_state machine::state() const {
    std::lock_guard lock(core_->mutex);
    return core_->state;
}

std::string machine::queue_label() const { return core_->queue_label; }

guest_behaviour machine::behaviour() const {
    std::lock_guard lock(core_->mutex);
    return core_->behaviour;
}

void machine::set_behaviour(guest_behaviour b) {
    std::lock_guard lock(core_->mutex);
    core_->behaviour = std::move(b);
}

std::size_t machine::stop_requests() const {
    std::lock_guard lock(core_->mutex);
    return core_->stop_requests;
}

namespace {

// Runs fn on the machine's queue and waits for it (the guest's actions arrive there).
template <typename F>
auto on_queue_and_wait(machine_core& core, F fn) -> std::invoke_result_t<F&, machine_core&> {
    using R = std::invoke_result_t<F&, machine_core&>;
    auto promise = std::make_shared<std::promise<R>>();
    auto result = promise->get_future();
    core.on_queue([promise, fn = std::move(fn)](machine_core& c) mutable {
        if constexpr (std::is_void_v<R>) {
            fn(c);
            promise->set_value();
        } else {
            promise->set_value(fn(c));
        }
    });
    if (result.wait_for(std::chrono::seconds(10)) != std::future_status::ready)
        throw std::runtime_error("the simulated VM's queue did not run the guest's action (VM gone?)");
    return result.get();
}

}  // namespace

std::uint64_t machine::balloon_target() const {
    return on_queue_and_wait(*core_, [](machine_core& c) -> std::uint64_t {
        auto devices = array_items(c.balloon_devices.get());
        return devices.empty() ? 0 : detail::balloon_target_of(devices.front().get());
    });
}

void machine::guest_power_off() {
    on_queue_and_wait(*core_, [](machine_core& c) {
        {
            std::lock_guard lock(c.mutex);
            if (c.state != machine_state::running && c.state != machine_state::paused) return;
            c.state = machine_state::stopped;
        }
        detail::tell_delegate_guest_stopped(c);
    });
}

void machine::fail(const ns_error_spec& error) {
    on_queue_and_wait(*core_, [error](machine_core& c) {
        detail::set_state(c, machine_state::error);
        strong e = detail::make_error(error);
        detail::tell_delegate_error(c, e.get());
    });
}

void machine::disconnect_network(std::size_t index, const ns_error_spec& error) {
    on_queue_and_wait(*core_, [index, error](machine_core& c) {
        auto devices = array_items(c.network_devices.get());
        if (index >= devices.size()) return;
        detail::detach_network_device(devices[index].get());
        strong e = detail::make_error(error);
        id vm_obj = nullptr;
        {
            std::lock_guard lock(c.mutex);
            vm_obj = c.self;
        }
        SEL s = sel<"virtualMachine:networkDevice:attachmentWasDisconnectedWithError:">();
        if (id d = c.delegate_for(s)) send<void, id, id, id>(d, s, vm_obj, devices[index].get(), e.get());
    });
}

boost::system::result<guest_connection> machine::guest_connect(std::uint32_t port) {
    return on_queue_and_wait(*core_, [port](machine_core& c) -> boost::system::result<guest_connection> {
        auto devices = array_items(c.socket_devices.get());
        if (devices.empty()) return boost::system::error_code(ENODEV, boost::system::system_category());
        return detail::guest_connects(c, devices.front().get(), port);
    });
}

std::optional<std::string> saved_configuration(const std::string& save_file) {
    std::ifstream in(save_file, std::ios::binary);
    std::string magic, configuration;
    std::getline(in, magic);
    std::getline(in, configuration);
    if (magic != detail::save_magic || !configuration.starts_with("configuration ")) return std::nullopt;
    return configuration.substr(14);
}

}  // namespace vmrt::objc::sim::vz
