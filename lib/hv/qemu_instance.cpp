#include "hv/qemu_instance.hpp"

#include "hv/qemu_cpu_plan.hpp"
#include "hv/qemu_migration.hpp"

#include <vmrt/io/unique_fd.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/value_to.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <set>

namespace vmrt::hv {
namespace {

namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;
using io::unique_fd;

error_code last_error() { return {errno, boost::system::system_category()}; }

// The guest's answer to an eject request (ACPI _OST, source 3): 0 is success, 0x84 "in progress";
// anything else is a refusal, described here. Nothing for other events.
std::optional<std::string> eject_refusal(const qmp::event& ev) {
    if (ev.name != "ACPI_DEVICE_OST") return std::nullopt;
    const auto* info = ev.data.if_contains("info");
    if (!info || !info->is_object()) return std::nullopt;
    const auto* source = info->as_object().if_contains("source");
    const auto* status = info->as_object().if_contains("status");
    if (!source || !status || !source->is_int64() || !status->is_int64() || source->as_int64() != 3)
        return std::nullopt;
    const auto code = status->as_int64();
    if (code == 0 || code == 0x84) return std::nullopt;
    switch (code) {
    case 0x80:
        return "ejection not supported by the guest OS";
    case 0x81:
        return "device in use by an application";
    case 0x82:
        return "device busy";
    case 0x83:
        return "ejection dependency busy";
    default:
        return "ACPI _OST status " + std::to_string(code);
    }
}

}  // namespace

qemu_instance::qemu_instance(qemu_instance_parts parts) : p_(std::move(parts)) {}

qemu_instance::~qemu_instance() {
    p_.qmp.close();
    kill();
    if (!p_.control_socket.empty()) ::unlink(p_.control_socket.c_str());
}

asio::awaitable<exit_status> qemu_instance::wait_exit() {
    auto status = co_await p_.vmm.async_wait(asio::use_awaitable);
    // virtiofsd leaves when its vhost-user peer disconnects; make sure it does.
    for (auto& s : p_.sidecars) s->stop();
    co_return status;
}

asio::awaitable<void> qemu_instance::request_powerdown() { co_await execute("system_powerdown"); }

void qemu_instance::terminate() { p_.vmm.signal(SIGTERM); }

void qemu_instance::kill() {
    p_.vmm.signal_group(SIGKILL);
    p_.vmm.signal(SIGKILL);
    for (auto& s : p_.sidecars) s->stop();
}

// QMP stop/cont freeze the vCPUs; the guest's clock stops with them.
asio::awaitable<void> qemu_instance::pause() { co_await execute("stop"); }
asio::awaitable<void> qemu_instance::resume() { co_await execute("cont"); }

asio::awaitable<std::uint64_t> qemu_instance::resize_balloon(std::uint64_t target_mib) {
    constexpr std::uint64_t mib = 1024 * 1024;
    auto events = p_.qmp.subscribe_events();  // before the command: no step can be missed
    boost::json::object args;
    args["value"] = target_mib * mib;
    co_await execute("balloon", std::move(args));
    auto current = co_await execute("query-balloon");
    std::uint64_t actual = boost::json::value_to<std::uint64_t>(current.as_object().at("actual")) / mib;
    asio::steady_timer limit(co_await asio::this_coro::executor, std::chrono::seconds(30));
    while (actual != target_mib) {
        auto next = co_await (events.async_next(asio::as_tuple(asio::use_awaitable)) ||
                              limit.async_wait(asio::as_tuple(asio::use_awaitable)));
        if (next.index() == 1)
            throw error(make_error_code(errc::timeout),
                        {.message = "the guest's balloon driver stayed at " + std::to_string(actual) +
                                    " MiB (target " + std::to_string(target_mib) + " MiB)"});
        auto& [ec, ev] = std::get<0>(next);
        if (ec) throw error(ec, {.message = "QMP connection ended during a balloon resize"});
        if (ev.name == "BALLOON_CHANGE" && ev.data.contains("actual"))
            actual = boost::json::value_to<std::uint64_t>(ev.data.at("actual")) / mib;
    }
    co_return actual;
}

// Hot-add is complete when device_add returns (the guest is notified through ACPI and brings the
// CPU online itself). Hot-remove asks the guest to eject the CPU; QEMU reports the guest's answer
// as ACPI_DEVICE_OST and the teardown as DEVICE_DELETED events. Which of the latter name the CPU
// itself varies (QEMU 7.2 reports its lapic child first), so each such event triggers one look at
// the slots: the unplug is done when the CPU is no longer plugged.
asio::awaitable<std::uint32_t> qemu_instance::resize_vcpus(std::uint32_t count) {
    auto events = p_.qmp.subscribe_events();  // before device_del: no event can be missed
    const auto before = co_await execute("query-hotpluggable-cpus");
    auto plan = plan_vcpu_resize(parse_hotpluggable_cpus(before), count);
    for (auto& args : plan.add) co_await execute("device_add", std::move(args));
    std::set<std::string> pending;
    for (auto& id : plan.remove) {
        boost::json::object args;
        args["id"] = id;
        co_await execute("device_del", std::move(args));
        pending.insert(id);
    }
    asio::steady_timer limit(co_await asio::this_coro::executor, std::chrono::seconds(30));
    while (!pending.empty()) {
        auto next = co_await (events.async_next(asio::as_tuple(asio::use_awaitable)) ||
                              limit.async_wait(asio::as_tuple(asio::use_awaitable)));
        if (next.index() == 1)
            throw error(make_error_code(errc::timeout),
                        {.message = "the guest did not release vCPU " + *pending.begin() +
                                    " within 30 s (does it handle ACPI eject?)"});
        auto& [ec, ev] = std::get<0>(next);
        if (ec) throw error(ec, {.message = "QMP connection ended during a vCPU unplug"});
        if (auto refusal = eject_refusal(ev))
            throw error(make_error_code(errc::command_failed),
                        {.message = "the guest refused to release a vCPU: " + *refusal});
        if (ev.name != "DEVICE_DELETED") continue;
        const auto now = co_await execute("query-hotpluggable-cpus");
        std::set<std::string> still_plugged;
        for (const auto& slot : parse_hotpluggable_cpus(now))
            if (slot.qom_path) still_plugged.insert(slot.qom_path->substr(slot.qom_path->rfind('/') + 1));
        std::erase_if(pending, [&](const std::string& id) { return !still_plugged.contains(id); });
    }
    const auto after = co_await execute("query-hotpluggable-cpus");
    co_return plugged_cpus(parse_hotpluggable_cpus(after));
}

// QMP `migrate` streams the paused VM's state to a Unix socket that vmrt listens on and copies
// into the snapshot directory: no shell (`exec:` URIs run one), no file: URI (QEMU >= 8.2).
asio::awaitable<void> qemu_instance::save_snapshot(const std::filesystem::path& dir) {
    auto ex = co_await asio::this_coro::executor;
    auto events = p_.qmp.subscribe_events();
    co_await enable_migration_events(p_.qmp);
    co_await execute("stop");
    const auto sock_path = p_.run_dir / "migrate.sock";
    ::unlink(sock_path.c_str());
    asio::local::stream_protocol::acceptor acceptor(
        ex, asio::local::stream_protocol::endpoint(sock_path.string()));
    boost::json::object args;
    args["uri"] = "unix:" + sock_path.string();
    co_await execute("migrate", std::move(args));
    auto stream = co_await acceptor.async_accept(asio::use_awaitable);
    ::unlink(sock_path.c_str());
    const auto file = dir / "vmstate.bin";
    unique_fd out(::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (out.get() < 0) throw error(last_error(), {.message = "cannot create " + file.string()});
    std::vector<char> buffer(1 << 20);
    for (;;) {
        auto [ec, n] =
            co_await stream.async_read_some(asio::buffer(buffer), asio::as_tuple(asio::use_awaitable));
        for (std::size_t done = 0; done < n;) {
            auto w = ::write(out.get(), buffer.data() + done, n - done);
            if (w < 0) throw error(last_error(), {.message = "cannot write " + file.string()});
            done += static_cast<std::size_t>(w);
        }
        if (ec == asio::error::eof) break;
        if (ec) throw error(ec, {.message = "the migration stream failed"});
    }
    if (::fsync(out.get()) != 0) throw error(last_error(), {.message = "cannot sync " + file.string()});
    co_await wait_migration_done(events, std::chrono::seconds(60));
}

std::string qemu_instance::vmm_log_tail() const { return io::read_file_tail(p_.vmm_log, 2048); }

asio::awaitable<boost::json::value> qemu_instance::execute(std::string command, boost::json::object args) {
    if (!p_.qmp.is_open())
        throw error(make_error_code(errc::invalid_state), {.message = "the QMP connection is closed"});
    // A closed connection mid-command means QEMU went away: say so, with the command it died in.
    std::string name = command;
    try {
        auto reply = co_await p_.qmp.async_execute(std::move(command), std::move(args));
        co_return reply;
    } catch (const boost::system::system_error& e) {
        if (e.code() != asio::error::eof) throw;
        throw error(make_error_code(errc::vmm_crashed),
                    {.message = "QEMU went away during '" + name + "' (its QMP connection closed)"});
    }
}

}  // namespace vmrt::hv
