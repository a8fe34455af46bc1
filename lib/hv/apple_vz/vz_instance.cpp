#include "hv/apple_vz/vz_instance.hpp"

#include "hv/apple_vz/objc/block.hpp"
#include "hv/apple_vz/objc/foundation.hpp"
#include "hv/apple_vz/objc/ns_error.hpp"
#include "hv/apple_vz/vz_control.hpp"
#include "hv/apple_vz/vz_delegate.hpp"
#include "hv/apple_vz/vz_vsock.hpp"

#include <vmrt/io/atomic_file.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fcntl.h>

#include <array>
#include <cerrno>
#include <csignal>

namespace vmrt::hv::vz {

namespace asio = boost::asio;
using objc::BOOL;
using objc::Class;
using objc::id;
using objc::NSInteger;
using objc::SEL;
using objc::sel;
using objc::send;

namespace {

constexpr std::uint64_t mib = 1ull << 20;

// ---- on the queue: small reads of the VM -------------------------------------------------------

machine_state state_of(id vm) {
    const auto raw = send<NSInteger>(vm, sel<"state">());
    // A value this code does not know (a newer macOS) is reported, never guessed at.
    if (auto s = machine_state_from(raw)) return *s;
    throw error(make_error_code(errc::internal),
                {.message = "Virtualization.framework reports an unknown VM state " + std::to_string(raw)});
}

std::string state_text(id vm) {
    const auto raw = send<NSInteger>(vm, sel<"state">());
    if (auto s = machine_state_from(raw)) return std::string(state_name(*s));
    return "in unknown state " + std::to_string(raw);
}

error refused(const std::string& what, id vm) {
    return error(
        make_error_code(errc::invalid_state),
        {.message = "cannot " + what + ": Virtualization.framework reports the VM " + state_text(vm)});
}

id the_vm(const vz_machine& m, const std::string& what) {
    if (!m.vm)
        throw error(make_error_code(errc::invalid_state),
                    {.message = "cannot " + what + ": the VM object is gone"});
    return m.vm.get();
}

// The first runtime device of `getter` ("socketDevices") that is a `class_name`, or nil.
id first_device(id vm, SEL getter, const char* class_name) {
    Class wanted = objc::cls(class_name);
    for (const objc::strong& d : objc::array_items(send<id>(vm, getter)))
        if (wanted && send<BOOL, Class>(d.get(), sel<"isKindOfClass:">(), wanted)) return d.get();
    return nullptr;
}

id socket_device(id vm) {
    id device = first_device(vm, sel<"socketDevices">(), "VZVirtioSocketDevice");
    if (!device)
        throw error(
            make_error_code(errc::unsupported),
            {.message = "the VM has no virtio socket device (set \"vsock\" in its spec)", .field = "vsock"});
    return device;
}

bool can_stop_at_all(id vm) { return objc::responds_to(vm, sel<"stopWithCompletionHandler:">()); }

// A completion handler that ignores its error: a stop on the way out, whose outcome nobody awaits.
void ignore_error(id) {}

// The VM's objects go in this order: the VM (stopped first if it still runs, its delegate and its
// socket listeners cleared), then the delegates the VM and the listeners held weakly.
void tear_down(vz_machine& m) noexcept {
    try {
        objc::autorelease_pool pool;
        if (id vm = m.vm.get()) {
            if (can_stop_at_all(vm) && send<BOOL>(vm, sel<"canStop">())) {
                auto no_one = objc::global_block<void(id), &ignore_error>();
                send<void, id>(vm, sel<"stopWithCompletionHandler:">(), no_one.get());
            }
            send<void, id>(vm, sel<"setDelegate:">(), nullptr);
            if (!m.listeners.empty())
                if (id device = first_device(vm, sel<"socketDevices">(), "VZVirtioSocketDevice"))
                    for (const auto& [port, l] : m.listeners)
                        send<void, std::uint32_t>(device, sel<"removeSocketListenerForPort:">(), port);
            m.vm.reset();
        }
        m.listeners.clear();
        m.delegate.reset();
    } catch (...) {
        // Nothing here throws on a sane runtime; a teardown must not take the process with it.
    }
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

// What keeps a socket listener registered: its removal, on the queue, when the last owner goes.
struct listener_registration {
    std::shared_ptr<vz_queue_ref> queue;
    std::weak_ptr<vz_machine> machine;
    std::uint32_t port = 0;
    std::uint64_t listener_id = 0;

    ~listener_registration() {
        queue->submit([weak = machine, port = port, listener_id = listener_id] {
            auto m = weak.lock();
            if (!m) return;
            auto it = m->listeners.find(port);
            if (it == m->listeners.end() || it->second.id != listener_id) return;  // replaced by a newer one
            try {
                objc::autorelease_pool pool;
                if (m->vm)
                    if (id device = first_device(m->vm.get(), sel<"socketDevices">(), "VZVirtioSocketDevice"))
                        send<void, std::uint32_t>(device, sel<"removeSocketListenerForPort:">(), port);
            } catch (...) {
            }
            m->listeners.erase(it);  // the delegate goes after the VZ listener that pointed to it
        });
    }
};

}  // namespace

// ---- the queue reference -------------------------------------------------------------------------

bool vz_queue_ref::submit(vmrt::detail::unique_function<void()> fn) {
    std::lock_guard lock(mutex_);
    if (!queue_) return false;
    queue_->async(std::move(fn));
    return true;
}

void vz_queue_ref::close() {
    std::lock_guard lock(mutex_);
    queue_ = nullptr;
}

bool save_restore_available() {
    Class vm = objc::cls("VZVirtualMachine");
    return objc::instances_respond_to(vm, sel<"saveMachineStateToURL:completionHandler:">()) &&
           objc::instances_respond_to(vm, sel<"restoreMachineStateFromURL:completionHandler:">());
}

// ---- the strand's side -----------------------------------------------------------------------------

struct vz_instance::strand_state {
    strand_state(asio::any_io_executor ex, io::unique_fd reader, std::function<void(std::string)> n)
        : changed(ex, std::chrono::steady_clock::time_point::max()), events(ex, reader.release()),
          note(std::move(n)) {}

    std::optional<exit_status> ended;
    std::string failure;         ///< the NSError of a VM that stopped with an error
    asio::steady_timer changed;  ///< cancelled when `ended` is set (a condition variable)
    asio::posix::stream_descriptor events;
    std::function<void(std::string)> note;

    void end(exit_status status) {
        if (ended) return;  // the first end wins: a guest stop racing vmrt's own stop is one end
        ended = status;
        changed.cancel();
    }

    void handle(const vz_event& e) {
        switch (e.kind) {
        case vz_event_kind::guest_stopped:
            end(exit_status{});
            break;
        case vz_event_kind::stopped_with_error:
            if (!ended) failure = e.text;
            end(exit_status{.code = 1});
            break;
        case vz_event_kind::stopped_by_host:
            if (!e.text.empty() && note) note(e.text);
            end(exit_status{.signaled = true, .signal = e.signal});
            break;
        case vz_event_kind::note:
            if (note) note(e.text);
            break;
        }
    }
};

namespace {

asio::awaitable<void> read_events(std::shared_ptr<vz_instance::strand_state> st) {
    std::array<char, max_event_size> buffer;
    for (;;) {
        auto [ec] = co_await st->events.async_wait(asio::posix::descriptor_base::wait_read,
                                                   asio::as_tuple(asio::use_awaitable));
        if (ec) co_return;  // the instance closed its end
        for (;;) {
            auto got = receive_datagram(st->events.native_handle(), buffer.data(), buffer.size());
            if (got.size < 0) break;
            if (auto e = decode_event(std::string_view(buffer.data(), static_cast<std::size_t>(got.size))))
                st->handle(*e);
        }
    }
}

}  // namespace

// ---- the instance --------------------------------------------------------------------------------

vz_instance::vz_instance(asio::any_io_executor ex, const std::string& name, vz_driver_options opts,
                         std::function<void(std::string)> note)
    : ex_(ex), opts_(opts), note_(std::move(note)),
      queue_(std::make_unique<io::serial_queue>("dev.vmrt.vm." + name)),
      queue_ref_(std::make_shared<vz_queue_ref>(*queue_)), machine_(std::make_shared<vz_machine>()) {
    auto [reader, sender] = make_datagram_pair();
    events_ = std::make_shared<const vz_event_sender>(std::move(sender));
    state_ = std::make_shared<strand_state>(ex_, std::move(reader), note_);
    asio::co_spawn(ex_, read_events(state_), asio::detached);
}

vz_instance::~vz_instance() {
    control_.reset();  // no new client reaches a VM on its way out
    queue_ref_->close();
    // Last on the queue, after everything submitted before: the VM, then the delegates. Then the
    // queue itself goes (its destructor runs what is queued and joins).
    queue_->async([m = machine_]() mutable { tear_down(*m); });
    queue_.reset();
    boost::system::error_code ignored;
    state_->events.close(ignored);
}

void vz_instance::set_control_relay(std::unique_ptr<vz_control_relay> relay) { control_ = std::move(relay); }

std::filesystem::path vz_instance::control_socket() const {
    return control_ ? control_->socket() : std::filesystem::path();
}

std::string vz_instance::vmm_log_tail() const { return state_->failure; }

asio::awaitable<void> vz_instance::complete_on_queue(std::string what, completion_send send_message,
                                                     std::optional<error_code> code) {
    io::foreign_completion<> done;
    auto fn = [m = machine_, what, code, send_message = std::move(send_message), c = done.completer()] {
        objc::autorelease_pool pool;
        id vm = the_vm(*m, what);
        auto block = objc::make_block<void(id)>([c, what, code](id ns_error) {
            if (!ns_error) return c();
            try {
                error e = objc::to_error(ns_error, what);
                c.fail(std::make_exception_ptr(code ? error(*code, e.diag()) : e));
            } catch (...) {
                c.fail(std::current_exception());
            }
        });
        send_message(vm, block.get());
    };
    co_await io::run_on(*queue_, std::move(fn));
    co_await done.wait();
}

asio::awaitable<void> vz_instance::create(objc::strong configuration) {
    auto fn = [m = machine_, queue = queue_->native_handle(), config = std::move(configuration),
               events = events_]() mutable {
        objc::autorelease_pool pool;
        // "The configuration is copied by the initializer": ours can go at once.
        objc::strong vm = objc::alloc_init<id, void*>(
            objc::cls("VZVirtualMachine"), sel<"initWithConfiguration:queue:">(), config.get(), queue);
        config.reset();
        if (!vm)
            throw error(make_error_code(errc::vmm_start_failed),
                        {.message = "Virtualization.framework did not create the VM "
                                    "(-[VZVirtualMachine initWithConfiguration:queue:] returned nil)"});
        objc::strong delegate = make_vm_delegate(events);
        send<void, id>(vm, sel<"setDelegate:">(), delegate.get());
        m->vm = std::move(vm);
        m->delegate = std::move(delegate);
    };
    co_await io::run_on(*queue_, std::move(fn));
}

asio::awaitable<void> vz_instance::start() {
    std::string what = "start the VM (-[VZVirtualMachine startWithCompletionHandler:])";
    completion_send start_vm = [](id vm, id block) {
        if (!send<BOOL>(vm, sel<"canStart">())) throw refused("start the VM", vm);
        send<void, id>(vm, sel<"startWithCompletionHandler:">(), block);
    };
    co_await complete_on_queue(std::move(what), std::move(start_vm), make_error_code(errc::vmm_start_failed));
    if (control_) control_->start();
}

asio::awaitable<void> vz_instance::restore(std::filesystem::path save_file) {
    std::string what = "restore the VM from " + save_file.string() +
                       " (-[VZVirtualMachine restoreMachineStateFromURL:completionHandler:])";
    completion_send restore_vm = [file = save_file](id vm, id block) {
        objc::strong url = objc::ns_file_url(file);
        send<void, id, id>(vm, sel<"restoreMachineStateFromURL:completionHandler:">(), url.get(), block);
    };
    co_await complete_on_queue(std::move(what), std::move(restore_vm),
                               make_error_code(errc::vmm_start_failed));
    // A restored VM is Paused (VZVirtualMachine.h); the guest goes on where it was saved.
    std::string resuming = "resume the restored VM (-[VZVirtualMachine resumeWithCompletionHandler:])";
    completion_send resume_vm = [](id vm, id block) {
        if (!send<BOOL>(vm, sel<"canResume">())) throw refused("resume the restored VM", vm);
        send<void, id>(vm, sel<"resumeWithCompletionHandler:">(), block);
    };
    co_await complete_on_queue(std::move(resuming), std::move(resume_vm),
                               make_error_code(errc::vmm_start_failed));
    if (control_) control_->start();
}

asio::awaitable<machine_state> vz_instance::current_state() {
    auto fn = [m = machine_] {
        objc::autorelease_pool pool;
        return state_of(the_vm(*m, "read the VM's state"));
    };
    co_return co_await io::run_on(*queue_, std::move(fn));
}

asio::awaitable<exit_status> vz_instance::wait_exit() {
    auto st = state_;
    while (!st->ended) {
        // The timer is a condition variable: it completes (operation_aborted) on every change.
        co_await st->changed.async_wait(asio::as_tuple(asio::use_awaitable));
        auto cs = co_await asio::this_coro::cancellation_state;
        if (cs.cancelled() != asio::cancellation_type::none)
            throw boost::system::system_error(asio::error::operation_aborted);
    }
    co_return *st->ended;
}

asio::awaitable<void> vz_instance::request_powerdown() {
    // -requestStopWithError: is VZ's power button: the guest decides, -guestDidStopVirtualMachine:
    // tells when it is off.
    auto fn = [m = machine_] {
        objc::autorelease_pool pool;  // the NSError out-parameter is autoreleased
        id vm = the_vm(*m, "ask the guest to stop");
        if (!send<BOOL>(vm, sel<"canRequestStop">())) throw refused("ask the guest to stop", vm);
        id ns_error = nullptr;
        if (!send<BOOL, id*>(vm, sel<"requestStopWithError:">(), &ns_error))
            throw objc::to_error(ns_error,
                                 "ask the guest to stop (-[VZVirtualMachine requestStopWithError:])");
    };
    co_await io::run_on(*queue_, std::move(fn));
}

asio::awaitable<bool> vz_instance::request_vmm_exit() {
    note_("the guest did not power off in time: stopping the VM (-[VZVirtualMachine "
          "stopWithCompletionHandler:])");
    io::foreign_completion<> done;
    auto fn = [m = machine_, events = events_, c = done.completer()] {
        objc::autorelease_pool pool;
        id vm = the_vm(*m, "stop the VM");
        if (!can_stop_at_all(vm))
            throw error(make_error_code(errc::unsupported),
                        {.message = "-[VZVirtualMachine stopWithCompletionHandler:] needs macOS 12"});
        if (!send<BOOL>(vm, sel<"canStop">())) throw refused("stop the VM", vm);
        auto block = objc::make_block<void(id)>([c, events](id ns_error) {
            if (!ns_error) {
                // The end reaches the strand as an event even if nobody awaits this any more (a stop
                // that outlasted stop_timeout still ends the VM).
                events->send({.kind = vz_event_kind::stopped_by_host, .signal = SIGTERM});
                return c();
            }
            try {
                c.fail(std::make_exception_ptr(objc::to_error(
                    ns_error, "stop the VM (-[VZVirtualMachine stopWithCompletionHandler:])")));
            } catch (...) {
                c.fail(std::current_exception());
            }
        });
        send<void, id>(vm, sel<"stopWithCompletionHandler:">(), block.get());
    };
    try {
        co_await io::run_on(*queue_, std::move(fn));
        // A stop that never completes must not hold the manager's escalation: after stop_timeout the
        // slot fails (a late completion is then dropped, and its event still ends the VM).
        asio::steady_timer limit(ex_, opts_.stop_timeout);
        limit.async_wait([c = done.completer(), t = opts_.stop_timeout](boost::system::error_code ec) {
            if (ec) return;
            c.fail(make_error_code(errc::timeout),
                   "-[VZVirtualMachine stopWithCompletionHandler:] did not complete within " +
                       std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(t).count()) +
                       " ms");
        });
        co_await done.wait();
        co_return true;
    } catch (const std::exception& e) {
        note_(std::string("the VM was not stopped: ") + e.what());
        co_return false;
    }
}

void vz_instance::stop_now(int signal) {
    if (state_->ended || !queue_) return;
    queue_->async([m = machine_, events = events_, signal]() noexcept {
        const bool killing = signal == SIGKILL;
        try {
            objc::autorelease_pool pool;
            id vm = m->vm.get();
            if (!vm) {
                if (killing)
                    events->send({.kind = vz_event_kind::stopped_by_host,
                                  .signal = signal,
                                  .text = "killed before Virtualization.framework had a VM object"});
                return;
            }
            if (can_stop_at_all(vm) && send<BOOL>(vm, sel<"canStop">())) {
                auto block = objc::make_block<void(id)>([events, signal, killing](id ns_error) {
                    if (!ns_error) {
                        events->send({.kind = vz_event_kind::stopped_by_host, .signal = signal});
                        return;
                    }
                    std::string text = "-[VZVirtualMachine stopWithCompletionHandler:] failed";
                    try {
                        text = objc::to_error(ns_error, "stop the VM").diag().message;
                    } catch (...) {
                    }
                    if (killing)  // kill is the last step: the VM object is released with the instance
                        events->send({.kind = vz_event_kind::stopped_by_host,
                                      .signal = signal,
                                      .text = text + "; the VM is released with its instance"});
                    else
                        events->send({.kind = vz_event_kind::note, .text = text});
                });
                send<void, id>(vm, sel<"stopWithCompletionHandler:">(), block.get());
                return;
            }
            const std::string now = state_text(vm);
            const auto raw = machine_state_from(send<NSInteger>(vm, sel<"state">()));
            if (raw && has_ended(*raw)) {
                events->send({.kind = vz_event_kind::stopped_by_host, .signal = signal});
            } else if (killing) {
                // Stopping, Pausing, Saving...: VZ takes no stop now. Kill must end the VM for the
                // manager anyway; the VM object goes with the instance.
                events->send({.kind = vz_event_kind::stopped_by_host,
                              .signal = signal,
                              .text = "killed while Virtualization.framework reported the VM " + now +
                                      " (no stop possible): the VM is released with its instance"});
            } else {
                events->send({.kind = vz_event_kind::note,
                              .text = "cannot stop the VM now: Virtualization.framework reports it " + now});
            }
        } catch (...) {
            if (killing)
                events->send({.kind = vz_event_kind::stopped_by_host, .signal = signal, .text = "killed"});
        }
    });
}

void vz_instance::terminate() { stop_now(SIGTERM); }
void vz_instance::kill() { stop_now(SIGKILL); }

asio::awaitable<void> vz_instance::pause() {
    std::string what = "pause the VM (-[VZVirtualMachine pauseWithCompletionHandler:])";
    completion_send pause_vm = [](id vm, id block) {
        if (!send<BOOL>(vm, sel<"canPause">())) throw refused("pause the VM", vm);
        send<void, id>(vm, sel<"pauseWithCompletionHandler:">(), block);
    };
    co_await complete_on_queue(std::move(what), std::move(pause_vm));
}

asio::awaitable<void> vz_instance::resume() {
    std::string what = "resume the VM (-[VZVirtualMachine resumeWithCompletionHandler:])";
    completion_send resume_vm = [](id vm, id block) {
        if (!send<BOOL>(vm, sel<"canResume">())) throw refused("resume the VM", vm);
        send<void, id>(vm, sel<"resumeWithCompletionHandler:">(), block);
    };
    co_await complete_on_queue(std::move(what), std::move(resume_vm));
}

asio::awaitable<std::uint64_t> vz_instance::set_balloon_target(std::uint64_t bytes) {
    auto fn = [m = machine_, bytes]() -> std::uint64_t {
        objc::autorelease_pool pool;
        id vm = the_vm(*m, "resize the balloon");
        id balloon =
            first_device(vm, sel<"memoryBalloonDevices">(), "VZVirtioTraditionalMemoryBalloonDevice");
        if (!balloon)
            throw error(make_error_code(errc::unsupported),
                        {.message = "the VM has no memory balloon device (set \"balloon\" in its spec)",
                         .field = "balloon"});
        send<void, unsigned long long>(balloon, sel<"setTargetVirtualMachineMemorySize:">(), bytes);
        // VZ rounds down to a MiB and clamps to what the configuration allows: report what it kept.
        return send<unsigned long long>(balloon, sel<"targetVirtualMachineMemorySize">());
    };
    co_return co_await io::run_on(*queue_, std::move(fn));
}

asio::awaitable<std::uint64_t> vz_instance::resize_balloon(std::uint64_t target_mib) {
    co_return co_await set_balloon_target(target_mib * mib) / mib;
}

asio::awaitable<void> vz_instance::save_snapshot(const std::filesystem::path& dir) {
    if (!save_restore_available())
        throw error(make_error_code(errc::unsupported),
                    {.message =
                         "saving a VM needs macOS 14 on Apple silicon: this Virtualization.framework has no "
                         "-[VZVirtualMachine saveMachineStateToURL:completionHandler:]"});
    // VZ saves only a paused VM ("If the virtual machine is not paused, this operation will fail")
    // and leaves it paused, as vm_instance::save_snapshot promises.
    if (co_await current_state() == machine_state::running) co_await pause();
    const auto file = dir / save_file_name;
    std::string what =
        "save the VM to " + file.string() + " (-[VZVirtualMachine saveMachineStateToURL:completionHandler:])";
    completion_send save_vm = [file](id vm, id block) {
        objc::strong url = objc::ns_file_url(file);
        send<void, id, id>(vm, sel<"saveMachineStateToURL:completionHandler:">(), url.get(), block);
    };
    co_await complete_on_queue(std::move(what), std::move(save_vm));
    // A fresh identity is part of the machine: the restore must build the same one.
    if (!identity_.fresh_machine_identifier.empty())
        io::write_file_atomically(dir / machine_identifier_file_name,
                                  hex(identity_.fresh_machine_identifier) + "\n");
}

asio::awaitable<asio::local::stream_protocol::socket> vz_instance::vsock_connect(std::uint32_t port) {
    io::foreign_completion<io::unique_fd> done;
    const std::string what = "connect to the guest's vsock port " + std::to_string(port) +
                             " (-[VZVirtioSocketDevice connectToPort:completionHandler:])";
    auto fn = [m = machine_, port, what, c = done.completer()] {
        objc::autorelease_pool pool;
        id device = socket_device(the_vm(*m, what));
        auto block = objc::make_block<void(id, id)>([c, what](id connection, id ns_error) {
            try {
                if (!connection) return c.fail(std::make_exception_ptr(objc::to_error(ns_error, what)));
                // The connection owns its descriptor and closes it when it goes; keep a duplicate
                // (apple/containerization does the same: dup, then close the connection).
                const int fd = send<int>(connection, sel<"fileDescriptor">());
                io::unique_fd mine(fd >= 0 ? ::fcntl(fd, F_DUPFD_CLOEXEC, 0) : -1);
                const int dup_error = errno;
                send<void>(connection, sel<"close">());
                if (!mine)
                    return c.fail(std::make_exception_ptr(boost::system::system_error(
                        fd < 0 ? EBADF : dup_error, boost::system::system_category(), what)));
                c(std::move(mine));
            } catch (...) {
                c.fail(std::current_exception());
            }
        });
        send<void, std::uint32_t, id>(device, sel<"connectToPort:completionHandler:">(), port, block.get());
    };
    co_await io::run_on(*queue_, std::move(fn));
    asio::steady_timer limit(ex_, opts_.vsock_connect_timeout);
    limit.async_wait([c = done.completer(), what](boost::system::error_code ec) {
        if (!ec) c.fail(make_error_code(errc::timeout), what + ": no answer from Virtualization.framework");
    });
    io::unique_fd fd = co_await done.wait();
    limit.cancel();
    auto ex = co_await asio::this_coro::executor;
    asio::local::stream_protocol::socket s(ex);
    s.assign(asio::local::stream_protocol(), fd.release());
    co_return s;
}

asio::awaitable<vsock_listener> vz_instance::vsock_listen(std::uint32_t port) {
    auto pair = make_datagram_pair();
    io::unique_fd receiver = std::move(pair.first);
    auto fn = [m = machine_, port, sender = std::move(pair.second)]() mutable -> std::uint64_t {
        objc::autorelease_pool pool;
        id device = socket_device(the_vm(*m, "listen for vsock connections"));
        objc::strong delegate = make_listener_delegate(std::move(sender), port);
        objc::strong listener = objc::alloc_init(objc::cls("VZVirtioSocketListener"));
        send<void, id>(listener, sel<"setDelegate:">(), delegate.get());
        // One listener per port (VZVirtioSocketDevice.h): an earlier one of this port is replaced,
        // and its delegate released below, which ends that listener's accept().
        send<void, id, std::uint32_t>(device, sel<"setSocketListener:forPort:">(), listener.get(), port);
        const std::uint64_t listener_id = m->next_listener++;
        m->listeners[port] = vz_machine::listening{listener_id, std::move(delegate)};
        return listener_id;
    };
    const std::uint64_t listener_id = co_await io::run_on(*queue_, std::move(fn));
    auto registration = std::make_shared<listener_registration>();
    registration->queue = queue_ref_;
    registration->machine = machine_;
    registration->port = port;
    registration->listener_id = listener_id;
    auto ex = co_await asio::this_coro::executor;
    co_return vsock_listener(port, make_vsock_source(ex, std::move(receiver), port, std::move(registration)));
}

}  // namespace vmrt::hv::vz
