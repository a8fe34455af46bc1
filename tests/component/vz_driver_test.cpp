// The apple-vz driver through a real vm_manager, against the project's simulated Objective-C runtime
// and Virtualization.framework (tests/sim: no Mac is available, so none of this has run on macOS).
// Boot to Ready from the console the simulated guest writes, every VZ message on its VM's queue (and
// a proof that the check catches one that is not), the VZ state mapping, stop escalation and its
// outcomes, pause/resume and their refusals, save/restore (and its absence before macOS 14), vsock
// both ways, the delegate's events, a start failure's NSError, the balloon, nothing leaked, and what
// "macOS 12" and "macOS 13" refuse.
//
// Every test ends with the fixture checking that the driver sent no message off its VM's queue and
// broke no other rule the simulation knows (vzsim::queue_violations, vzsim::misuses).
#include "hv/apple_vz/objc/foundation.hpp"
#include "hv/apple_vz/objc/handle.hpp"
#include "hv/apple_vz/vz_configuration.hpp"
#include "hv/apple_vz/vz_driver.hpp"
#include "hv/apple_vz/vz_plan.hpp"
#include "hv/apple_vz/vz_state.hpp"
#include "sim/objc/sim.hpp"
#include "sim/vz/vz_sim.hpp"
#include "sim/vz/vz_sim_machine.hpp"
#include "support/test_support.hpp"

#include <vmrt/detail/handoff.hpp>
#include <vmrt/io/dispatch_queue.hpp>
#include <vmrt/vm_manager.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/json.hpp>
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>

namespace asio = boost::asio;
namespace objc = vmrt::objc;
namespace vzsim = vmrt::objc::sim::vz;
namespace vz = vmrt::hv::vz;
using namespace std::chrono_literals;
using vmrt::test::run_coro;

namespace {

constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);

bool contains(const std::string& text, const std::string& what) {
    return text.find(what) != std::string::npos;
}

bool any_of(const std::vector<std::string>& lines, const std::string& what) {
    return std::any_of(lines.begin(), lines.end(), [&](const std::string& l) { return contains(l, what); });
}

std::string queue_of(const std::string& vm) { return "dev.vmrt.vm." + vm; }

// Objects of the simulated framework and of the driver that must all go with their VM.
struct live_counts {
    long vms, socket_devices, listeners, connections, balloons, nics, vm_delegates, listener_delegates,
        configurations, blocks, handoffs;
    friend bool operator==(const live_counts&, const live_counts&) = default;
};

live_counts count_live() {
    namespace sim = vmrt::objc::sim;
    return {sim::live_instances("VZVirtualMachine"),
            sim::live_instances("VZVirtioSocketDevice"),
            sim::live_instances("VZVirtioSocketListener"),
            sim::live_instances("VZVirtioSocketConnection"),
            sim::live_instances("VZVirtioTraditionalMemoryBalloonDevice"),
            sim::live_instances("VZNetworkDevice"),
            sim::live_instances("VmrtVZVirtualMachineDelegate"),
            sim::live_instances("VmrtVZVirtioSocketListenerDelegate"),
            sim::live_instances("VZVirtualMachineConfiguration"),
            sim::live_heap_blocks(),
            vmrt::detail::live_handoffs().load()};
}

std::ostream& operator<<(std::ostream& out, const live_counts& c) {
    return out << "vms " << c.vms << ", socket devices " << c.socket_devices << ", listeners " << c.listeners
               << ", connections " << c.connections << ", balloons " << c.balloons << ", nics " << c.nics
               << ", vm delegates " << c.vm_delegates << ", listener delegates " << c.listener_delegates
               << ", configurations " << c.configurations << ", heap blocks " << c.blocks << ", handoffs "
               << c.handoffs;
}

std::size_t open_fds() {
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
    return n;
}

// Same kind of state (the variant's alternative).
bool same_kind(const vmrt::vm_state& a, const vmrt::vm_state& b) { return a.index() == b.index(); }

struct fixture {
    vmrt::test::temp_dir dir;
    asio::io_context ctx;
    std::unique_ptr<vmrt::vm_manager> manager;

    fixture() {
        vzsim::install();
        vzsim::clear_queue_violations();
        vzsim::clear_misuses();
        vmrt::test::write_file(dir / "vmlinux", "not a kernel: the simulated guest never reads it");
        vmrt::manager_options o;
        o.state_dir = dir / "state";
        o.term_grace = 1s;
        o.kill_grace = 2s;
        manager = std::make_unique<vmrt::vm_manager>(ctx.get_executor(), o);
        use_driver({});
    }

    ~fixture() {
        manager.reset();
        for (const auto& v : vzsim::queue_violations())
            BOOST_ERROR("-[" << v.receiver_class << " " << v.selector << "] was sent off the queue of "
                             << v.queue);
        for (const auto& m : vzsim::misuses()) BOOST_ERROR("misuse of the simulated framework: " << m);
    }

    void use_driver(vmrt::hv::vz_driver_options o) {
        manager->set_driver(vmrt::backend_kind::apple_vz, vmrt::hv::make_apple_vz_driver(o));
    }

    vmrt::vm_spec spec(const std::string& name) {
        vmrt::vm_spec s;
        s.name = name;
        s.backend = vmrt::backend_kind::apple_vz;
        s.kernel = dir / "vmlinux";
        s.serial_log = dir / (name + ".serial");
        return s;
    }

    asio::awaitable<vmrt::vm_info> start_ready(vmrt::vm_spec s) {
        const auto name = s.name;
        auto [ec, info] = co_await manager->async_start(std::move(s), tuple_awaitable);
        BOOST_TEST_REQUIRE(!ec, ec.message() << ": " << info.diag.message);
        auto names = vmrt::test::strings(name);
        auto [rec, ready] = co_await manager->async_wait_ready(names, 10s, tuple_awaitable);
        BOOST_TEST_REQUIRE(!rec, "wait_ready: " << rec.message());
        co_return ready.front();
    }

    // The reasons of `vm`'s events until `done(event)`.
    // `vm` by value: a coroutine keeps its parameters, not what a reference refers to.
    static asio::awaitable<std::vector<std::string>>
    reasons_until(vmrt::io::subscription<vmrt::vm_event>& sub, std::string vm, auto done) {
        std::vector<std::string> seen;
        for (;;) {
            auto [ec, ev] = co_await sub.async_next(tuple_awaitable);
            if (ec) co_return seen;
            if (ev.vm != vm) continue;
            seen.push_back(ev.reason);
            if (done(ev)) co_return seen;
        }
    }

    static asio::awaitable<std::vector<std::string>>
    reasons_until_terminal(vmrt::io::subscription<vmrt::vm_event>& sub, std::string vm) {
        co_return co_await reasons_until(
            sub, vm, [](const vmrt::vm_event& ev) { return vmrt::is_terminal(ev.state); });
    }

    // Waits (polling the simulation, which has no events of its own) until the simulated VM is in `s`.
    static asio::awaitable<void> until_vz_state(vzsim::machine m, vzsim::machine_state s) {
        asio::steady_timer t(co_await asio::this_coro::executor);
        for (int i = 0; i < 1000 && m.state() != s; ++i) {
            t.expires_after(5ms);
            co_await t.async_wait(asio::use_awaitable);
        }
        BOOST_TEST_REQUIRE((m.state() == s), "the simulated VM is " << vzsim::to_string(m.state()) << ", not "
                                                                    << vzsim::to_string(s));
    }
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(vz_driver_test, fixture)

BOOST_AUTO_TEST_CASE(boots_to_ready_from_the_console_the_guest_writes_and_stops_clean) {
    auto s = spec("boot");
    run_coro(ctx, [&]() -> asio::awaitable<void> {
        auto sub = manager->subscribe();
        auto info = co_await start_ready(s);
        BOOST_TEST(info.backend == "apple-vz");
        BOOST_TEST_REQUIRE(std::holds_alternative<vmrt::state::ready>(info.state));
        BOOST_TEST(std::get<vmrt::state::ready>(info.state).ip.value_or("") == "192.168.64.2");
        BOOST_TEST(!info.vmm);  // no VMM process: the VM runs inside this one
        auto m = vzsim::machine::find(queue_of("boot"));
        BOOST_TEST_REQUIRE(bool(m));
        BOOST_TEST((m.state() == vzsim::machine_state::running));
        // The manager's readiness came from the file the guest wrote through VZFileSerialPortAttachment.
        BOOST_TEST(contains(vmrt::test::read_file(s.serial_log), "VMRS_READY 192.168.64.2\n"));

        auto [ec, outcome] = co_await manager->async_stop("boot", 5s, tuple_awaitable);
        BOOST_TEST_REQUIRE(!ec, ec.message());
        BOOST_TEST((outcome == vmrt::stop_outcome::clean), vmrt::to_string(outcome));
        BOOST_TEST(m.stop_requests() == 1u);  // -requestStopWithError: was enough
        BOOST_TEST(!m.alive());               // the VM object went with its instance
        auto reasons = co_await reasons_until_terminal(sub, "boot");
        BOOST_TEST(any_of(reasons, "machine identifier made for this boot"));
        BOOST_TEST(any_of(reasons, "guest powered off"));
    });
}

BOOST_AUTO_TEST_CASE(the_queue_check_catches_a_message_sent_off_the_vms_queue) {
    // The driver's own messages are checked by every test (the fixture). This proves the check:
    // a VM made here by hand, then messages sent from the wrong thread on purpose.
    auto s = spec("offqueue");
    s.vsock = vmrt::vsock_spec{};
    auto plan = vz::make_vz_plan(s, dir.path());
    BOOST_TEST_REQUIRE(plan.has_value());
    auto config = vz::build_vz_configuration(*plan, {});
    vmrt::io::serial_queue queue("dev.vmrt.vm.offqueue");
    objc::strong vm, stray;
    run_coro(ctx, [&]() -> asio::awaitable<void> {
        auto make = [&] {
            objc::autorelease_pool pool;
            vm = objc::alloc_init<objc::id, void*>(objc::cls("VZVirtualMachine"),
                                                   objc::sel("initWithConfiguration:queue:"),
                                                   config.configuration.get(), queue.native_handle());
        };
        co_await vmrt::io::run_on(queue, make);
    });
    BOOST_TEST_REQUIRE(bool(vm));
    BOOST_TEST(vzsim::queue_violations().empty());  // made on its queue: fine

    // -state from the test's thread.
    BOOST_TEST(objc::send<objc::NSInteger>(vm, objc::sel("state")) == 0);
    auto seen = vzsim::queue_violations();
    BOOST_TEST_REQUIRE(seen.size() == 1u);
    BOOST_TEST(seen[0].receiver_class == "VZVirtualMachine");
    BOOST_TEST(seen[0].selector == "state");
    BOOST_TEST(seen[0].queue == "dev.vmrt.vm.offqueue");

    // A runtime device is bound to its VM's queue too.
    objc::id device = nullptr;
    {
        objc::autorelease_pool pool;
        auto devices = objc::array_items(objc::send<objc::id>(vm, objc::sel("socketDevices")));
        BOOST_TEST_REQUIRE(devices.size() == 1u);
        device = devices.front().get();
    }
    objc::send<void, std::uint32_t>(device, objc::sel("removeSocketListenerForPort:"), 5000);
    // And -initWithConfiguration:queue: itself, sent from another thread than the queue it names.
    stray = objc::alloc_init<objc::id, void*>(objc::cls("VZVirtualMachine"),
                                              objc::sel("initWithConfiguration:queue:"),
                                              config.configuration.get(), queue.native_handle());
    seen = vzsim::queue_violations();
    BOOST_TEST_REQUIRE(seen.size() == 4u);
    BOOST_TEST(seen[1].selector == "socketDevices");
    BOOST_TEST(seen[2].receiver_class == "VZVirtioSocketDevice");
    BOOST_TEST(seen[2].selector == "removeSocketListenerForPort:");
    BOOST_TEST(seen[3].selector == "initWithConfiguration:queue:");

    run_coro(ctx, [&]() -> asio::awaitable<void> {
        auto release = [&] {
            vm.reset();
            stray.reset();
        };
        co_await vmrt::io::run_on(queue, release);
    });
    config.configuration.reset();
    vzsim::clear_queue_violations();  // these were this test's own, on purpose
}

BOOST_AUTO_TEST_CASE(every_vz_state_maps_to_the_managers_state) {
    using vs = vz::machine_state;
    const std::optional<std::string> ip = std::string("192.168.64.2");
    // The mapping, for every VZVirtualMachineState value (VZVirtualMachine.h: 0 to 9).
    BOOST_TEST(std::holds_alternative<vmrt::state::stopped>(vz::to_vm_state(vs::stopped)));
    BOOST_TEST(std::holds_alternative<vmrt::state::running>(vz::to_vm_state(vs::running)));
    BOOST_TEST(std::holds_alternative<vmrt::state::ready>(vz::to_vm_state(vs::running, ip)));
    BOOST_TEST(std::holds_alternative<vmrt::state::paused>(vz::to_vm_state(vs::paused)));
    BOOST_TEST(std::holds_alternative<vmrt::state::failed>(vz::to_vm_state(vs::error)));
    BOOST_TEST(std::holds_alternative<vmrt::state::starting>(vz::to_vm_state(vs::starting)));
    BOOST_TEST(std::holds_alternative<vmrt::state::running>(vz::to_vm_state(vs::pausing)));
    BOOST_TEST(std::holds_alternative<vmrt::state::paused>(vz::to_vm_state(vs::resuming)));
    BOOST_TEST(std::holds_alternative<vmrt::state::stopping>(vz::to_vm_state(vs::stopping)));
    BOOST_TEST(std::holds_alternative<vmrt::state::paused>(vz::to_vm_state(vs::saving)));
    BOOST_TEST(std::holds_alternative<vmrt::state::starting>(vz::to_vm_state(vs::restoring)));
    for (std::int64_t raw = 0; raw <= 9; ++raw) BOOST_TEST(vz::machine_state_from(raw).has_value());
    BOOST_TEST(!vz::machine_state_from(10).has_value());
    BOOST_TEST(!vz::machine_state_from(-1).has_value());
    BOOST_TEST(vz::state_name(vs::restoring) == "Restoring");

    // And what the manager reports while the simulated VM is in each state (slow transitions make
    // the intermediate states observable): the mapping is the manager's behaviour.
    vzsim::guest_behaviour slow;
    slow.start_time = 1500ms;
    slow.transition_time = 1500ms;
    slow.stop_time = 1500ms;
    slow.honour_stop_request = false;
    vzsim::scoped_behaviour behaviour(slow);
    use_driver({.stop_timeout = 10s});
    auto s = spec("states");
    const auto snapshot = dir / "states-snapshot";
    run_coro(
        ctx,
        [&]() -> asio::awaitable<void> {
            auto ex = co_await asio::this_coro::executor;
            // The delegate's news reaches the manager asynchronously (the VM's queue, then a
            // datagram to the strand), so the manager is given up to 5 s to catch up with the
            // simulated VM's state; each state lasts 1.5 s, so a wrong mapping still shows.
            auto check = [&](vzsim::machine m, std::optional<std::string> ready) -> asio::awaitable<void> {
                auto vz_state = static_cast<vs>(static_cast<std::int64_t>(m.state()));
                auto expected = vz::to_vm_state(vz_state, ready);
                asio::steady_timer t(co_await asio::this_coro::executor);
                auto ours = manager->state("states");
                for (int i = 0; i < 1000 && ours && !same_kind(*ours, expected); ++i) {
                    t.expires_after(5ms);
                    co_await t.async_wait(asio::use_awaitable);
                    ours = manager->state("states");
                }
                BOOST_TEST_REQUIRE(ours.has_value());
                BOOST_TEST(same_kind(*ours, expected), "VZ " << vz::state_name(vz_state)
                                                             << " but the manager says "
                                                             << vmrt::to_string(*ours));
            };
            asio::co_spawn(ex, manager->async_start(s, asio::use_awaitable), asio::detached);
            vzsim::machine m;
            while (!(m = vzsim::machine::find(queue_of("states")))) {
                asio::steady_timer t(ex, 5ms);
                co_await t.async_wait(asio::use_awaitable);
            }
            co_await until_vz_state(m, vzsim::machine_state::starting);
            co_await check(m, std::nullopt);
            auto names = vmrt::test::strings("states");
            auto [rec, ready] = co_await manager->async_wait_ready(names, 10s, tuple_awaitable);
            BOOST_TEST_REQUIRE(!rec);
            co_await check(m, ip);  // Running, ready

            asio::co_spawn(ex, manager->async_pause("states", asio::use_awaitable), asio::detached);
            co_await until_vz_state(m, vzsim::machine_state::pausing);
            co_await check(m, ip);
            co_await until_vz_state(m, vzsim::machine_state::paused);
            co_await check(m, ip);

            asio::co_spawn(ex, manager->async_snapshot("states", snapshot, asio::use_awaitable),
                           asio::detached);
            co_await until_vz_state(m, vzsim::machine_state::saving);
            co_await check(m, ip);
            co_await until_vz_state(m, vzsim::machine_state::paused);
            co_await check(m, ip);

            asio::co_spawn(ex, manager->async_resume("states", asio::use_awaitable), asio::detached);
            co_await until_vz_state(m, vzsim::machine_state::resuming);
            co_await check(m, ip);
            co_await until_vz_state(m, vzsim::machine_state::running);
            co_await check(m, ip);

            // The guest ignores the power button: the stop goes on to -stopWithCompletionHandler:.
            auto stop = manager->async_stop("states", 100ms, tuple_awaitable);
            asio::co_spawn(
                ex,
                [](decltype(stop) op) -> asio::awaitable<void> {
                    auto [ec, outcome] = co_await std::move(op);
                    BOOST_TEST(!ec);
                    BOOST_TEST((outcome == vmrt::stop_outcome::forced));
                }(std::move(stop)),
                asio::detached);
            co_await until_vz_state(m, vzsim::machine_state::stopping);
            co_await check(m, std::nullopt);
            auto sub = manager->subscribe();
            auto st = manager->state("states");
            if (st && !vmrt::is_terminal(*st)) co_await reasons_until_terminal(sub, "states");
            BOOST_TEST(std::holds_alternative<vmrt::state::stopped>(*manager->state("states")));

            // Restoring is part of the launch (starting).
            BOOST_TEST(manager->remove("states") == vmrt::error_code{});
            for (int i = 0; i < 1000 && m.alive(); ++i) {  // the stopped VM's object goes with its instance
                asio::steady_timer t(ex, 5ms);
                co_await t.async_wait(asio::use_awaitable);
            }
            BOOST_TEST_REQUIRE(!m.alive());
            asio::co_spawn(
                ex,
                [](vmrt::vm_manager& mgr, std::filesystem::path from) -> asio::awaitable<void> {
                    auto [ec, info] = co_await mgr.async_restore(from, tuple_awaitable);
                    BOOST_TEST(!ec, ec.message() << ": " << info.diag.message);
                }(*manager, snapshot),
                asio::detached);
            vzsim::machine restored;
            while (!(restored = vzsim::machine::find(queue_of("states")))) {
                asio::steady_timer t(ex, 5ms);
                co_await t.async_wait(asio::use_awaitable);
            }
            co_await until_vz_state(restored, vzsim::machine_state::restoring);
            co_await check(restored, std::nullopt);
            co_await until_vz_state(restored, vzsim::machine_state::running);
            auto sub2 = manager->subscribe();
            while (!std::holds_alternative<vmrt::state::ready>(*manager->state("states")))
                co_await sub2.async_next(tuple_awaitable);
            co_await check(restored, ip);

            // Error: the VM fails.
            auto sub3 = manager->subscribe();
            restored.fail({"VZErrorDomain", 1, "Internal Virtualization error."});
            co_await reasons_until_terminal(sub3, "states");
            co_await check(restored, ip);
        },
        60s);
}

BOOST_AUTO_TEST_CASE(a_guest_that_powers_off_on_request_is_a_clean_stop) {
    run_coro(ctx, [&]() -> asio::awaitable<void> {
        co_await start_ready(spec("polite"));
        auto m = vzsim::machine::find(queue_of("polite"));
        auto sub = manager->subscribe();
        auto [ec, outcome] = co_await manager->async_stop("polite", 5s, tuple_awaitable);
        BOOST_TEST_REQUIRE(!ec, ec.message());
        BOOST_TEST((outcome == vmrt::stop_outcome::clean), vmrt::to_string(outcome));
        auto reasons = co_await reasons_until_terminal(sub, "polite");
        BOOST_TEST(!any_of(reasons, "stopWithCompletionHandler"));  // the guest was only asked
        auto st = manager->state("polite");
        BOOST_TEST_REQUIRE(std::holds_alternative<vmrt::state::stopped>(*st));
        BOOST_TEST(std::get<vmrt::state::stopped>(*st).status->success());
    });
}

BOOST_AUTO_TEST_CASE(a_guest_that_ignores_the_request_is_stopped_by_vz_and_the_stop_is_forced) {
    vzsim::guest_behaviour deaf;
    deaf.honour_stop_request = false;
    vzsim::scoped_behaviour behaviour(deaf);
    run_coro(ctx, [&]() -> asio::awaitable<void> {
        co_await start_ready(spec("deaf"));
        auto m = vzsim::machine::find(queue_of("deaf"));
        auto sub = manager->subscribe();
        auto [ec, outcome] = co_await manager->async_stop("deaf", 200ms, tuple_awaitable);
        BOOST_TEST_REQUIRE(!ec, ec.message());
        BOOST_TEST((outcome == vmrt::stop_outcome::forced), vmrt::to_string(outcome));
        BOOST_TEST(m.stop_requests() == 1u);
        auto reasons = co_await reasons_until_terminal(sub, "deaf");
        BOOST_TEST(any_of(reasons, "stopping the VM (-[VZVirtualMachine stopWithCompletionHandler:])"));
        BOOST_TEST(!any_of(reasons, "sending SIGTERM"));  // VZ's own stop sufficed
        BOOST_TEST(!m.alive());
    });
}

BOOST_AUTO_TEST_CASE(a_stop_that_hangs_is_given_up_and_the_vm_killed) {
    vzsim::guest_behaviour hang;
    hang.honour_stop_request = false;
    hang.stop_time = 60s;  // -stopWithCompletionHandler: never completes in this test's time
    vzsim::scoped_behaviour behaviour(hang);
    use_driver({.stop_timeout = 300ms});
    run_coro(ctx, [&]() -> asio::awaitable<void> {
        co_await start_ready(spec("hang"));
        auto m = vzsim::machine::find(queue_of("hang"));
        auto sub = manager->subscribe();
        auto [ec, outcome] = co_await manager->async_stop("hang", 200ms, tuple_awaitable);
        BOOST_TEST_REQUIRE(!ec, ec.message());
        BOOST_TEST((outcome == vmrt::stop_outcome::forced), vmrt::to_string(outcome));
        auto reasons = co_await reasons_until_terminal(sub, "hang");
        BOOST_TEST(any_of(reasons, "did not complete within 300 ms"));
        BOOST_TEST(any_of(reasons, "cannot stop the VM now: Virtualization.framework reports it Stopping"));
        BOOST_TEST(any_of(reasons, "killed while Virtualization.framework reported the VM Stopping"));
        BOOST_TEST(!m.alive());  // released with the instance, the pending stop with it
    });
}

BOOST_AUTO_TEST_CASE(kill_stops_the_vm_at_once) {
    run_coro(ctx, [&]() -> asio::awaitable<void> {
        co_await start_ready(spec("killed"));
        auto m = vzsim::machine::find(queue_of("killed"));
        auto [ec, outcome] = co_await manager->async_kill("killed", tuple_awaitable);
        BOOST_TEST_REQUIRE(!ec, ec.message());
        BOOST_TEST((outcome == vmrt::stop_outcome::forced), vmrt::to_string(outcome));
        BOOST_TEST(m.stop_requests() == 0u);  // the guest was not asked
        auto st = manager->state("killed");
        BOOST_TEST_REQUIRE(std::holds_alternative<vmrt::state::stopped>(*st));
        BOOST_TEST(std::get<vmrt::state::stopped>(*st).status->signal == SIGKILL);
        BOOST_TEST(!m.alive());
    });
}

BOOST_AUTO_TEST_CASE(a_uefi_vm_boots_with_its_variable_store_and_keeps_its_identity) {
    auto s = spec("uefi");
    s.boot = vmrt::boot_mode::uefi;
    s.kernel.clear();
    s.efi_variable_store = dir / "uefi.nvram";
    run_coro(ctx, [&]() -> asio::awaitable<void> {
        auto sub = manager->subscribe();
        co_await start_ready(s);
        auto [ec, outcome] = co_await manager->async_stop("uefi", 5s, tuple_awaitable);
        BOOST_TEST(!ec);
        BOOST_TEST((outcome == vmrt::stop_outcome::clean));
        auto reasons = co_await reasons_until_terminal(sub, "uefi");
        BOOST_TEST(!any_of(reasons, "machine identifier made for this boot"));  // persisted, not fresh
        BOOST_TEST(std::filesystem::exists(*s.efi_variable_store));
        const auto identity_file = vz::machine_identifier_file(*s.efi_variable_store);
        BOOST_TEST_REQUIRE(std::filesystem::exists(identity_file));
        const auto identity = vmrt::test::read_file(identity_file);
        // The second boot is the same machine: the store and the identity are reused as they are.
        co_await start_ready(s);
        BOOST_TEST(vmrt::test::read_file(identity_file) == identity);
        co_await manager->async_stop("uefi", 5s, tuple_awaitable);
    });
}

BOOST_AUTO_TEST_CASE(what_vz_cannot_change_at_run_time_is_refused) {
    vmrt::test::write_file(dir / "extra.img", std::string(1 << 16, '\0'));
    run_coro(ctx, [&]() -> asio::awaitable<void> {
        co_await start_ready(spec("fixed"));
        vmrt::disk_spec extra;  // a named local: GCC 12 miscompiles a braced temporary in a co_await
        extra.path = dir / "extra.img";
        auto [dec, disk] = co_await manager->async_add_disk("fixed", extra, tuple_awaitable);
        BOOST_TEST((dec == vmrt::errc::unsupported), dec.message());
        auto [cec, counters] = co_await manager->async_counters("fixed", tuple_awaitable);
        BOOST_TEST((cec == vmrt::errc::unsupported), cec.message());
        auto [bec, balloon] = co_await manager->async_resize_balloon("fixed", 256, tuple_awaitable);
        BOOST_TEST((bec == vmrt::errc::unsupported), bec.message());  // no balloon in this spec
        auto [vec, stream] = co_await manager->async_vsock_connect("fixed", 7, tuple_awaitable);
        BOOST_TEST((vec == vmrt::errc::unsupported), vec.message());  // no vsock in this spec
        co_await manager->async_kill("fixed", tuple_awaitable);
    });
}

BOOST_AUTO_TEST_CASE(pause_and_resume_follow_can_pause_and_can_resume) {
    run_coro(ctx, [&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        co_await start_ready(spec("pr"));
        auto m = vzsim::machine::find(queue_of("pr"));
        auto [pec, paused] = co_await manager->async_pause("pr", tuple_awaitable);
        BOOST_TEST_REQUIRE(!pec, pec.message());
        BOOST_TEST(std::holds_alternative<vmrt::state::paused>(paused));
        BOOST_TEST((m.state() == vzsim::machine_state::paused));
        auto [again, unused] = co_await manager->async_pause("pr", tuple_awaitable);
        BOOST_TEST((again == vmrt::errc::invalid_state));  // the manager's own refusal
        auto [rec, resumed] = co_await manager->async_resume("pr", tuple_awaitable);
        BOOST_TEST_REQUIRE(!rec, rec.message());
        BOOST_TEST(std::holds_alternative<vmrt::state::ready>(resumed));
        BOOST_TEST((m.state() == vzsim::machine_state::running));

        // Virtualization.framework's refusals: canPause is NO while a pause is under way, canResume
        // NO while a resume is.
        auto b = m.behaviour();
        b.transition_time = 1s;
        m.set_behaviour(b);
        asio::co_spawn(ex, manager->async_pause("pr", asio::use_awaitable), asio::detached);
        co_await until_vz_state(m, vzsim::machine_state::pausing);
        auto [second, state2] = co_await manager->async_pause("pr", tuple_awaitable);
        BOOST_TEST((second == vmrt::errc::invalid_state), second.message());
        co_await until_vz_state(m, vzsim::machine_state::paused);
        asio::co_spawn(ex, manager->async_resume("pr", asio::use_awaitable), asio::detached);
        co_await until_vz_state(m, vzsim::machine_state::resuming);
        auto [third, state3] = co_await manager->async_resume("pr", tuple_awaitable);
        BOOST_TEST((third == vmrt::errc::invalid_state), third.message());
        co_await until_vz_state(m, vzsim::machine_state::running);
        co_await manager->async_kill("pr", tuple_awaitable);
    });
}

BOOST_AUTO_TEST_CASE(a_snapshot_is_saved_paused_and_restored_as_the_same_machine) {
    auto s = spec("saver");
    const auto snap = dir / "snap";
    run_coro(ctx, [&]() -> asio::awaitable<void> {
        auto sub = manager->subscribe();
        co_await start_ready(s);
        auto [ec, state] = co_await manager->async_snapshot("saver", snap, tuple_awaitable);
        BOOST_TEST_REQUIRE(!ec, ec.message());
        BOOST_TEST(std::holds_alternative<vmrt::state::paused>(state));
        auto m = vzsim::machine::find(queue_of("saver"));
        BOOST_TEST((m.state() == vzsim::machine_state::paused));  // saved, and still paused
        BOOST_TEST(std::filesystem::exists(snap / "vm.json"));
        auto saved = vzsim::saved_configuration((snap / "machine.vzvmsave").string());
        BOOST_TEST_REQUIRE(saved.has_value());
        BOOST_TEST(contains(*saved, "cpus=1 memory=536870912"), *saved);
        // The fresh identity is kept beside the save: the restored VM must be the same machine.
        const auto identity = vmrt::test::read_file(snap / "machine-identifier");
        BOOST_TEST(contains(*saved, "machine=" + identity.substr(0, identity.size() - 1)));
        auto reasons = co_await reasons_until(
            sub, "saver", [](const vmrt::vm_event& ev) { return contains(ev.reason, "snapshot saved"); });
        BOOST_TEST(any_of(reasons, identity.substr(0, identity.size() - 1)));  // the note named it
        co_await manager->async_kill("saver", tuple_awaitable);
        BOOST_TEST(manager->remove("saver") == vmrt::error_code{});

        auto [rec, info] = co_await manager->async_restore(snap, tuple_awaitable);
        BOOST_TEST_REQUIRE(!rec, rec.message() << ": " << info.diag.message);
        BOOST_TEST(std::holds_alternative<vmrt::state::ready>(info.state));  // it was ready when saved
        auto restored = vzsim::machine::find(queue_of("saver"));
        BOOST_TEST((restored.state() == vzsim::machine_state::running));
        auto [sec, outcome] = co_await manager->async_stop("saver", 5s, tuple_awaitable);
        BOOST_TEST(!sec);
        BOOST_TEST((outcome == vmrt::stop_outcome::clean));
        BOOST_TEST(manager->remove("saver") == vmrt::error_code{});

        // A configuration that does not match the saved state: VZErrorRestore, as a start failure.
        auto meta = boost::json::parse(vmrt::test::read_file(snap / "vm.json")).as_object();
        meta["spec"].as_object()["cpus"] = 2;
        vmrt::test::write_file(snap / "vm.json", boost::json::serialize(meta));
        auto [bad, failed] = co_await manager->async_restore(snap, tuple_awaitable);
        BOOST_TEST((bad == vmrt::errc::vmm_start_failed), bad.message());
        BOOST_TEST(contains(failed.diag.message, "VZErrorDomain 12"), failed.diag.message);
        BOOST_TEST(contains(failed.diag.message, "does not match the saved state"), failed.diag.message);
        BOOST_TEST(vzsim::machine::live_count() == 0u);
    });
}

BOOST_AUTO_TEST_CASE(save_and_restore_are_refused_before_macos_14) {
    auto s = spec("old");
    const auto snap = dir / "old-snap";
    run_coro(ctx, [&]() -> asio::awaitable<void> {
        // A snapshot made on "macOS 14"...
        co_await start_ready(s);
        auto [ec, state] = co_await manager->async_snapshot("old", snap, tuple_awaitable);
        BOOST_TEST_REQUIRE(!ec, ec.message());
        co_await manager->async_kill("old", tuple_awaitable);
        BOOST_TEST(manager->remove("old") == vmrt::error_code{});
        {
            // ...and a Mac on macOS 13, where VZVirtualMachine has neither method.
            vzsim::scoped_macos macos13(13);
            auto [rec, info] = co_await manager->async_restore(snap, tuple_awaitable);
            BOOST_TEST((rec == vmrt::errc::unsupported), rec.message());
            BOOST_TEST(contains(info.diag.message, "macOS 14"), info.diag.message);
            co_await start_ready(spec("old13"));
            auto [sec, st] = co_await manager->async_snapshot("old13", dir / "old13-snap", tuple_awaitable);
            BOOST_TEST((sec == vmrt::errc::unsupported), sec.message());
            co_await manager->async_kill("old13", tuple_awaitable);
        }
        {
            // An Intel Mac on macOS 14: the methods are arm64-only.
            vzsim::scoped_macos intel(14, false);
            co_await start_ready(spec("intel"));
            auto [iec, st] = co_await manager->async_snapshot("intel", dir / "intel-snap", tuple_awaitable);
            BOOST_TEST((iec == vmrt::errc::unsupported), iec.message());
            co_await manager->async_kill("intel", tuple_awaitable);
        }
    });
}

BOOST_AUTO_TEST_CASE(vsock_connects_to_the_guest_and_accepts_the_guests_connections) {
    auto s = spec("vs");
    s.vsock = vmrt::vsock_spec{};
    run_coro(ctx, [&]() -> asio::awaitable<void> {
        co_await start_ready(s);
        auto m = vzsim::machine::find(queue_of("vs"));

        // Host -> guest: the guest's echo service on port 7.
        auto [ec, stream] = co_await manager->async_vsock_connect("vs", 7, tuple_awaitable);
        BOOST_TEST_REQUIRE(!ec, ec.message());
        co_await asio::async_write(stream, asio::buffer(std::string("ping")), asio::use_awaitable);
        std::string echo(4, '\0');
        co_await asio::async_read(stream, asio::buffer(echo), asio::use_awaitable);
        BOOST_TEST(echo == "ping");
        // A port nobody serves: what a Mac reports, NSPOSIXErrorDomain ECONNRESET.
        auto [refused, none] = co_await manager->async_vsock_connect("vs", 9, tuple_awaitable);
        BOOST_TEST((refused == boost::system::error_code(ECONNRESET, boost::system::system_category())),
                   refused.message());

        // Guest -> host: a listener on host port 5000.
        auto [lec, listener] = co_await manager->async_vsock_listen("vs", 5000, tuple_awaitable);
        BOOST_TEST_REQUIRE(!lec, lec.message());
        BOOST_TEST(listener.port() == 5000u);
        auto guest = m.guest_connect(5000);
        BOOST_TEST_REQUIRE(guest.has_value());
        auto from_guest = co_await listener.accept();
        const std::string hello = "hello from the guest";
        BOOST_TEST_REQUIRE(::write(guest->guest_end.get(), hello.data(), hello.size()) ==
                           ssize_t(hello.size()));
        std::string got(hello.size(), '\0');
        co_await asio::async_read(from_guest, asio::buffer(got), asio::use_awaitable);
        BOOST_TEST(got == hello);
        co_await asio::async_write(from_guest, asio::buffer(std::string("hi")), asio::use_awaitable);
        char back[2];
        BOOST_TEST(::read(guest->guest_end.get(), back, 2) == 2);
        BOOST_TEST(std::string(back, 2) == "hi");

        BOOST_TEST((m.guest_connect(5001).error() ==
                    boost::system::error_code(ECONNRESET, boost::system::system_category())));
        {
            auto gone = std::move(listener);  // destroyed: the port stops listening
        }
        BOOST_TEST(!m.guest_connect(5000).has_value());

        // A listener of a VM that ends learns that nothing more comes.
        auto [l2ec, last] = co_await manager->async_vsock_listen("vs", 6000, tuple_awaitable);
        BOOST_TEST_REQUIRE(!l2ec);
        co_await manager->async_stop("vs", 5s, tuple_awaitable);
        bool ended = false;
        try {
            co_await last.accept();
        } catch (const vmrt::error& e) {
            ended = e.code() == vmrt::errc::invalid_state;
        }
        BOOST_TEST(ended);
        auto [nec, nothing] = co_await manager->async_vsock_listen("vs", 6001, tuple_awaitable);
        BOOST_TEST((nec == vmrt::errc::invalid_state));  // stopped
        auto [uec, unknown] = co_await manager->async_vsock_listen("nobody", 1, tuple_awaitable);
        BOOST_TEST((uec == vmrt::errc::not_found));
    });
}

BOOST_AUTO_TEST_CASE(the_control_channel_relays_to_the_guests_console_port) {
    auto s = spec("ctl");
    s.control_channel = true;
    const auto lines = vmrt::test::strings("ping\n", "again\n");
    run_coro(ctx, [&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        auto info = co_await start_ready(s);
        BOOST_TEST_REQUIRE(!info.control_socket.empty());
        BOOST_TEST(info.control_socket == info.run_dir / "control.sock");
        // One client after the other, as on a serial port; the simulated guest echoes its port.
        for (const auto& sent : lines) {
            asio::local::stream_protocol::socket client(ex);
            const asio::local::stream_protocol::endpoint where(info.control_socket.string());
            co_await client.async_connect(where, asio::use_awaitable);
            co_await asio::async_write(client, asio::buffer(sent), asio::use_awaitable);
            std::string got(sent.size(), '\0');
            co_await asio::async_read(client, asio::buffer(got), asio::use_awaitable);
            BOOST_TEST(got == sent);
        }
        auto [ec, outcome] = co_await manager->async_stop("ctl", 5s, tuple_awaitable);
        BOOST_TEST(!ec);
        BOOST_TEST(!std::filesystem::exists(info.control_socket));  // gone with the VM
    });
}

BOOST_AUTO_TEST_CASE(the_guests_own_stop_and_a_vm_error_are_events_from_the_delegate) {
    auto with_nic = spec("nic");
    with_nic.networks.push_back(vmrt::nic_spec{.kind = vmrt::nic_kind::user});
    run_coro(ctx, [&]() -> asio::awaitable<void> {
        auto sub = manager->subscribe();
        co_await start_ready(spec("byitself"));
        vzsim::machine::find(queue_of("byitself")).guest_power_off();
        auto reasons = co_await reasons_until_terminal(sub, "byitself");
        auto st = manager->state("byitself");
        BOOST_TEST_REQUIRE(std::holds_alternative<vmrt::state::stopped>(*st));
        BOOST_TEST((std::get<vmrt::state::stopped>(*st).outcome == vmrt::stop_outcome::clean));
        BOOST_TEST(any_of(reasons, "guest powered off by itself"));

        co_await start_ready(with_nic);
        auto m = vzsim::machine::find(queue_of("nic"));
        m.disconnect_network(0, {"VZErrorDomain", 7, "The network attachment was disconnected."});
        auto notes = co_await reasons_until(sub, "nic", [](const vmrt::vm_event& ev) {
            return ev.kind == vmrt::event_kind::note && contains(ev.reason, "network attachment");
        });
        BOOST_TEST(any_of(notes, "networks[0]: Virtualization.framework disconnected its network attachment: "
                                 "VZErrorDomain 7 The network attachment was disconnected."));
        BOOST_TEST(std::holds_alternative<vmrt::state::ready>(*manager->state("nic")));  // still running

        m.fail(
            {"VZErrorDomain", 1, "Internal Virtualization error. The virtual machine stopped unexpectedly."});
        co_await reasons_until_terminal(sub, "nic");
        auto failed = manager->state("nic");
        BOOST_TEST_REQUIRE(std::holds_alternative<vmrt::state::failed>(*failed));
        const auto& why = std::get<vmrt::state::failed>(*failed).reason;
        BOOST_TEST(contains(why, "VZErrorDomain 1 Internal Virtualization error."), why);
        BOOST_TEST(!std::get<vmrt::state::failed>(*failed).serial_tail.empty());  // the console's last lines
    });
}

BOOST_AUTO_TEST_CASE(a_start_that_fails_reports_the_nserror) {
    vzsim::guest_behaviour broken;
    broken.start_error = vzsim::ns_error_spec{"VZErrorDomain", 1, "The virtual machine failed to start."};
    vzsim::scoped_behaviour behaviour(broken);
    run_coro(ctx, [&]() -> asio::awaitable<void> {
        auto [ec, info] = co_await manager->async_start(spec("broken"), tuple_awaitable);
        BOOST_TEST((ec == vmrt::errc::vmm_start_failed), ec.message());
        BOOST_TEST(contains(info.diag.message,
                            "start the VM (-[VZVirtualMachine startWithCompletionHandler:]): VZErrorDomain 1 "
                            "The virtual machine failed to start."),
                   info.diag.message);
        BOOST_TEST(std::holds_alternative<vmrt::state::failed>(info.state));
        BOOST_TEST(vzsim::machine::live_count() == 0u);  // released on the way out
    });
}

BOOST_AUTO_TEST_CASE(the_balloon_target_is_what_vz_reports) {
    auto s = spec("balloon");
    s.balloon = vmrt::balloon_spec{.initial_mib = 64};
    run_coro(ctx, [&]() -> asio::awaitable<void> {
        auto sub = manager->subscribe();
        co_await start_ready(s);
        auto m = vzsim::machine::find(queue_of("balloon"));
        BOOST_TEST(m.balloon_target() == 448ull << 20);  // 512 MiB minus the 64 the balloon starts with
        auto [ec, now] = co_await manager->async_resize_balloon("balloon", 256, tuple_awaitable);
        BOOST_TEST_REQUIRE(!ec, ec.message());
        BOOST_TEST(now == 256u);
        BOOST_TEST(m.balloon_target() == 256ull << 20);
        // Below +[VZVirtualMachineConfiguration minimumAllowedMemorySize] (128 MiB here) VZ clamps.
        auto [cec, clamped] = co_await manager->async_resize_balloon("balloon", 100, tuple_awaitable);
        BOOST_TEST_REQUIRE(!cec, cec.message());
        BOOST_TEST(clamped == 128u);
        auto reasons = co_await reasons_until(
            sub, "balloon", [](const vmrt::vm_event& ev) { return contains(ev.reason, "128 MiB"); });
        BOOST_TEST(any_of(reasons, "balloon: the guest starts with 448 MiB"));
        co_await manager->async_kill("balloon", tuple_awaitable);
    });
}

BOOST_AUTO_TEST_CASE(nothing_is_left_after_a_vm_is_removed) {
    auto s = spec("leak");
    s.vsock = vmrt::vsock_spec{};
    s.balloon = vmrt::balloon_spec{};
    s.networks.push_back(vmrt::nic_spec{.kind = vmrt::nic_kind::user});
    auto cycle = [&](bool with_traffic) -> asio::awaitable<void> {
        co_await start_ready(s);
        if (with_traffic) {
            auto [ec, stream] = co_await manager->async_vsock_connect("leak", 7, tuple_awaitable);
            BOOST_TEST(!ec);
            auto [lec, listener] = co_await manager->async_vsock_listen("leak", 5000, tuple_awaitable);
            BOOST_TEST_REQUIRE(!lec);
            auto guest = vzsim::machine::find(queue_of("leak")).guest_connect(5000);
            BOOST_TEST_REQUIRE(guest.has_value());
            auto accepted = co_await listener.accept();
            auto [pec, p] = co_await manager->async_pause("leak", tuple_awaitable);
            BOOST_TEST(!pec);
            auto [rec, r] = co_await manager->async_resume("leak", tuple_awaitable);
            BOOST_TEST(!rec);
        }
        auto [sec, outcome] = co_await manager->async_stop("leak", 5s, tuple_awaitable);
        BOOST_TEST(!sec);
        BOOST_TEST(manager->remove("leak") == vmrt::error_code{});
    };
    // A first cycle warms up what lives as long as the process or the io_context (pools, services).
    run_coro(ctx, [&]() -> asio::awaitable<void> { co_await cycle(false); });
    const auto before = count_live();
    const auto fds = open_fds();
    run_coro(ctx, [&]() -> asio::awaitable<void> { co_await cycle(true); });
    const auto after = count_live();
    BOOST_TEST(after == before, "before: " << before << "; after: " << after);
    BOOST_TEST(after.vms == 0);
    BOOST_TEST(vzsim::machine::live_count() == 0u);
    BOOST_TEST(open_fds() == fds);
}

BOOST_AUTO_TEST_CASE(macos_12_and_13_get_what_they_have_and_refuse_the_rest) {
    vmrt::test::write_file(dir / "root.img", std::string(1 << 20, '\0'));
    run_coro(ctx, [&]() -> asio::awaitable<void> {
        {
            vzsim::scoped_macos macos12(12);
            auto sub = manager->subscribe();
            co_await start_ready(spec("twelve"));  // direct boot, virtio devices: macOS 12 has them
            auto [sec, outcome] = co_await manager->async_stop("twelve", 5s, tuple_awaitable);
            BOOST_TEST((outcome == vmrt::stop_outcome::clean));
            auto reasons = co_await reasons_until_terminal(sub, "twelve");
            BOOST_TEST(!any_of(reasons, "machine identifier"));  // VZ picks one itself and shows nothing

            auto uefi = spec("uefi12");
            uefi.boot = vmrt::boot_mode::uefi;
            uefi.kernel.clear();
            auto [uec, uinfo] = co_await manager->async_start(uefi, tuple_awaitable);
            BOOST_TEST((uec == vmrt::errc::unsupported), uec.message());
            BOOST_TEST(uinfo.diag.field == "boot");
            BOOST_TEST(contains(uinfo.diag.message, "macOS 13"), uinfo.diag.message);
        }
        {
            vzsim::scoped_macos macos13(13);
            auto sub = manager->subscribe();
            co_await start_ready(spec("thirteen"));
            auto [sec, outcome] = co_await manager->async_stop("thirteen", 5s, tuple_awaitable);
            BOOST_TEST((outcome == vmrt::stop_outcome::clean));
            auto reasons = co_await reasons_until_terminal(sub, "thirteen");
            BOOST_TEST(any_of(reasons, "machine identifier made for this boot"));

            auto nvme = spec("nvme13");
            nvme.root_disk =
                vmrt::disk_spec{.path = dir / "root.img", .interface = vmrt::disk_interface::nvme};
            auto [nec, ninfo] = co_await manager->async_start(nvme, tuple_awaitable);
            BOOST_TEST((nec == vmrt::errc::unsupported), nec.message());
            BOOST_TEST(ninfo.diag.field == "root_disk.interface");
            BOOST_TEST(contains(ninfo.diag.message, "macOS 14"), ninfo.diag.message);
        }
        // Virtualization unavailable altogether (+isSupported NO).
        vzsim::scoped_unsupported none;
        auto [ec, info] = co_await manager->async_start(spec("nowhere"), tuple_awaitable);
        BOOST_TEST((ec == vmrt::errc::unsupported), ec.message());
        BOOST_TEST(contains(info.diag.message, "isSupported"), info.diag.message);
    });
}

BOOST_AUTO_TEST_SUITE_END()
