// install(), the test knobs (Rosetta, host limits, injected failures), the availability table and
// the helpers the simulated classes share.
#include "vz_sim_model.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <random>

namespace vmrt::objc::sim::vz {

struct failure_slot {
    std::string class_name;
    std::string selector;
    injected_error error;
    int remaining = 0;
};

namespace {

struct knob_state {
    std::mutex mutex;
    rosetta_availability rosetta = rosetta_availability::installed;
    host_limits limits;
    std::deque<std::shared_ptr<failure_slot>> failures;  ///< oldest first
};

knob_state& knobs() {
    static knob_state* const state = new knob_state;  // never destroyed: objects may die late
    return *state;
}

// API_AVAILABLE of each class and of the methods that arrived after their class (macOS 11.0-14.4
// SDK headers). VZLinuxRosettaDirectoryShare.h and validateSaveRestoreSupportWithError: are
// declared inside `#ifdef __arm64__`.
constexpr api_version table[] = {
    {"VZVirtualMachineConfiguration", "", 11},
    {"VZVirtualMachineConfiguration", "platform", 12},
    {"VZVirtualMachineConfiguration", "setPlatform:", 12},
    {"VZVirtualMachineConfiguration", "directorySharingDevices", 12},
    {"VZVirtualMachineConfiguration", "setDirectorySharingDevices:", 12},
    {"VZVirtualMachineConfiguration", "audioDevices", 12},
    {"VZVirtualMachineConfiguration", "setAudioDevices:", 12},
    {"VZVirtualMachineConfiguration", "keyboards", 12},
    {"VZVirtualMachineConfiguration", "setKeyboards:", 12},
    {"VZVirtualMachineConfiguration", "pointingDevices", 12},
    {"VZVirtualMachineConfiguration", "setPointingDevices:", 12},
    {"VZVirtualMachineConfiguration", "graphicsDevices", 12},
    {"VZVirtualMachineConfiguration", "setGraphicsDevices:", 12},
    {"VZVirtualMachineConfiguration", "consoleDevices", 13},
    {"VZVirtualMachineConfiguration", "setConsoleDevices:", 13},
    {"VZVirtualMachineConfiguration", "validateSaveRestoreSupportWithError:", 14, true},
    {"VZBootLoader", "", 11},
    {"VZLinuxBootLoader", "", 11},
    {"VZEFIBootLoader", "", 13},
    {"VZEFIVariableStore", "", 13},
    {"VZPlatformConfiguration", "", 12},
    {"VZGenericPlatformConfiguration", "", 12},
    {"VZGenericPlatformConfiguration", "machineIdentifier", 13},
    {"VZGenericPlatformConfiguration", "setMachineIdentifier:", 13},
    {"VZGenericMachineIdentifier", "", 13},
    {"VZStorageDeviceAttachment", "", 11},
    {"VZDiskImageStorageDeviceAttachment", "", 11},
    {"VZDiskImageStorageDeviceAttachment", "initWithURL:readOnly:cachingMode:synchronizationMode:error:", 12},
    {"VZDiskImageStorageDeviceAttachment", "cachingMode", 12},
    {"VZDiskImageStorageDeviceAttachment", "synchronizationMode", 12},
    {"VZStorageDeviceConfiguration", "", 11},
    {"VZVirtioBlockDeviceConfiguration", "", 11},
    {"VZNVMExpressControllerDeviceConfiguration", "", 14},
    {"VZNetworkDeviceAttachment", "", 11},
    {"VZNATNetworkDeviceAttachment", "", 11},
    {"VZFileHandleNetworkDeviceAttachment", "", 11},
    {"VZFileHandleNetworkDeviceAttachment", "maximumTransmissionUnit", 13},
    {"VZFileHandleNetworkDeviceAttachment", "setMaximumTransmissionUnit:", 13},
    {"VZNetworkDeviceConfiguration", "", 11},
    {"VZVirtioNetworkDeviceConfiguration", "", 11},
    {"VZMACAddress", "", 11},
    {"VZSerialPortAttachment", "", 11},
    {"VZFileSerialPortAttachment", "", 11},
    {"VZFileHandleSerialPortAttachment", "", 11},
    {"VZSerialPortConfiguration", "", 11},
    {"VZVirtioConsoleDeviceSerialPortConfiguration", "", 11},
    {"VZConsoleDeviceConfiguration", "", 13},
    {"VZVirtioConsoleDeviceConfiguration", "", 13},
    {"VZConsolePortConfiguration", "", 13},
    {"VZVirtioConsolePortConfiguration", "", 13},
    {"VZVirtioConsolePortConfigurationArray", "", 13},
    {"VZEntropyDeviceConfiguration", "", 11},
    {"VZVirtioEntropyDeviceConfiguration", "", 11},
    {"VZMemoryBalloonDeviceConfiguration", "", 11},
    {"VZVirtioTraditionalMemoryBalloonDeviceConfiguration", "", 11},
    {"VZSocketDeviceConfiguration", "", 11},
    {"VZVirtioSocketDeviceConfiguration", "", 11},
    {"VZDirectorySharingDeviceConfiguration", "", 12},
    {"VZVirtioFileSystemDeviceConfiguration", "", 12},
    {"VZVirtioFileSystemDeviceConfiguration", "+macOSGuestAutomountTag", 13},
    {"VZDirectoryShare", "", 12},
    {"VZSharedDirectory", "", 12},
    {"VZSingleDirectoryShare", "", 12},
    {"VZMultipleDirectoryShare", "", 12},
    {"VZLinuxRosettaDirectoryShare", "", 13, true},
};

}  // namespace

void install() {
    static std::once_flag once;
    std::call_once(once, [] {
        detail::install_boot();
        detail::install_platform();
        detail::install_storage();
        detail::install_network();
        detail::install_console();
        detail::install_sharing();
        detail::install_devices();
        detail::install_configuration();
        detail::install_runtime();  // VZVirtualMachine and its runtime devices (vz_sim_machine.hpp)
    });
}

void set_rosetta_availability(rosetta_availability value) {
    std::lock_guard lock(knobs().mutex);
    knobs().rosetta = value;
}

rosetta_availability current_rosetta_availability() {
    std::lock_guard lock(knobs().mutex);
    return knobs().rosetta;
}

scoped_rosetta_availability::scoped_rosetta_availability(rosetta_availability value)
    : previous_(current_rosetta_availability()) {
    set_rosetta_availability(value);
}

scoped_rosetta_availability::~scoped_rosetta_availability() { set_rosetta_availability(previous_); }

host_limits current_host_limits() {
    std::lock_guard lock(knobs().mutex);
    return knobs().limits;
}

scoped_host_limits::scoped_host_limits(host_limits limits) : previous_(current_host_limits()) {
    std::lock_guard lock(knobs().mutex);
    knobs().limits = limits;
}

scoped_host_limits::~scoped_host_limits() {
    std::lock_guard lock(knobs().mutex);
    knobs().limits = previous_;
}

scoped_failure::scoped_failure(std::string class_name, std::string selector, injected_error error, int times)
    : slot_(std::make_shared<failure_slot>(
          failure_slot{std::move(class_name), std::move(selector), std::move(error), times})) {
    std::lock_guard lock(knobs().mutex);
    knobs().failures.push_back(slot_);
}

scoped_failure::~scoped_failure() {
    std::lock_guard lock(knobs().mutex);
    auto& list = knobs().failures;
    list.erase(std::remove(list.begin(), list.end(), slot_), list.end());
}

int scoped_failure::remaining() const {
    std::lock_guard lock(knobs().mutex);
    return slot_->remaining;
}

std::span<const api_version> availability_table() { return table; }

struct scoped_macos_version::hidden {
    std::vector<std::unique_ptr<scoped_hidden_class>> classes;
    std::vector<std::unique_ptr<scoped_hidden_method>> methods;
};

scoped_macos_version::scoped_macos_version(int major, bool apple_silicon)
    : hidden_(std::make_unique<hidden>()) {
    install();
    for (const api_version& api : table) {
        if (api.macos <= major && (apple_silicon || !api.arm64_only)) continue;
        if (api.selector.empty())
            hidden_->classes.push_back(std::make_unique<scoped_hidden_class>(std::string(api.class_name)));
        else
            hidden_->methods.push_back(std::make_unique<scoped_hidden_method>(
                std::string(api.class_name).c_str(), std::string(api.selector).c_str()));
    }
}

scoped_macos_version::~scoped_macos_version() = default;

}  // namespace vmrt::objc::sim::vz

namespace vmrt::objc::sim::vz::detail {

strong make_error(const std::string& domain, NSInteger code, const std::string& description,
                  const std::string& failure_reason) {
    std::vector<strong> values;
    std::vector<std::pair<std::string, id>> entries;
    if (!description.empty()) {
        values.push_back(ns_string(description));
        entries.emplace_back("NSLocalizedDescription", values.back().get());
    }
    if (!failure_reason.empty()) {
        values.push_back(ns_string(failure_reason));
        entries.emplace_back("NSLocalizedFailureReason", values.back().get());
    }
    strong info = ns_dictionary(entries);
    strong name = ns_string(domain);
    return alloc_init<id, NSInteger, id>(cls<"NSError">(), sel<"initWithDomain:code:userInfo:">(), name.get(),
                                         code, info.get());
}

strong invalid_configuration(const std::string& reason) {
    return make_error(vz_domain, vz_invalid_configuration, "Invalid virtual machine configuration. " + reason,
                      reason);
}

strong posix_error(int value, const std::string& what, const std::string& path) {
    return make_error(posix_domain, value, what + " \u201c" + path + "\u201d: " + std::strerror(value));
}

void report(id* out, strong error) {
    if (out) *out = autorelease(error.detach());
}

id fail_init(id self, id* out, strong error) {
    send<void>(self, sel<"release">());
    report(out, std::move(error));
    return nullptr;
}

strong take_injected(const char* class_name, const char* selector) {
    injected_error e;
    {
        std::lock_guard lock(knobs().mutex);
        auto& list = knobs().failures;
        auto it = std::find_if(list.begin(), list.end(), [&](const auto& slot) {
            return slot->remaining > 0 && slot->class_name == class_name && slot->selector == selector;
        });
        if (it == list.end()) return {};
        --(*it)->remaining;
        e = (*it)->error;
    }
    return make_error(e.domain, e.code, e.description, e.failure_reason);
}

std::string path_of(id url) { return url_path(url); }

strong copied(id value) { return value ? strong::adopt(send<id>(value, sel<"copy">())) : strong(); }

strong retained(id value) { return strong::retain(value); }

void random_bytes(std::uint8_t* out, std::size_t n) {
    static std::mutex mutex;
    static std::mt19937_64 engine{std::random_device{}()};
    std::lock_guard lock(mutex);
    for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<std::uint8_t>(engine());
}

void unavailable(id self, const char* selector) {
    std::fprintf(stderr, "*** vmrt VZ simulation: -[%s %s]: unavailable (NS_UNAVAILABLE in Apple's header)\n",
                 object_getClassName(self), selector);
    std::fflush(stderr);
    std::abort();
}

std::string class_name_of(id obj) { return obj ? object_getClassName(obj) : std::string(); }

}  // namespace vmrt::objc::sim::vz::detail
