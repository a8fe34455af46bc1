// vCPU hotplug planning: which device_add / device_del commands take a VM to a vCPU count, from
// QEMU's own description of its slots (query-hotpluggable-cpus, as QEMU 7.2 answers it).
#include "hv/qemu_cpu_plan.hpp"

#include <boost/json/parse.hpp>
#include <boost/test/unit_test.hpp>

namespace {

namespace hv = vmrt::hv;

// -smp cpus=1,maxcpus=3 after one hot-add: QEMU lists the slots highest first.
const char* two_plugged_of_three = R"([
  {"props": {"core-id": 0, "thread-id": 0, "socket-id": 2}, "vcpus-count": 1, "type": "qemu64-x86_64-cpu"},
  {"props": {"core-id": 0, "thread-id": 0, "socket-id": 1}, "vcpus-count": 1,
   "qom-path": "/machine/peripheral/vmrt-cpu-1-0-0", "type": "qemu64-x86_64-cpu"},
  {"props": {"core-id": 0, "thread-id": 0, "socket-id": 0}, "vcpus-count": 1,
   "qom-path": "/machine/unattached/device[0]", "type": "qemu64-x86_64-cpu"}
])";

std::vector<hv::cpu_slot> slots(const char* json) {
    return hv::parse_hotpluggable_cpus(boost::json::parse(json));
}

bool has_code(const vmrt::error& e, vmrt::errc code) { return e.code() == vmrt::make_error_code(code); }

}  // namespace

BOOST_AUTO_TEST_SUITE(qemu_cpu_plan_test)

BOOST_AUTO_TEST_CASE(slots_are_parsed_in_topology_order) {
    auto s = slots(two_plugged_of_three);
    BOOST_TEST_REQUIRE(s.size() == 3u);
    BOOST_TEST(s[0].props.at("socket-id").as_int64() == 0);
    BOOST_TEST(s[2].props.at("socket-id").as_int64() == 2);
    BOOST_TEST(hv::plugged_cpus(s) == 2u);
    BOOST_TEST(hv::cpu_device_id(s[2]) == "vmrt-cpu-2-0-0");
}

BOOST_AUTO_TEST_CASE(growing_adds_the_lowest_free_slots) {
    auto plan = hv::plan_vcpu_resize(slots(two_plugged_of_three), 3);
    BOOST_TEST(plan.remove.empty());
    BOOST_TEST_REQUIRE(plan.add.size() == 1u);
    const auto& args = plan.add[0];
    BOOST_TEST(args.at("driver").as_string() == "qemu64-x86_64-cpu");
    BOOST_TEST(args.at("id").as_string() == "vmrt-cpu-2-0-0");
    BOOST_TEST(args.at("socket-id").as_int64() == 2);
    BOOST_TEST(args.at("core-id").as_int64() == 0);
    BOOST_TEST(args.at("thread-id").as_int64() == 0);
}

BOOST_AUTO_TEST_CASE(the_same_count_needs_nothing) {
    auto plan = hv::plan_vcpu_resize(slots(two_plugged_of_three), 2);
    BOOST_TEST(plan.add.empty());
    BOOST_TEST(plan.remove.empty());
}

BOOST_AUTO_TEST_CASE(shrinking_removes_hot_added_vcpus_only) {
    auto plan = hv::plan_vcpu_resize(slots(two_plugged_of_three), 1);
    BOOST_TEST(plan.add.empty());
    BOOST_TEST_REQUIRE(plan.remove.size() == 1u);
    BOOST_TEST(plan.remove[0] == "vmrt-cpu-1-0-0");
}

BOOST_AUTO_TEST_CASE(impossible_targets_are_refused_with_the_reason) {
    auto s = slots(two_plugged_of_three);
    try {
        (void)hv::plan_vcpu_resize(s, 4);
        BOOST_FAIL("4 of 3 slots accepted");
    } catch (const vmrt::error& e) {
        BOOST_TEST(has_code(e, vmrt::errc::invalid_spec));
        BOOST_TEST(e.diag().message.find("max_cpus (3)") != std::string::npos, e.diag().message);
    }
    BOOST_CHECK_THROW((void)hv::plan_vcpu_resize(s, 0), vmrt::error);

    // Two boot CPUs: QEMU cannot take either away.
    auto boot_two = slots(R"([
      {"props": {"socket-id": 1}, "qom-path": "/machine/unattached/device[1]", "type": "t"},
      {"props": {"socket-id": 0}, "qom-path": "/machine/unattached/device[0]", "type": "t"}])");
    try {
        (void)hv::plan_vcpu_resize(boot_two, 1);
        BOOST_FAIL("a boot vCPU would be unplugged");
    } catch (const vmrt::error& e) {
        BOOST_TEST(has_code(e, vmrt::errc::unsupported));
        BOOST_TEST(e.diag().message.find("shrink to 2 vCPUs") != std::string::npos, e.diag().message);
    }
}

BOOST_AUTO_TEST_CASE(malformed_replies_are_protocol_errors) {
    for (const char* bad :
         {R"({"return": []})", R"([1])", R"([{"props": {}}])", R"([{"type": "t"}])",
          R"([{"type": "t", "props": {"socket-id": "0"}}])", R"([{"type": "t", "props": {"socket-id": -1}}])",
          R"([{"type": "t", "props": {}, "qom-path": 7}])"}) {
        try {
            (void)slots(bad);
            BOOST_FAIL(std::string("accepted: ") + bad);
        } catch (const vmrt::error& e) {
            BOOST_TEST(has_code(e, vmrt::errc::protocol_error), bad);
            BOOST_TEST(e.diag().message.find("query-hotpluggable-cpus") != std::string::npos);
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()
