// The `vmrt` command-line tool, run as a real program: exit codes, output, Ctrl-C handling.
#include "support/oci_layout.hpp"
#include "support/registry_env.hpp"
#include "support/test_support.hpp"

#include <vmrt/io/process.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/test/unit_test.hpp>

#include <csignal>

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

struct cli_result {
    vmrt::exit_status status;
    std::string output;  // stdout and stderr together
};

struct fixture {
    vmrt::test::temp_dir dir;

    std::vector<std::pair<std::string, std::string>> extra_env;

    fixture() { vmrt::test::write_file(dir / "vmlinuz", "fake kernel"); }

    void write_spec(const std::string& file, const std::string& name, const std::string& cmdline) {
        vmrt::test::write_file(dir / file, R"({"name": ")" + name +
                                               R"(", "backend": "fake", "kernel": "vmlinuz",
            "cmdline": ")" + cmdline + R"(", "serial_log": ")" +
                                               name + R"(.log"})");
    }

    // Runs vmrt with `args`; if `interrupt_after` is set, sends SIGINT that long after the start
    // (and again after `second_interrupt_after`, if set).
    cli_result run(std::vector<std::string> args,
                   std::optional<std::chrono::milliseconds> interrupt_after = {},
                   std::optional<std::chrono::milliseconds> second_interrupt_after = {}) {
        cli_result r;
        vmrt::test::run_coro(
            [&]() -> asio::awaitable<void> {
                auto ex = co_await asio::this_coro::executor;
                vmrt::io::process_options o;
                o.program = vmrt::test::helper_program("VMRT_CLI");
                o.args = std::move(args);
                o.log_file = dir / "cli.out";
                o.env_overrides = {{"VMRT_STATE_DIR", (dir / "state").string()}};
                o.env_overrides.insert(o.env_overrides.end(), extra_env.begin(), extra_env.end());
                auto p = vmrt::io::process::spawn(ex, o);
                asio::steady_timer t(ex);
                for (auto delay : {interrupt_after, second_interrupt_after}) {
                    if (!delay) continue;
                    t.expires_after(*delay);
                    co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
                    p.signal(SIGINT);
                }
                auto [ec, status] = co_await p.async_wait(asio::as_tuple(asio::use_awaitable));
                r.status = status;
            },
            30s);
        r.output = vmrt::test::read_file(dir / "cli.out");
        return r;
    }
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(cli_test, fixture)

BOOST_AUTO_TEST_CASE(help_and_version) {
    auto h = run({"--help"});
    BOOST_TEST(h.status.code == 0);
    BOOST_TEST(h.output.find("exit codes") != std::string::npos);
    auto v = run({"--version"});
    BOOST_TEST(v.status.code == 0);
    BOOST_TEST(v.output.rfind("vmrt ", 0) == 0u);
    BOOST_TEST(run({}).status.code == 2);
    BOOST_TEST(run({"frobnicate"}).status.code == 2);
    BOOST_TEST(run({"run"}).status.code == 2);
}

BOOST_AUTO_TEST_CASE(validate_accepts_a_good_spec_and_names_bad_fields) {
    write_spec("good.json", "vm1", "vmrs.ip=10.0.0.2");
    auto ok = run({"validate", (dir / "good.json").string()});
    BOOST_TEST(ok.status.code == 0, ok.output);
    BOOST_TEST(ok.output.find("ok: vm1 (backend fake)") != std::string::npos, ok.output);

    vmrt::test::write_file(dir / "bad.json",
                           R"({"name": "-bad", "backend": "fake", "kernel": "nope", "cpus": 0})");
    auto bad = run({"validate", (dir / "bad.json").string()});
    BOOST_TEST(bad.status.code == 3);
    for (auto field : {"name", "kernel", "cpus"})
        BOOST_TEST(bad.output.find(std::string(field) + ":") != std::string::npos, bad.output);

    vmrt::test::write_file(dir / "refused.json",
                           R"({"name": "vm2", "backend": "fake", "kernel": "vmlinuz", "rosetta": true})");
    auto refused = run({"validate", "--json", (dir / "refused.json").string()});
    BOOST_TEST(refused.status.code == 3);
    BOOST_TEST(refused.output.find(R"("field":"rosetta")") != std::string::npos, refused.output);
}

BOOST_AUTO_TEST_CASE(backend_option_overrides_the_spec) {
    // The spec asks for a backend this machine lacks; --backend picks another one.
    vmrt::test::write_file(dir / "vz.json", R"({"name": "vm3", "backend": "apple-vz", "kernel": "vmlinuz"})");
    auto lacking = run({"validate", (dir / "vz.json").string()});
    BOOST_TEST(lacking.status.code == 3, lacking.output);
    BOOST_TEST(lacking.output.find("backend: backend \"apple-vz\" is not available") != std::string::npos,
               lacking.output);
    auto overridden = run({"validate", "--backend", "fake", (dir / "vz.json").string()});
    BOOST_TEST(overridden.status.code == 0, overridden.output);
    BOOST_TEST(overridden.output.find("ok: vm3 (backend fake)") != std::string::npos, overridden.output);

    auto unknown = run({"validate", "--backend", "vmware", (dir / "vz.json").string()});
    BOOST_TEST(unknown.status.code == 2, unknown.output);
    BOOST_TEST(unknown.output.find("unknown backend \"vmware\"") != std::string::npos, unknown.output);
    BOOST_TEST(run({"run", "--backend"}).status.code == 2);
}

BOOST_AUTO_TEST_CASE(run_prints_events_until_stopped) {
    write_spec("vm.json", "vm1", "vmrs.ip=10.0.0.5");
    auto r = run({"run", "--stop-when-ready", (dir / "vm.json").string()});
    BOOST_TEST(r.status.code == 0, r.output);
    for (auto word :
         {"vm1 starting", "vm1 running", "vm1 ready (10.0.0.5)", "vm1 stopping", "vm1 stopped (clean"})
        BOOST_TEST(r.output.find(word) != std::string::npos, word << " missing in:\n" << r.output);
}

BOOST_AUTO_TEST_CASE(auto_picks_cloud_hypervisor_when_its_binary_is_there) {
    // $VMRT_CLOUD_HYPERVISOR names the binary (here the project's protocol double): `auto` then
    // means Cloud Hypervisor, and the VM boots, gets Ready and stops through the power button.
    extra_env = {{"VMRT_CLOUD_HYPERVISOR", vmrt::test::helper_program("VMRT_FAKE_CLOUD_HYPERVISOR").string()},
                 {"VMRT_FAKE_CH_READY_IP", "10.0.0.7"}};
    vmrt::test::write_file(dir / "ch.json",
                           R"({"name": "vm1", "kernel": "vmlinuz", "serial_log": "vm1.log"})");
    auto v = run({"validate", (dir / "ch.json").string()});
    BOOST_TEST(v.output.find("ok: vm1 (backend cloud-hypervisor)") != std::string::npos, v.output);
    auto r = run({"run", "--stop-when-ready", (dir / "ch.json").string()});
    BOOST_TEST(r.status.code == 0, r.output);
    for (auto word : {"vm1 ready (10.0.0.7)", "cloud-hypervisor event vm/booted", "vm1 stopped (clean"})
        BOOST_TEST(r.output.find(word) != std::string::npos, word << " missing in:\n" << r.output);
}

BOOST_AUTO_TEST_CASE(image_pull_list_verify_and_gc) {
    vmrt::test::registry_server reg;
    vmrt::test::temp_dir layout;
    vmrt::test::oci_image_builder b;
    b.layer({vmrt::test::file("etc/hello", "hello\n")})
        .layer({vmrt::test::random_file("data/x", 1 << 20, 3)});
    const auto img = b.write(layout.path(), "v1");
    vmrt::test::push_image(layout.path(), "v1", reg, "cli/app:v1");
    const auto store = (dir / "store").string();
    const auto ref = reg.host_port() + "/cli/app:v1";
    auto pulled = run({"image", "pull", "--store", store, "--ca", reg.ca_file().string(), ref});
    BOOST_TEST(pulled.status.code == 0, pulled.output);
    BOOST_TEST(pulled.output.find("manifest: " + img.manifest.digest) != std::string::npos, pulled.output);
    // Not a terminal: one plain line per finished blob, no progress bar.
    BOOST_TEST(pulled.output.find("layer " + img.layers[1].digest.substr(7, 12) + ": ") != std::string::npos,
               pulled.output);
    BOOST_TEST(pulled.output.find("\033[K") == std::string::npos, pulled.output);
    auto listed = run({"image", "list", "--store", store});
    BOOST_TEST(listed.output.find(reg.host_port() + "/cli/app:v1 " + img.manifest.digest) !=
                   std::string::npos,
               listed.output);
    auto verified = run({"image", "verify", "--store", store});
    BOOST_TEST(verified.status.code == 0, verified.output);
    BOOST_TEST(verified.output.find("0 corrupt") != std::string::npos, verified.output);
    auto collected = run({"image", "gc", "--store", store});
    BOOST_TEST(collected.status.code == 0, collected.output);
    BOOST_TEST(collected.output.find("0 blobs") != std::string::npos, collected.output);  // all tagged
    auto bad = run({"image", "pull", "--store", store, "not a reference"});
    BOOST_TEST(bad.status.code == 1, bad.output);
    BOOST_TEST(run({"image", "frobnicate"}).status.code == 2);
}

BOOST_AUTO_TEST_CASE(run_json_events) {
    write_spec("vm.json", "vm1", "vmrs.ip=10.0.0.5");
    auto r = run({"run", "--json", "--stop-when-ready", (dir / "vm.json").string()});
    BOOST_TEST(r.status.code == 0, r.output);
    BOOST_TEST(r.output.find(R"("state":"ready","ip":"10.0.0.5")") != std::string::npos, r.output);
}

BOOST_AUTO_TEST_CASE(run_reports_a_crash_with_exit_code_1) {
    write_spec("vm.json", "vm1", "fake.crash_ms=100");
    auto r = run({"run", (dir / "vm.json").string()});
    BOOST_TEST(r.status.code == 1, r.output);
    BOOST_TEST(r.output.find("vm1 failed") != std::string::npos, r.output);
    BOOST_TEST(r.output.find("console: Kernel panic") != std::string::npos, r.output);
}

BOOST_AUTO_TEST_CASE(run_refuses_an_invalid_spec_with_exit_code_3) {
    vmrt::test::write_file(dir / "vm.json",
                           R"({"name": "vm1", "backend": "fake", "kernel": "vmlinuz", "colour": 1})");
    auto r = run({"run", (dir / "vm.json").string()});
    BOOST_TEST(r.status.code == 3, r.output);
    BOOST_TEST(r.output.find("colour") != std::string::npos, r.output);
}

BOOST_AUTO_TEST_CASE(ctrl_c_stops_gracefully) {
    write_spec("vm.json", "vm1", "vmrs.ip=10.0.0.5");
    auto r = run({"run", (dir / "vm.json").string()}, 1500ms);
    BOOST_TEST(r.status.code == 0, r.output);
    BOOST_TEST(r.output.find("vm1 stopped (clean") != std::string::npos, r.output);
}

BOOST_AUTO_TEST_CASE(second_ctrl_c_kills) {
    write_spec("vm.json", "vm1", "fake.ignore_powerdown fake.ignore_term");
    auto r = run({"run", "--stop-timeout", "60", (dir / "vm.json").string()}, 1000ms, 500ms);
    BOOST_TEST(r.status.code == 0, r.output);
    BOOST_TEST(r.output.find("killing vm1") != std::string::npos, r.output);
    BOOST_TEST(r.output.find("vm1 stopped (forced, killed by signal 9") != std::string::npos, r.output);
}

BOOST_AUTO_TEST_SUITE_END()
