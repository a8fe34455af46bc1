// Event and state formatting: what `vmrt run` prints and what log pipelines parse.
#include <vmrt/events.hpp>
#include <vmrt/vm_state.hpp>

#include <boost/json.hpp>
#include <boost/test/unit_test.hpp>

#include <csignal>

BOOST_AUTO_TEST_SUITE(events_test)

BOOST_AUTO_TEST_CASE(state_strings) {
    BOOST_TEST(vmrt::to_string(vmrt::vm_state{vmrt::state::ready{"10.0.0.2"}}) == "ready (10.0.0.2)");
    BOOST_TEST(vmrt::to_string(vmrt::vm_state{vmrt::state::ready{}}) == "ready (no address)");
    vmrt::state::stopped st{vmrt::stop_outcome::forced,
                            vmrt::exit_status{.signaled = true, .signal = SIGKILL}};
    BOOST_TEST(vmrt::to_string(vmrt::vm_state{st}) == "stopped (forced, killed by signal 9 (SIGKILL))");
    vmrt::state::failed f{"VMM exited unexpectedly", vmrt::exit_status{.code = 3}, {}};
    BOOST_TEST(vmrt::to_string(vmrt::vm_state{f}) == "failed: VMM exited unexpectedly (exit code 3)");
    BOOST_TEST(vmrt::state_name(vmrt::vm_state{vmrt::state::paused{}}) == "paused");
}

BOOST_AUTO_TEST_CASE(terminal_and_running_predicates) {
    BOOST_TEST(vmrt::is_running(vmrt::vm_state{vmrt::state::running{}}));
    BOOST_TEST(vmrt::is_running(vmrt::vm_state{vmrt::state::ready{}}));
    BOOST_TEST(!vmrt::is_running(vmrt::vm_state{vmrt::state::paused{}}));
    BOOST_TEST(vmrt::is_terminal(vmrt::vm_state{vmrt::state::failed{}}));
    BOOST_TEST(vmrt::is_terminal(vmrt::vm_state{vmrt::state::stopped{}}));
    BOOST_TEST(!vmrt::is_terminal(vmrt::vm_state{vmrt::state::stopping{}}));
}

BOOST_AUTO_TEST_CASE(event_json_is_one_parseable_object) {
    vmrt::vm_event e;
    e.sequence = 7;
    e.vm = "web-1";
    e.state = vmrt::state::failed{"crash \"quoted\"\nnewline",
                                  vmrt::exit_status{.signaled = true, .signal = 6},
                                  {"line one", "Kernel panic - not syncing"}};
    e.reason = "VMM crashed";
    auto text = vmrt::format_event_json(e);
    BOOST_TEST(text.find('\n') == std::string::npos);  // one line per event, even with hostile strings
    auto v = boost::json::parse(text).as_object();
    BOOST_TEST(boost::json::value_to<std::uint64_t>(v.at("seq")) == 7u);
    BOOST_TEST(v.at("vm").as_string() == "web-1");
    BOOST_TEST(v.at("state").as_string() == "failed");
    BOOST_TEST(v.at("failure").as_string() == "crash \"quoted\"\nnewline");
    BOOST_TEST(v.at("exit").as_object().at("signal").as_int64() == 6);
    BOOST_TEST(v.at("serial_tail").as_array().size() == 2u);
}

BOOST_AUTO_TEST_CASE(event_line_names_vm_state_and_reason) {
    vmrt::vm_event e;
    e.vm = "db";
    e.state = vmrt::state::ready{"fd00::2"};
    e.reason = "VMRS_READY seen on serial";
    auto line = vmrt::format_event_line(e);
    BOOST_TEST(line.find(" db ready (fd00::2): VMRS_READY seen on serial") != std::string::npos, line);
}

BOOST_AUTO_TEST_SUITE_END()
