// The simulated VZVirtualMachine: its states and transitions, its queue checks and its delegate.
// The test-facing side (vz_sim_machine.hpp: find, inspect and drive a machine) is in
// vz_sim_machine_api.cpp.
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

std::string_view to_string(machine_state s) noexcept {
    switch (s) {
    case machine_state::stopped:
        return "Stopped";
    case machine_state::running:
        return "Running";
    case machine_state::paused:
        return "Paused";
    case machine_state::error:
        return "Error";
    case machine_state::starting:
        return "Starting";
    case machine_state::pausing:
        return "Pausing";
    case machine_state::resuming:
        return "Resuming";
    case machine_state::stopping:
        return "Stopping";
    case machine_state::saving:
        return "Saving";
    case machine_state::restoring:
        return "Restoring";
    }
    return "?";
}

namespace detail {

namespace asio = boost::asio;

records& rec() {
    static records* const instance = new records;  // never destroyed: see records
    return *instance;
}

std::atomic<bool> virtualization_supported{true};

namespace {

constexpr const char* vm_class = "VZVirtualMachine";

}  // namespace

// ---- guest thread ----------------------------------------------------------------------------

guest_thread::guest_thread()
    : work_(
          std::make_unique<asio::executor_work_guard<asio::io_context::executor_type>>(ctx_.get_executor())),
      thread_([this] { ctx_.run(); }) {}

guest_thread::~guest_thread() { stop(); }

void guest_thread::after(std::chrono::milliseconds delay, std::function<void()> fn) {
    // The timer is made on the guest thread: its io_context is the only thing shared.
    asio::post(ctx_, [this, delay, fn = std::move(fn)]() mutable {
        auto timer = std::make_shared<asio::steady_timer>(ctx_, delay);
        timer->async_wait([timer, fn = std::move(fn)](boost::system::error_code ec) {
            if (!ec) fn();
        });
    });
}

void guest_thread::stop() {
    std::call_once(stopped_, [this] {
        work_.reset();
        ctx_.stop();
        if (!thread_.joinable()) return;
        if (thread_.get_id() == std::this_thread::get_id()) {
            record_misuse("a simulated VM was torn down on its own guest thread");
            thread_.detach();
            return;
        }
        thread_.join();
    });
}

// ---- machine core ----------------------------------------------------------------------------

void machine_core::on_queue(std::function<void(machine_core&)> fn) {
    io::serial_queue* q = io::serial_queue::from_native(queue_handle);
    if (!q) {
        record_misuse("VM of queue " + queue_label + " outlived its queue");
        return;
    }
    q->async([weak = weak_from_this(), fn = std::move(fn)] {
        auto core = weak.lock();
        if (!core) return;
        {
            std::lock_guard lock(core->mutex);
            if (!core->self) return;  // deallocated meanwhile: the framework calls nothing more
        }
        autorelease_pool pool;
        fn(*core);
    });
}

void machine_core::check_queue(const char* receiver_class, const char* selector) const {
    io::serial_queue* q = io::serial_queue::from_native(queue_handle);
    if (q && q->is_current()) return;
    record_violation({receiver_class, selector, queue_label});
}

id machine_core::delegate_for(SEL selector) const {
    id d = nullptr;
    {
        std::lock_guard lock(mutex);
        d = delegate;
    }
    return d && responds_to(d, selector) ? d : nullptr;
}

void record_violation(queue_violation v) {
    std::lock_guard lock(rec().mutex);
    rec().violations.push_back(std::move(v));
}

void record_misuse(std::string what) {
    std::lock_guard lock(rec().mutex);
    rec().misuses.push_back(std::move(what));
}

guest_behaviour current_behaviour() {
    std::lock_guard lock(rec().mutex);
    return rec().behaviour;
}

void register_machine(const std::shared_ptr<machine_core>& core) {
    std::lock_guard lock(rec().mutex);
    auto& list = rec().machines;
    std::erase_if(list, [](const auto& w) { return w.expired(); });
    list.push_back(core);
}

strong make_error(const ns_error_spec& e, id underlying) {
    return make_ns_error(e.domain, e.code, e.description, underlying);
}

void complete(id block, id error) { invoke_block<void, id>(block, error); }

void set_state(machine_core& c, machine_state s) {
    std::lock_guard lock(c.mutex);
    c.state = s;
}

void tell_delegate_guest_stopped(machine_core& c) {
    id vm_obj = nullptr;
    {
        std::lock_guard lock(c.mutex);
        vm_obj = c.self;
    }
    if (id d = c.delegate_for(sel<"guestDidStopVirtualMachine:">()))
        send<void, id>(d, sel<"guestDidStopVirtualMachine:">(), vm_obj);
}

void tell_delegate_error(machine_core& c, id error) {
    id vm_obj = nullptr;
    {
        std::lock_guard lock(c.mutex);
        vm_obj = c.self;
    }
    if (id d = c.delegate_for(sel<"virtualMachine:didStopWithError:">()))
        send<void, id, id>(d, sel<"virtualMachine:didStopWithError:">(), vm_obj, error);
}

namespace {

using handler = block<void(id)>;

handler keep_block(id b) { return handler::adopt(::_Block_copy(b)); }

struct vm_payload {
    std::shared_ptr<machine_core> core;
    vm_payload() = default;
    vm_payload(const vm_payload&) = delete;
    vm_payload& operator=(const vm_payload&) = delete;
    ~vm_payload();
};
using vm = self_t<vm_payload>;

// Runs fn on the guest thread after `delay` (while the VM object lives).
void on_guest(machine_core& c, std::chrono::milliseconds delay, std::function<void(machine_core&)> fn) {
    std::lock_guard lock(c.mutex);
    if (!c.guest) return;
    c.guest->after(delay, [weak = c.weak_from_this(), fn = std::move(fn)] {
        if (auto core = weak.lock()) fn(*core);
    });
}

// Runs fn on the VM's queue after `delay`: how a transition finishes.
void later(machine_core& c, std::chrono::milliseconds delay, std::function<void(machine_core&)> fn) {
    on_guest(c, delay, [fn = std::move(fn)](machine_core& core) { core.on_queue(fn); });
}

ns_error_spec invalid_transition(machine_state from, const char* what) {
    return {"VZErrorDomain", vz_error_invalid_state_transition,
            std::string("Invalid virtual machine state transition: cannot ") + what +
                " a virtual machine in state " + std::string(to_string(from))};
}

// A completion that fails at once (still later, on the queue: never inside the call).
void fail_later(machine_core& c, handler done, ns_error_spec e) {
    later(c, std::chrono::milliseconds(0), [done = std::move(done), e = std::move(e)](machine_core&) {
        strong error = make_error(e);
        complete(done.get(), error.get());
    });
}

// The guest's console: the banner and the ready line, appended to the serial port's file.
void write_console(machine_core& c, std::uint64_t boot) {
    guest_behaviour b;
    {
        std::lock_guard lock(c.mutex);
        if (c.boot != boot || c.state != machine_state::running || c.console_written) return;
        c.console_written = true;
        b = c.behaviour;
    }
    if (c.serial_file.empty()) return;
    int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (c.serial_append ? O_APPEND : O_TRUNC);
    io::unique_fd fd(::open(c.serial_file.c_str(), flags, 0644));
    if (!fd) {
        record_misuse("the guest cannot open its console " + c.serial_file.string() + ": " +
                      std::strerror(errno));
        return;
    }
    std::string text = "[    0.000000] Linux version 6.1.0-vz-sim (vmrt simulated Virtualization.framework "
                       "guest) #1 SMP\n[    0.412000] virtio_console: hvc0\n";
    if (b.write_ready_line) text += "VMRS_READY " + b.ready_ip + "\n";
    if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()))
        record_misuse("the guest could not write its console");
}

// ---- reading the configuration through Apple's getters ---------------------------------------

NSUInteger count_of(id config, const char* getter) {
    if (!responds_to(config, sel(getter))) return 0;
    id list = send<id>(config, sel(getter));
    return list ? send<NSUInteger>(list, sel<"count">()) : 0;
}

std::vector<strong> items_of(id config, const char* getter) {
    if (!responds_to(config, sel(getter))) return {};
    return array_items(send<id>(config, sel(getter)));
}

std::string hex(const std::vector<std::uint8_t>& bytes) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    for (auto b : bytes) {
        out += digits[b >> 4];
        out += digits[b & 0xf];
    }
    return out;
}

std::string machine_identifier_of(id config) {
    if (!responds_to(config, sel<"platform">())) return "";
    id platform = send<id>(config, sel<"platform">());
    if (!platform || !responds_to(platform, sel<"machineIdentifier">())) return "";
    id identifier = send<id>(platform, sel<"machineIdentifier">());
    if (!identifier || !responds_to(identifier, sel<"dataRepresentation">())) return "";
    return hex(data_bytes(send<id>(identifier, sel<"dataRepresentation">())));
}

// What a save file records and a restore compares: the machine's shape and identity.
std::string fingerprint_of(id config) {
    std::ostringstream out;
    out << "cpus="
        << (responds_to(config, sel<"CPUCount">()) ? send<NSUInteger>(config, sel<"CPUCount">()) : 0)
        << " memory="
        << (responds_to(config, sel<"memorySize">()) ? send<unsigned long long>(config, sel<"memorySize">())
                                                     : 0)
        << " storage=" << count_of(config, "storageDevices")
        << " network=" << count_of(config, "networkDevices")
        << " sharing=" << count_of(config, "directorySharingDevices")
        << " socket=" << count_of(config, "socketDevices")
        << " balloon=" << count_of(config, "memoryBalloonDevices")
        << " serial=" << count_of(config, "serialPorts") << " console=" << count_of(config, "consoleDevices")
        << " machine=" << machine_identifier_of(config);
    return out.str();
}

void read_serial_attachment(machine_core& c, id config) {
    auto ports = items_of(config, "serialPorts");
    if (ports.empty() || !responds_to(ports.front().get(), sel<"attachment">())) return;
    id attachment = send<id>(ports.front().get(), sel<"attachment">());
    if (!attachment || !responds_to(attachment, sel<"URL">())) return;  // not a file attachment
    c.serial_file = url_path(send<id>(attachment, sel<"URL">()));
    c.serial_append = !responds_to(attachment, sel<"append">()) || send<BOOL>(attachment, sel<"append">());
}

// The console port the guest serves (vz_plan.hpp control_port_name): the first port of any
// console device named "org.vmrt.control" whose attachment is a VZFileHandleSerialPortAttachment.
void read_control_port(machine_core& c, id config) {
    for (const strong& device : items_of(config, "consoleDevices")) {
        if (!responds_to(device.get(), sel<"ports">())) continue;
        id ports = send<id>(device.get(), sel<"ports">());
        const auto count = send<std::uint32_t>(ports, sel<"maximumPortCount">());
        for (NSUInteger i = 0; i < count; ++i) {
            id port = send<id, NSUInteger>(ports, sel<"objectAtIndexedSubscript:">(), i);
            if (!port || objc::to_string(send<id>(port, sel<"name">())) != "org.vmrt.control") continue;
            id attachment = send<id>(port, sel<"attachment">());
            if (!attachment || !responds_to(attachment, sel<"fileHandleForReading">())) continue;
            const int fd = file_handle_fd(send<id>(attachment, sel<"fileHandleForReading">()));
            if (fd >= 0) c.control_port.reset(::fcntl(fd, F_DUPFD_CLOEXEC, 0));
            return;
        }
    }
}

std::uint64_t minimum_memory() {
    Class config_class = cls("VZVirtualMachineConfiguration");
    if (!config_class || !responds_to(config_class, sel<"minimumAllowedMemorySize">())) return 0;
    return send<unsigned long long>(config_class, sel<"minimumAllowedMemorySize">());
}

void make_runtime_devices(const std::shared_ptr<machine_core>& core, id config) {
    std::vector<strong> sockets;
    for (std::size_t i = 0; i < count_of(config, "socketDevices"); ++i)
        sockets.push_back(make_socket_device(core));
    std::vector<strong> balloons;
    for (std::size_t i = 0; i < count_of(config, "memoryBalloonDevices"); ++i)
        balloons.push_back(make_balloon_device(core, minimum_memory()));
    std::vector<strong> nics;
    for (const strong& nic : items_of(config, "networkDevices")) {
        id attachment =
            responds_to(nic.get(), sel<"attachment">()) ? send<id>(nic.get(), sel<"attachment">()) : nullptr;
        nics.push_back(make_network_device(core, attachment));
    }
    core->socket_devices = ns_array(sockets);
    core->balloon_devices = ns_array(balloons);
    core->network_devices = ns_array(nics);
}

// ---- the VM's dealloc ---------------------------------------------------------------------------

vm_payload::~vm_payload() {
    if (!core) return;
    // Apple documents no rule for where the last release happens; vmrt releases on the queue, and a
    // release elsewhere while the queue exists races with the callbacks queued there.
    if (io::serial_queue* q = io::serial_queue::from_native(core->queue_handle); q && !q->is_current())
        record_misuse("VZVirtualMachine of queue " + core->queue_label + " deallocated off its queue");
    std::unique_ptr<guest_thread> guest;
    strong configuration, sockets, balloons, nics;
    {
        std::lock_guard lock(core->mutex);
        core->self = nullptr;
        core->delegate = nullptr;
        guest = std::move(core->guest);
        configuration = std::move(core->configuration);
        sockets = std::move(core->socket_devices);
        balloons = std::move(core->balloon_devices);
        nics = std::move(core->network_devices);
    }
    guest.reset();  // the guest's timers and services end here (its sockets close)
}

// ---- the class ------------------------------------------------------------------------------------

BOOL can(machine_core& c, const char* selector, std::initializer_list<machine_state> from) {
    c.check_queue(vm_class, selector);
    std::lock_guard lock(c.mutex);
    for (auto s : from)
        if (c.state == s) return YES;
    return NO;
}

// -startWithCompletionHandler:, -stopWithCompletionHandler: and the others share this shape: refuse
// unless in one of `from`, else enter `during`, and after `delay` finish with `finish` (which sets
// the end state and says what to complete the handler with).
using finisher = std::function<std::optional<ns_error_spec>(machine_core&)>;

void transition(vm self, id handler_block, const char* selector, const char* verb,
                std::initializer_list<machine_state> from, machine_state during,
                std::chrono::milliseconds guest_behaviour::*delay, finisher finish) {
    machine_core& c = *self->core;
    c.check_queue(vm_class, selector);
    handler done = keep_block(handler_block);
    std::unique_lock lock(c.mutex);
    const machine_state now = c.state;
    if (std::find(from.begin(), from.end(), now) == from.end()) {
        lock.unlock();
        fail_later(c, std::move(done), invalid_transition(now, verb));
        return;
    }
    c.state = during;
    const auto wait = c.behaviour.*delay;
    lock.unlock();
    later(c, wait, [done = std::move(done), finish = std::move(finish), during](machine_core& core) {
        {
            std::lock_guard l(core.mutex);
            if (core.state != during) return;  // something else ended the transition (a failure)
        }
        auto error = finish(core);
        strong ns_error = error ? make_error(*error) : strong();
        complete(done.get(), ns_error.get());
    });
}

std::string read_line(std::istream& in) {
    std::string line;
    std::getline(in, line);
    return line;
}

Class define_vm_class() {
    return class_def<vm_payload>(vm_class)
        .class_method("isSupported", [](Class) -> BOOL { return virtualization_supported.load() ? YES : NO; })
        .method("init",
                [](vm self) -> id {
                    // NS_UNAVAILABLE on a Mac: the compiler refuses it. Here it is a misuse.
                    record_misuse("-[VZVirtualMachine init] is unavailable");
                    send<void>(self, sel<"release">());
                    return nullptr;
                })
        .method("initWithConfiguration:queue:",
                [](vm self, id config, void* queue) -> id {
                    auto core = std::make_shared<machine_core>();
                    io::serial_queue* q = io::serial_queue::from_native(queue);
                    core->queue_handle = queue;
                    core->queue_label = q ? q->label() : std::string("<not a serial queue>");
                    if (!q || !q->is_current())
                        record_violation({vm_class, "initWithConfiguration:queue:", core->queue_label});
                    if (!config) {
                        record_misuse(
                            "-[VZVirtualMachine initWithConfiguration:queue:] with a nil configuration");
                        send<void>(self, sel<"release">());
                        return nullptr;
                    }
                    autorelease_pool pool;
                    if (responds_to(config, sel<"validateWithError:">())) {
                        id error = nullptr;
                        if (!send<BOOL, id*>(config, sel<"validateWithError:">(), &error))
                            record_misuse(
                                "VZVirtualMachine made from a configuration that does not validate: " +
                                objc::to_string(send<id>(error, sel<"localizedDescription">())));
                    }
                    // "The configuration is copied by the initializer."
                    core->configuration = responds_to(config, sel<"copyWithZone:">())
                                              ? strong::adopt(send<id>(config, sel<"copy">()))
                                              : strong::retain(config);
                    id copy = core->configuration.get();
                    core->memory_size = responds_to(copy, sel<"memorySize">())
                                            ? send<unsigned long long>(copy, sel<"memorySize">())
                                            : 0;
                    core->fingerprint = fingerprint_of(copy);
                    read_serial_attachment(*core, copy);
                    read_control_port(*core, copy);
                    core->behaviour = current_behaviour();
                    make_runtime_devices(core, copy);
                    core->self = self;
                    self->core = core;
                    register_machine(core);
                    return self;
                })
        .method("state",
                [](vm self) -> NSInteger {
                    self->core->check_queue(vm_class, "state");
                    std::lock_guard lock(self->core->mutex);
                    return static_cast<NSInteger>(self->core->state);
                })
        .method("delegate",
                [](vm self) -> id {
                    self->core->check_queue(vm_class, "delegate");
                    std::lock_guard lock(self->core->mutex);
                    return self->core->delegate;
                })
        .method("setDelegate:",
                [](vm self, id d) {
                    self->core->check_queue(vm_class, "setDelegate:");
                    std::lock_guard lock(self->core->mutex);
                    self->core->delegate = d;  // weak: not retained
                })
        .method("canStart",
                [](vm self) -> BOOL {
                    return can(*self->core, "canStart", {machine_state::stopped, machine_state::error});
                })
        .method("canStop",
                [](vm self) -> BOOL {
                    return can(*self->core, "canStop", {machine_state::running, machine_state::paused});
                })
        .method("canPause",
                [](vm self) -> BOOL { return can(*self->core, "canPause", {machine_state::running}); })
        .method("canResume",
                [](vm self) -> BOOL { return can(*self->core, "canResume", {machine_state::paused}); })
        .method("canRequestStop",
                [](vm self) -> BOOL { return can(*self->core, "canRequestStop", {machine_state::running}); })
        .method("socketDevices",
                [](vm self) -> id {
                    self->core->check_queue(vm_class, "socketDevices");
                    return self->core->socket_devices.get();
                })
        .method("memoryBalloonDevices",
                [](vm self) -> id {
                    self->core->check_queue(vm_class, "memoryBalloonDevices");
                    return self->core->balloon_devices.get();
                })
        .method("networkDevices",
                [](vm self) -> id {
                    self->core->check_queue(vm_class, "networkDevices");
                    return self->core->network_devices.get();
                })
        .method("startWithCompletionHandler:",
                [](vm self, id handler_block) {
                    std::uint64_t boot = 0;
                    {
                        std::lock_guard lock(self->core->mutex);
                        boot = self->core->boot + 1;
                    }
                    transition(self, handler_block, "startWithCompletionHandler:", "start",
                               {machine_state::stopped, machine_state::error}, machine_state::starting,
                               &guest_behaviour::start_time,
                               [boot](machine_core& c) -> std::optional<ns_error_spec> {
                                   guest_behaviour b;
                                   {
                                       std::lock_guard lock(c.mutex);
                                       b = c.behaviour;
                                       if (b.start_error) {
                                           c.state = machine_state::error;
                                           return b.start_error;
                                       }
                                       c.state = machine_state::running;
                                       c.boot = boot;
                                       c.console_written = false;
                                   }
                                   // The guest's control service, once per VM (the port lives as long).
                                   if (c.control_port) serve_echo(c, std::move(c.control_port));
                                   on_guest(c, b.boot_time,
                                            [boot](machine_core& core) { write_console(core, boot); });
                                   return std::nullopt;
                               });
                })
        .method("stopWithCompletionHandler:",
                [](vm self, id handler_block) {
                    transition(self, handler_block, "stopWithCompletionHandler:", "stop",
                               {machine_state::running, machine_state::paused}, machine_state::stopping,
                               &guest_behaviour::stop_time,
                               [](machine_core& c) -> std::optional<ns_error_spec> {
                                   set_state(c, machine_state::stopped);
                                   return std::nullopt;
                               });
                })
        .method("pauseWithCompletionHandler:",
                [](vm self, id handler_block) {
                    transition(self, handler_block, "pauseWithCompletionHandler:", "pause",
                               {machine_state::running}, machine_state::pausing,
                               &guest_behaviour::transition_time,
                               [](machine_core& c) -> std::optional<ns_error_spec> {
                                   set_state(c, machine_state::paused);
                                   return std::nullopt;
                               });
                })
        .method("resumeWithCompletionHandler:",
                [](vm self, id handler_block) {
                    transition(self, handler_block, "resumeWithCompletionHandler:", "resume",
                               {machine_state::paused}, machine_state::resuming,
                               &guest_behaviour::transition_time,
                               [](machine_core& c) -> std::optional<ns_error_spec> {
                                   set_state(c, machine_state::running);
                                   return std::nullopt;
                               });
                })
        .method("requestStopWithError:",
                [](vm self, id* error) -> BOOL {
                    machine_core& c = *self->core;
                    c.check_queue(vm_class, "requestStopWithError:");
                    std::unique_lock lock(c.mutex);
                    if (c.state != machine_state::running) {
                        const auto now = c.state;
                        lock.unlock();
                        if (error) {
                            ns_error_spec e{
                                "VZErrorDomain", vz_error_invalid_state,
                                "Invalid virtual machine state: cannot request a stop of a virtual "
                                "machine in state " +
                                    std::string(to_string(now))};
                            *error = autorelease(make_error(e).detach());  // an out-error is autoreleased
                        }
                        return NO;
                    }
                    ++c.stop_requests;
                    const auto b = c.behaviour;
                    const auto boot = c.boot;
                    lock.unlock();
                    if (b.honour_stop_request)
                        later(c, b.power_off_time, [boot](machine_core& core) {
                            {
                                std::lock_guard l(core.mutex);
                                if (core.boot != boot || core.state != machine_state::running) return;
                                core.state = machine_state::stopped;
                            }
                            tell_delegate_guest_stopped(core);
                        });
                    return YES;
                })
        .method(
            "saveMachineStateToURL:completionHandler:",
            [](vm self, id url, id handler_block) {
                machine_core& c = *self->core;
                c.check_queue(vm_class, "saveMachineStateToURL:completionHandler:");
                handler done = keep_block(handler_block);
                std::unique_lock lock(c.mutex);
                if (c.state != machine_state::paused) {
                    const auto now = c.state;
                    lock.unlock();
                    fail_later(
                        c, std::move(done),
                        {"VZErrorDomain", vz_error_invalid_state,
                         "Invalid virtual machine state: only a paused virtual machine can be saved (state " +
                             std::string(to_string(now)) + ")"});
                    return;
                }
                c.state = machine_state::saving;
                const auto wait = c.behaviour.transition_time;
                lock.unlock();
                later(c, wait, [done = std::move(done), path = url_path(url)](machine_core& core) {
                    std::string content;
                    {
                        std::lock_guard l(core.mutex);
                        if (core.state != machine_state::saving) return;
                        core.state = machine_state::paused;  // "the virtual machine state is unchanged"
                        content = std::string(save_magic) + "\nconfiguration " + core.fingerprint +
                                  "\nconsole " + (core.console_written ? "1" : "0") + "\n";
                    }
                    std::ofstream out(path, std::ios::binary | std::ios::trunc);
                    out << content;
                    out.flush();
                    strong error;
                    if (!out) {
                        strong posix =
                            make_error({"NSPOSIXErrorDomain", errno ? errno : EIO, std::strerror(errno)});
                        error = make_error(
                            {"VZErrorDomain", vz_error_save, "Failed to save the virtual machine state"},
                            posix.get());
                    }
                    complete(done.get(), error.get());
                });
            })
        .method(
            "restoreMachineStateFromURL:completionHandler:",
            [](vm self, id url, id handler_block) {
                machine_core& c = *self->core;
                c.check_queue(vm_class, "restoreMachineStateFromURL:completionHandler:");
                handler done = keep_block(handler_block);
                std::unique_lock lock(c.mutex);
                if (c.state != machine_state::stopped) {
                    const auto now = c.state;
                    lock.unlock();
                    fail_later(c, std::move(done), invalid_transition(now, "restore"));
                    return;
                }
                c.state = machine_state::restoring;
                const auto wait = c.behaviour.transition_time;
                lock.unlock();
                later(c, wait, [done = std::move(done), path = url_path(url)](machine_core& core) {
                    std::ifstream in(path, std::ios::binary);
                    const std::string magic = read_line(in);
                    const std::string configuration = read_line(in);
                    const std::string console = read_line(in);
                    std::optional<ns_error_spec> problem;
                    std::optional<ns_error_spec> reason;
                    if (!in && magic.empty()) {
                        problem =
                            ns_error_spec{"VZErrorDomain", vz_error_restore,
                                          "Failed to restore the virtual machine state: cannot read " + path};
                        reason = ns_error_spec{"NSPOSIXErrorDomain", ENOENT, "No such file or directory"};
                    } else if (magic != save_magic || !configuration.starts_with("configuration ")) {
                        problem =
                            ns_error_spec{"VZErrorDomain", vz_error_restore,
                                          "Failed to restore the virtual machine state: invalid save file"};
                        reason = ns_error_spec{"NSPOSIXErrorDomain", EINVAL, "Invalid argument"};
                    } else if (configuration.substr(14) != core.fingerprint) {
                        problem =
                            ns_error_spec{"VZErrorDomain", vz_error_restore,
                                          "Failed to restore the virtual machine state: the configuration "
                                          "does not match the saved state (saved " +
                                              configuration.substr(14) + "; now " + core.fingerprint + ")"};
                        reason = ns_error_spec{"NSPOSIXErrorDomain", EINVAL, "Invalid argument"};
                    }
                    {
                        std::lock_guard l(core.mutex);
                        if (core.state != machine_state::restoring) return;
                        // Success: Paused, the guest where it was saved. Failure: unchanged (Stopped).
                        core.state = problem ? machine_state::stopped : machine_state::paused;
                        if (!problem) {
                            ++core.boot;
                            core.console_written = console == "console 1";
                        }
                    }
                    if (!problem && core.control_port) serve_echo(core, std::move(core.control_port));
                    strong underlying = reason ? make_error(*reason) : strong();
                    strong error = problem ? make_error(*problem, underlying.get()) : strong();
                    complete(done.get(), error.get());
                });
            })
        .done();
}

}  // namespace

// Called once, from install() (vz_sim_knobs.cpp), after the configuration classes.
void install_runtime() {
    install_socket_classes();
    install_device_classes();
    define_vm_class();
}

}  // namespace detail

}  // namespace vmrt::objc::sim::vz
