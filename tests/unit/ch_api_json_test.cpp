// The sans-I/O half of the Cloud Hypervisor client (hv/ch_api.hpp): the exact JSON vmrt sends
// for VmConfig and the request bodies (field names from shared/reference/cloud-hypervisor-openapi.yaml),
// lenient reading of what CH sends back, error bodies of every CH generation (§2.6) and the
// status → errc table (§1.1).
#include "hv/ch_api.hpp"

#include <boost/json.hpp>
#include <boost/test/unit_test.hpp>

namespace ch = vmrt::hv::ch;
namespace json = boost::json;
using vmrt::errc;

BOOST_AUTO_TEST_SUITE(ch_api_json_test)

BOOST_AUTO_TEST_CASE(minimal_config_sends_only_what_is_set) {
    ch::vm_config c;
    c.payload.kernel = "/k";
    BOOST_TEST(
        json::serialize(ch::to_json(c)) ==
        R"({"cpus":{"boot_vcpus":1,"max_vcpus":1},"memory":{"size":536870912},"payload":{"kernel":"/k"}})");
}

BOOST_AUTO_TEST_CASE(full_config_uses_ch_field_names) {
    ch::vm_config c;
    c.cpus = {2, 4};
    c.memory.size = 1ull << 30;
    c.memory.hotplug_size = 1ull << 30;
    c.memory.shared = true;
    c.payload = {std::string("/k"), std::nullopt, std::string("/i"), std::string("console=ttyS0 a=\"b,c\"")};
    c.disks.push_back({.path = "/d.img", .readonly = true, .id = std::string("root")});
    c.net.push_back({std::string("tap0"), std::string("52:54:00:00:00:01"), std::nullopt});
    c.fs.push_back({"share", "/run/vfs.sock", 1, 1024, std::nullopt});
    c.pmem.push_back({"/p.img", 4096u, std::nullopt});
    c.vsock = ch::vsock_config{3, "/run/v.sock", std::nullopt};
    c.serial = ch::console_config{"File", std::string("/s.log"), std::nullopt};
    c.console = ch::console_config{"Off", std::nullopt, std::nullopt};
    c.balloon = ch::balloon_config{0, true, std::nullopt};
    const auto expected = json::parse(R"({
        "cpus": {"boot_vcpus": 2, "max_vcpus": 4},
        "memory": {"size": 1073741824, "hotplug_size": 1073741824, "shared": true},
        "payload": {"kernel": "/k", "initramfs": "/i", "cmdline": "console=ttyS0 a=\"b,c\""},
        "disks": [{"path": "/d.img", "readonly": true, "id": "root"}],
        "net": [{"tap": "tap0", "mac": "52:54:00:00:00:01"}],
        "fs": [{"tag": "share", "socket": "/run/vfs.sock", "num_queues": 1, "queue_size": 1024}],
        "pmem": [{"file": "/p.img", "size": 4096}],
        "vsock": {"cid": 3, "socket": "/run/v.sock"},
        "serial": {"mode": "File", "file": "/s.log"},
        "console": {"mode": "Off"},
        "balloon": {"size": 0, "deflate_on_oom": true}
    })");
    BOOST_TEST(ch::to_json(c) == expected);

    // Read back (as vm.info returns it, plus fields vmrt does not know): the same subset.
    auto sent = ch::to_json(c).as_object();
    sent["rng"] = json::object{{"src", "/dev/urandom"}};
    sent["cpus"].as_object()["topology"] = json::object{{"threads_per_core", 1}};
    sent["disks"].as_array()[0].as_object()["num_queues"] = 1;
    auto back = ch::vm_config_from_json(sent);
    BOOST_TEST(ch::to_json(back) == expected);
}

BOOST_AUTO_TEST_CASE(request_bodies) {
    ch::resize_request r;
    r.desired_ram = 2ull << 30;
    BOOST_TEST(json::serialize(ch::to_json(r)) == R"({"desired_ram":2147483648})");
    ch::restore_request restore;
    restore.source_url = "file:///snap";
    restore.resume = true;
    BOOST_TEST(json::serialize(ch::to_json(restore)) == R"({"source_url":"file:///snap","resume":true})");
}

BOOST_AUTO_TEST_CASE(wrong_types_from_ch_are_protocol_errors) {
    for (const char* text :
         {R"([])", R"({"cpus": 3})", R"({"memory": {"size": -1}})", R"({"disks": [1]})",
          R"({"payload": {"kernel": 7}})", R"({"serial": {"mode": "File", "file": false}})"}) {
        try {
            ch::vm_config_from_json(json::parse(text));
            BOOST_ERROR("accepted " << text);
        } catch (const vmrt::error& e) {
            BOOST_TEST((e.code() == errc::protocol_error), text);
        }
    }
    // Nulls are "unset".
    auto c = ch::vm_config_from_json(json::parse(R"({"vsock": null, "payload": {"kernel": null}})"));
    BOOST_TEST(!c.vsock.has_value());
    BOOST_TEST(!c.payload.kernel.has_value());
}

BOOST_AUTO_TEST_CASE(error_chains_of_every_generation) {
    using v = std::vector<std::string>;
    BOOST_TEST(
        ch::parse_error_chain(R"(["Error from API","The VM could not be paused","VM is not running"])") ==
            (v{"Error from API", "The VM could not be paused", "VM is not running"}),
        boost::test_tools::per_element());
    BOOST_TEST(ch::parse_error_chain("  VM is not running\n") == (v{"VM is not running"}),
               boost::test_tools::per_element());
    BOOST_TEST(ch::parse_error_chain("") == v{}, boost::test_tools::per_element());
    // micro_http's own error object with a raw newline (invalid JSON): printable text.
    BOOST_TEST(ch::parse_error_chain("{ \"error\": \"Bad\nAll previous\" }") ==
                   (v{"{ \"error\": \"Bad\\nAll previous\" }"}),
               boost::test_tools::per_element());
    // A JSON array that is not all strings is not a chain: kept as text.
    BOOST_TEST(ch::parse_error_chain(R"([1,"a"])") == (v{R"([1,"a"])"}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(status_table) {
    BOOST_TEST((ch::errc_for_status(400) == errc::invalid_spec));
    BOOST_TEST((ch::errc_for_status(404) == errc::not_found));
    BOOST_TEST((ch::errc_for_status(409) == errc::already_exists));
    BOOST_TEST((ch::errc_for_status(429) == errc::invalid_state));
    BOOST_TEST((ch::errc_for_status(500) == errc::command_failed));
    BOOST_TEST((ch::errc_for_status(503) == errc::command_failed));
    BOOST_TEST((ch::errc_for_status(405) == errc::http_status));
    BOOST_TEST((ch::errc_for_status(302) == errc::http_status));
    ch::api_error e("vm.pause", 500, {"Error from API", "The VM could not be paused", "VM is not running"});
    BOOST_TEST(e.diag().message ==
               "vm.pause: HTTP 500: Error from API: The VM could not be paused: VM is not running");
    BOOST_TEST(ch::api_error("vm.boot", 400, {}).diag().message == "vm.boot: HTTP 400 (no error text)");
    BOOST_TEST(std::string(ch::to_string(ch::parse_vm_state("Paused"))) == "Paused");
    BOOST_TEST((ch::parse_vm_state("Hibernating") == ch::vm_state::unknown));
}

BOOST_AUTO_TEST_SUITE_END()
