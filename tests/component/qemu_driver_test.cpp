// The QEMU driver against a QMP peer that misbehaves (vmrt-fake-qemu, given to the driver as its
// QEMU binary): a greeting that is not JSON, a greeting of the wrong shape, a reply to a command
// that was never sent, and a VMM that dies in the middle of a command. Each must end in a clear
// error naming QMP, with the process reaped and nothing left behind; no real QEMU is involved.
#include "hv/qemu_driver.hpp"
#include "support/test_support.hpp"

#include <vmrt/vm_manager.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/test/unit_test.hpp>

#include <cerrno>
#include <csignal>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using vmrt::test::run_coro;

namespace {

constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);

bool contains(const std::string& text, const std::string& what) {
    return text.find(what) != std::string::npos;
}

struct fixture {
    vmrt::test::temp_dir dir;
    asio::io_context ctx;
    std::unique_ptr<vmrt::vm_manager> manager;

    fixture() {
        vmrt::test::write_file(dir / "vmlinuz", "not a kernel: the fake QEMU never reads it");
        vmrt::manager_options o;
        o.state_dir = dir / "state";
        o.term_grace = 1s;
        o.kill_grace = 2s;
        manager = std::make_unique<vmrt::vm_manager>(ctx.get_executor(), o);
        vmrt::hv::qemu_options q;
        q.qemu_binary = vmrt::test::helper_program("VMRT_FAKE_QEMU");
        q.accelerator = "tcg";
        q.startup_timeout = 10s;
        manager->set_driver(vmrt::backend_kind::qemu, vmrt::hv::make_qemu_driver(q));
    }

    // The VM's name tells vmrt-fake-qemu how to misbehave.
    vmrt::vm_spec spec(const std::string& mode) {
        vmrt::vm_spec s;
        s.name = mode;
        s.backend = vmrt::backend_kind::qemu;
        s.kernel = dir / "vmlinuz";
        return s;
    }

    // A start that must fail during QMP's start-up, with `expected` in its message.
    void expect_start_failure(const std::string& mode, const std::string& expected) {
        run_coro(ctx, [&]() -> asio::awaitable<void> {
            auto [ec, info] = co_await manager->async_start(spec(mode), tuple_awaitable);
            BOOST_TEST((ec == vmrt::errc::vmm_start_failed), mode << ": " << ec.message());
            BOOST_TEST(contains(info.diag.message, expected), mode << ": " << info.diag.message);
            BOOST_TEST_MESSAGE(mode << ": " << info.diag.message);
            auto state = manager->state(mode);
            BOOST_TEST_REQUIRE(state.has_value());
            BOOST_TEST(std::holds_alternative<vmrt::state::failed>(*state));
        });
        // The fake QEMU was killed and reaped by the failed launch: no process of this run is left
        // (cleanup.leftovers checks the whole run as well).
        for (auto& entry : std::filesystem::directory_iterator("/proc")) {
            auto cmdline = vmrt::test::read_file(entry.path() / "cmdline");
            std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
            BOOST_TEST(!(contains(cmdline, "vmrt-fake-qemu") && contains(cmdline, "guest=" + mode + ",")),
                       "still running: " << cmdline);
        }
    }
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(qemu_driver_test, fixture)

BOOST_AUTO_TEST_CASE(a_greeting_that_is_not_json_fails_the_start) { expect_start_failure("garbage", "QMP"); }

BOOST_AUTO_TEST_CASE(a_greeting_of_the_wrong_shape_fails_the_start) {
    expect_start_failure("bad-greeting", "QMP");
}

BOOST_AUTO_TEST_CASE(a_reply_to_no_command_fails_the_start) { expect_start_failure("bad-reply", "QMP"); }

BOOST_AUTO_TEST_CASE(a_vmm_that_dies_mid_call_fails_the_call_and_the_vm) {
    run_coro(ctx, [&]() -> asio::awaitable<void> {
        auto [ec, info] = co_await manager->async_start(spec("dies-on-stop"), tuple_awaitable);
        BOOST_TEST_REQUIRE(!ec, ec.message() << ": " << info.diag.message);
        BOOST_TEST_REQUIRE(info.vmm.has_value());
        const pid_t pid = info.vmm->pid;

        auto [pec, state] = co_await manager->async_pause("dies-on-stop", tuple_awaitable);
        BOOST_TEST((pec == vmrt::errc::vmm_crashed), "pause: " << pec.message());
        BOOST_TEST_MESSAGE("pause: " << pec.message());

        // The exit itself is what fails the VM, with the VMM's status.
        auto sub = manager->subscribe();
        for (auto s = manager->state("dies-on-stop"); s && !vmrt::is_terminal(*s);
             s = manager->state("dies-on-stop"))
            (void)co_await sub.async_next(tuple_awaitable);
        auto final_state = *manager->state("dies-on-stop");
        BOOST_TEST_REQUIRE(std::holds_alternative<vmrt::state::failed>(final_state));
        const auto& failed = std::get<vmrt::state::failed>(final_state);
        BOOST_TEST_REQUIRE(failed.status.has_value());
        BOOST_TEST(failed.status->to_string() == "exit code 3", failed.status->to_string());
        BOOST_TEST((::kill(pid, 0) != 0 && errno == ESRCH), "the dead VMM was not reaped");
    });
}

BOOST_AUTO_TEST_CASE(what_this_host_lacks_is_refused_with_the_reason) {
    // vsock needs /dev/vhost-vsock: without it (as on these machines) the start is refused by
    // name, before any process runs; with it, the spec passes the driver's check.
    auto s = spec("sockets");
    s.vsock = vmrt::vsock_spec{.cid = 7};
    run_coro(ctx, [&]() -> asio::awaitable<void> {
        auto [ec, info] = co_await manager->async_start(s, tuple_awaitable);
        if (std::filesystem::exists("/dev/vhost-vsock")) {
            BOOST_TEST(info.diag.field != "vsock", info.diag.message);
        } else {
            BOOST_TEST((ec == vmrt::errc::unsupported), ec.message());
            BOOST_TEST(info.diag.field == "vsock");
            BOOST_TEST(contains(info.diag.message, "/dev/vhost-vsock"), info.diag.message);
            BOOST_TEST(contains(info.diag.message, "control_channel"), info.diag.message);
            BOOST_TEST(!manager->state("sockets").has_value(), "a refused VM must not be registered");
        }
    });
    auto caps = manager->capabilities(vmrt::backend_kind::qemu);
    BOOST_TEST_REQUIRE(caps.has_value());
    BOOST_TEST(!caps->supports(vmrt::operation::vsock_connect));
    BOOST_TEST(contains(caps->get(vmrt::operation::vsock_connect).why_not, "vhost-vsock"));
    BOOST_TEST(caps->supports(vmrt::operation::resize_cpus));
}

BOOST_AUTO_TEST_SUITE_END()
