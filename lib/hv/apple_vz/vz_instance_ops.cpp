// The operations of a running VZ instance: pause and resume, the balloon, saving its state, and
// vsock connections both ways. Its lifecycle (create, start, stop) is in vz_instance.cpp.
#include "hex_text.hpp"
#include "hv/apple_vz/objc/block.hpp"
#include "hv/apple_vz/objc/foundation.hpp"
#include "hv/apple_vz/objc/ns_error.hpp"
#include "hv/apple_vz/vz_delegate.hpp"
#include "hv/apple_vz/vz_instance.hpp"
#include "hv/apple_vz/vz_machine_reads.hpp"
#include "hv/apple_vz/vz_vsock.hpp"

#include <vmrt/io/atomic_file.hpp>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fcntl.h>

#include <cerrno>

namespace vmrt::hv::vz {

namespace asio = boost::asio;
using objc::BOOL;
using objc::id;
using objc::sel;
using objc::send;

namespace {

constexpr std::uint64_t mib = 1ull << 20;

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
                                  detail::hex_string(identity_.fresh_machine_identifier) + "\n");
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
