#include "hv/apple_vz/vz_instance.hpp"

#include "hv/apple_vz/objc/block.hpp"
#include "hv/apple_vz/objc/foundation.hpp"
#include "hv/apple_vz/objc/ns_error.hpp"
#include "hv/apple_vz/vz_control.hpp"
#include "hv/apple_vz/vz_delegate.hpp"
#include "hv/apple_vz/vz_machine_reads.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <array>
#include <csignal>

namespace vmrt::hv::vz {

namespace asio = boost::asio;
using objc::BOOL;
using objc::Class;
using objc::id;
using objc::NSInteger;
using objc::sel;
using objc::send;

namespace {

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

}  // namespace vmrt::hv::vz
