// Real guests on vmrt's L2 switch: the manager gives each NIC that names a switch network a port
// on it. Two guests on one network, one NIC on a stream port (QEMU -netdev stream) and one on a
// datagram port (-netdev dgram), ping each other through the switch, which re-frames between the
// two; a third guest on another network, with an address in the same subnet, reaches neither.
#include "guest_fixture.hpp"
#include "support/test_support.hpp"

#include <vmrt/io/process.hpp>
#include <vmrt/vm_manager.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/test/unit_test.hpp>

#include <csignal>
#include <cstdlib>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using vmrt::test::contains;
using vmrt::test::lines_starting;
using vmrt::test::run_coro;

namespace {

constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);

struct fixture : vmrt::test::guest_fixture {
    vmrt::vm_spec on_switch(const std::string& name, vmrt::nic_kind kind, const std::string& network,
                            const std::string& cmdline) {
        auto s = spec(name, cmdline);
        vmrt::nic_spec nic;
        nic.kind = kind;
        nic.switch_network = network;
        s.networks.push_back(nic);
        return s;
    }

    // Waits until the console of `vm` has a VMRS_PING line (the guest's ping gives up after ~30 s).
    asio::awaitable<std::string> ping_result(std::string vm) {
        asio::steady_timer tick(ctx);
        for (int i = 0; i < 300 && !contains(console(vm), "VMRS_PING"); ++i) {
            tick.expires_after(200ms);
            co_await tick.async_wait(tuple_awaitable);
        }
        co_return lines_starting(console(vm), "VMRS_PING");
    }
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(qemu_switch_test, fixture)

BOOST_AUTO_TEST_CASE(guests_on_one_network_talk_and_another_network_is_isolated) {
    std::vector<vmrt::vm_spec> specs;
    specs.push_back(on_switch("stream-a", vmrt::nic_kind::fd_stream, "lan", "vmrs.ip=10.0.7.1/24"));
    specs.push_back(
        on_switch("dgram-b", vmrt::nic_kind::fd_dgram, "lan", "vmrs.ip=10.0.7.2/24 vmrs.ping=10.0.7.1"));
    specs.push_back(
        on_switch("outsider", vmrt::nic_kind::fd_dgram, "other", "vmrs.ip=10.0.7.3/24 vmrs.ping=10.0.7.1"));
    run_coro(
        ctx,
        [&]() -> asio::awaitable<void> {
            co_await boot(specs);
            auto inside = co_await ping_result("dgram-b");
            BOOST_TEST_MESSAGE("dgram-b -> stream-a through the switch:" << inside);
            BOOST_TEST(contains(inside, "VMRS_PING 10.0.7.1: 3 packets transmitted, 3 packets received"),
                       inside);

            auto outside = co_await ping_result("outsider");
            BOOST_TEST_MESSAGE("outsider (network \"other\") -> stream-a:" << outside);
            BOOST_TEST(contains(outside, "VMRS_PING 10.0.7.1:"), console("outsider"));
            BOOST_TEST(contains(outside, " 0 packets received"), outside);

            // The switch learned both guests on "lan" and nothing of them on "other".
            auto lan = manager->switch_network("lan");
            auto other = manager->switch_network("other");
            BOOST_TEST_REQUIRE(lan.has_value());
            BOOST_TEST_REQUIRE(other.has_value());
            BOOST_TEST(manager->network_switch().mac_table_size(*lan) == 2u);
            BOOST_TEST(manager->network_switch().mac_table_size(*other) <= 1u);

            for (auto vm : {"stream-a", "dgram-b", "outsider"})
                co_await manager->async_kill(vm, tuple_awaitable);
            // The ports went with their VMs, and their addresses with them (removal is posted to
            // the manager's executor: let it run).
            asio::steady_timer tick(ctx);
            for (int i = 0; i < 50 && manager->network_switch().mac_table_size(*lan) != 0; ++i) {
                tick.expires_after(20ms);
                co_await tick.async_wait(tuple_awaitable);
            }
            BOOST_TEST(manager->network_switch().mac_table_size(*lan) == 0u);
        },
        180s);
}

BOOST_AUTO_TEST_CASE(one_vmrt_run_joins_two_specs_on_a_switch_network) {
    // The examples as a user runs them: `vmrt run examples/lan-a.json examples/lan-b.json`.
    const auto examples = std::filesystem::path(std::getenv("VMRT_SOURCE_DIR")) / "examples";
    const auto state = dir / "cli-state";
    run_coro(
        ctx,
        [&]() -> asio::awaitable<void> {
            vmrt::io::process_options o;
            o.program = vmrt::test::helper_program("VMRT_CLI");
            o.args =
                vmrt::test::strings("run", "--state-dir", state.string(), (examples / "lan-a.json").string(),
                                    (examples / "lan-b.json").string());
            o.log_file = dir / "cli.log";
            auto cli = vmrt::io::process::spawn(ctx.get_executor(), o);
            const auto serial = state / "default/lan-b/serial.log";
            asio::steady_timer tick(ctx);
            std::string pinged;
            for (int i = 0; i < 300 && pinged.empty(); ++i) {
                tick.expires_after(200ms);
                co_await tick.async_wait(tuple_awaitable);
                if (std::filesystem::exists(serial))
                    pinged = lines_starting(vmrt::test::read_file(serial), "VMRS_PING");
            }
            BOOST_TEST_MESSAGE("lan-b:" << pinged);
            BOOST_TEST(contains(pinged, "3 packets transmitted, 3 packets received"),
                       vmrt::test::read_file(*o.log_file));
            cli.signal(SIGINT);  // stops both gracefully
            auto [ec, status] = co_await cli.async_wait(tuple_awaitable);
            BOOST_TEST(status.success(), status.to_string() << "\n" << vmrt::test::read_file(*o.log_file));
            const auto log = vmrt::test::read_file(*o.log_file);
            BOOST_TEST(contains(log, "lan-a stopped (clean"), log);
            BOOST_TEST(contains(log, "lan-b stopped (clean"), log);
        },
        180s);
}

BOOST_AUTO_TEST_SUITE_END()
