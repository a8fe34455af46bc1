// Real guests: the project's default guest (Debian cloud kernel + vmrt's own initramfs) booted by
// QEMU under the manager. TCG here: `/dev/kvm` is a paravirtual host that stock guests crash under.
#include "guest_fixture.hpp"
#include "hv/qemu_driver.hpp"
#include "support/test_support.hpp"

#include <vmrt/image/guest_image.hpp>
#include <vmrt/vm_manager.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/test/unit_test.hpp>

#include <csignal>
#include <cstdlib>
#include <sstream>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using vmrt::test::run_coro;

namespace {

constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);

struct fixture : vmrt::test::guest_fixture {
    asio::awaitable<void> sleep(std::chrono::milliseconds d) {
        asio::steady_timer t(co_await asio::this_coro::executor, d);
        co_await t.async_wait(tuple_awaitable);
    }
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(qemu_guest_test, fixture)

BOOST_AUTO_TEST_CASE(boot_reaches_ready_with_its_ip_and_stops_clean) {
    run_coro(
        ctx,
        [&]() -> asio::awaitable<void> {
            auto s = spec("guest1", "vmrs.ip=10.0.2.15/24 vmrs.gw=10.0.2.2");
            s.networks.push_back({.kind = vmrt::nic_kind::user, .isolated = true});
            auto [ec, info] = co_await manager->async_start(s, tuple_awaitable);
            BOOST_TEST_REQUIRE(!ec, ec.message()
                                        << ": " << info.diag.message << " " << info.diag.vmm_stderr_tail);
            auto [rec, infos] =
                co_await manager->async_wait_ready(vmrt::test::strings("guest1"), 60s, tuple_awaitable);
            BOOST_TEST_REQUIRE(!rec, rec.message() << "\n" << console("guest1"));
            auto* ready = std::get_if<vmrt::state::ready>(&infos.at(0).state);
            BOOST_TEST_REQUIRE(ready);
            BOOST_TEST(ready->ip.value_or(std::string{}) == "10.0.2.15");

            auto [sec, outcome] = co_await manager->async_stop("guest1", 30s, tuple_awaitable);
            BOOST_TEST(!sec);
            BOOST_TEST((outcome == vmrt::stop_outcome::clean));
            auto text = console("guest1");
            BOOST_TEST(text.find("VMRS_POWERDOWN") != std::string::npos, text);
            BOOST_TEST(text.find("reboot: Power down") != std::string::npos, text);
            BOOST_TEST(gone(info.vmm->pid));
        },
        120s);
}

BOOST_AUTO_TEST_CASE(kill_is_forced_and_an_outside_kill_is_failed) {
    run_coro(
        ctx,
        [&]() -> asio::awaitable<void> {
            auto [e1, a] = co_await manager->async_start(spec("a"), tuple_awaitable);
            auto [e2, b] = co_await manager->async_start(spec("b"), tuple_awaitable);
            BOOST_TEST_REQUIRE(!e1);
            BOOST_TEST_REQUIRE(!e2);
            // Two guests started at once both reach Ready.
            auto [rec, infos] =
                co_await manager->async_wait_ready(vmrt::test::strings("a", "b"), 90s, tuple_awaitable);
            BOOST_TEST_REQUIRE(!rec, rec.message());

            auto [kec, outcome] = co_await manager->async_kill("a", tuple_awaitable);
            BOOST_TEST(!kec);
            BOOST_TEST((outcome == vmrt::stop_outcome::forced));

            // Someone else kills QEMU: the VM is Failed (not Stopped), with the signal.
            auto sub = manager->subscribe();
            auto killed_at = std::chrono::steady_clock::now();
            ::kill(b.vmm->pid, SIGKILL);
            for (;;) {
                auto [ec, ev] = co_await sub.async_next(tuple_awaitable);
                BOOST_TEST_REQUIRE(!ec);
                if (ev.vm != "b" || ev.kind != vmrt::event_kind::state_changed) continue;
                auto* failed = std::get_if<vmrt::state::failed>(&ev.state);
                BOOST_TEST_REQUIRE(failed, vmrt::to_string(ev.state));
                BOOST_TEST(failed->status->signal == SIGKILL);
                auto took = std::chrono::steady_clock::now() - killed_at;
                BOOST_TEST_MESSAGE("outside kill -> Failed event: "
                                   << std::chrono::duration_cast<std::chrono::microseconds>(took).count()
                                   << " us");
                break;
            }
        },
        180s);
}

BOOST_AUTO_TEST_CASE(pause_freezes_the_guest_and_resume_continues_it) {
    run_coro(
        ctx,
        [&]() -> asio::awaitable<void> {
            co_await manager->async_start(spec("ticker", "vmrs.counter=1"), tuple_awaitable);
            auto [rec, infos] =
                co_await manager->async_wait_ready(vmrt::test::strings("ticker"), 60s, tuple_awaitable);
            BOOST_TEST_REQUIRE(!rec, rec.message());
            co_await sleep(2500ms);
            auto [pec, st] = co_await manager->async_pause("ticker", tuple_awaitable);
            BOOST_TEST_REQUIRE(!pec, pec.message());
            co_await sleep(300ms);  // a line already on its way out of the UART may still land
            auto frozen = console("ticker");
            co_await sleep(2500ms);
            BOOST_TEST(console("ticker") == frozen, "the console moved while paused");
            auto [uec, ust] = co_await manager->async_resume("ticker", tuple_awaitable);
            BOOST_TEST_REQUIRE(!uec);
            BOOST_TEST(std::holds_alternative<vmrt::state::ready>(ust));
            co_await sleep(2500ms);
            auto later = console("ticker");
            BOOST_TEST(later.size() > frozen.size(), "the counter did not continue after resume");
            BOOST_TEST(later.find("VMRS_COUNTER") != std::string::npos);
            co_await manager->async_kill("ticker", tuple_awaitable);
        },
        120s);
}

BOOST_AUTO_TEST_CASE(a_qemu_that_exits_at_once_is_a_clear_start_error) {
    run_coro(
        ctx,
        [&]() -> asio::awaitable<void> {
            vmrt::hv::qemu_options bad;
            bad.accelerator = "no-such-accelerator";  // QEMU refuses it and exits at once
            manager->set_driver(vmrt::backend_kind::qemu, vmrt::hv::make_qemu_driver(bad));
            auto [ec, info] = co_await manager->async_start(spec("broken"), tuple_awaitable);
            BOOST_TEST((ec == vmrt::errc::vmm_start_failed), ec.message());
            BOOST_TEST(info.diag.message.find("QEMU exited during start-up") != std::string::npos,
                       info.diag.message);
            BOOST_TEST(info.diag.vmm_stderr_tail.find("no-such-accelerator") != std::string::npos,
                       info.diag.vmm_stderr_tail);
            BOOST_TEST(std::holds_alternative<vmrt::state::failed>(*manager->state("broken")));
        },
        60s);
}

// The highest VMRS_COUNTER value on a console, or -1.
long last_counter(const std::string& text) {
    long last = -1;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
        if (line.rfind("VMRS_COUNTER ", 0) == 0) last = std::max(last, std::stol(line.substr(13)));
    return last;
}

BOOST_AUTO_TEST_CASE(snapshot_stop_restore_continues_the_guest) {
    run_coro(
        ctx,
        [&]() -> asio::awaitable<void> {
            const auto snapshot_dir = dir / "snap";
            co_await manager->async_start(spec("saved", "vmrs.counter=1 vmrs.ip=10.0.0.9/24"),
                                          tuple_awaitable);
            auto [rec, infos] =
                co_await manager->async_wait_ready(vmrt::test::strings("saved"), 60s, tuple_awaitable);
            BOOST_TEST_REQUIRE(!rec, rec.message());
            co_await sleep(3000ms);
            auto [sec, st] = co_await manager->async_snapshot("saved", snapshot_dir, tuple_awaitable);
            BOOST_TEST_REQUIRE(!sec, sec.message());
            BOOST_TEST(std::holds_alternative<vmrt::state::paused>(st));
            BOOST_TEST(std::filesystem::file_size(snapshot_dir / "vmstate.bin") > 1024u * 1024u);
            const long before = last_counter(console("saved"));
            BOOST_TEST_REQUIRE(before >= 1, console("saved"));
            co_await manager->async_kill("saved", tuple_awaitable);
            BOOST_TEST(!manager->remove("saved"));

            // A fresh QEMU loads the saved state: the guest does not boot again, it counts on.
            auto [ec, info] = co_await manager->async_restore(snapshot_dir, tuple_awaitable);
            BOOST_TEST_REQUIRE(!ec, ec.message()
                                        << ": " << info.diag.message << " " << info.diag.vmm_stderr_tail);
            const auto restored = *manager->state("saved");
            auto* ready = std::get_if<vmrt::state::ready>(&restored);
            BOOST_TEST_REQUIRE(ready, "restored VM should be ready: " << vmrt::to_string(restored));
            BOOST_TEST(ready->ip.value_or(std::string{}) == "10.0.0.9");
            co_await sleep(3000ms);
            auto text = console("saved");
            BOOST_TEST(text.find("Linux version") == std::string::npos, "the guest booted again:\n" << text);
            BOOST_TEST(last_counter(text) > before, "counter before " << before << ", after:\n" << text);
            auto [kec, outcome] = co_await manager->async_stop("saved", 30s, tuple_awaitable);
            BOOST_TEST((outcome == vmrt::stop_outcome::clean));
        },
        180s);
}

BOOST_AUTO_TEST_SUITE_END()
