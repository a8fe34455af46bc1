// A vm_spec as Cloud Hypervisor sees it (lib/hv/ch_config.hpp): the typed VmConfig, CH's command
// line with every value escaped for its option parser, and the refusals of what CH cannot do.
#include "hv/ch_config.hpp"

#include <boost/json.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>

namespace ch = vmrt::hv::ch;

namespace {

vmrt::vm_spec base() {
    vmrt::vm_spec s;
    s.name = "web";
    s.kernel = "/boot/vmlinux";
    s.root_disk = vmrt::disk_spec{.path = "/images/root.img"};
    s.serial_log = "/run/web.serial";
    return s;
}

std::string joined(const std::vector<std::string>& args) {
    std::string out;
    for (const auto& a : args) out += (out.empty() ? "" : " ") + a;
    return out;
}

bool contains(const std::string& text, const std::string& what) {
    return text.find(what) != std::string::npos;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(ch_config_test)

BOOST_AUTO_TEST_CASE(a_full_spec_becomes_chs_flags) {
    auto s = base();
    s.cpus = 2;
    s.max_cpus = 8;
    s.memory_mib = 1024;
    s.max_memory_mib = 2048;
    s.data_disks.push_back({.path = "/images/data.img", .read_only = true, .cache = vmrt::disk_cache::none});
    s.seed_iso = "/images/seed.iso";
    s.networks.push_back({.kind = vmrt::nic_kind::tap, .tap_name = "tap0"});
    s.shared_dirs.push_back({.host_path = "/srv/share", .tag = "share"});
    s.vsock = vmrt::vsock_spec{.cid = 5, .socket = "/run/web.vsock"};
    s.balloon = vmrt::balloon_spec{.initial_mib = 128, .deflate_on_oom = true};
    ch::launch_resources r{.tap_fds = {7}, .fs_sockets = {"/run/web/fs0.sock"}};
    auto args = ch::command_line(ch::make_vm_config(s, r), 3, 4);
    BOOST_TEST_REQUIRE(args.has_value());
    const auto line = joined(*args);
    BOOST_TEST_MESSAGE(line);
    BOOST_TEST(contains(line, "--api-socket fd=3 --event-monitor fd=4"));
    BOOST_TEST(contains(line, "--kernel /boot/vmlinux"));
    BOOST_TEST(contains(line, "--cmdline console=ttyS0 root=/dev/vda rw"));
    BOOST_TEST(contains(line, "--cpus boot=2,max=8"));
    BOOST_TEST(contains(line, "--memory size=1G,shared=on,hotplug_size=1G"));  // shared: virtio-fs needs it
    BOOST_TEST(contains(line, "--disk path=/images/root.img,id=disk0"));
    BOOST_TEST(contains(line, "--disk path=/images/data.img,readonly=on,direct=on,id=disk1"));
    BOOST_TEST(contains(line, "--disk path=/images/seed.iso,readonly=on,id=seed"));
    BOOST_TEST(contains(line, "--net fd=[7],mac=" + vmrt::default_mac("web", 0).to_string() +
                                  ",num_queues=2,id=net0"));
    BOOST_TEST(contains(line, "--fs tag=share,socket=/run/web/fs0.sock,num_queues=1,queue_size=1024,id=fs0"));
    BOOST_TEST(contains(line, "--vsock cid=5,socket=/run/web.vsock,id=vsock"));
    BOOST_TEST(contains(line, "--balloon size=128M,deflate_on_oom=on,free_page_reporting=off"));
    BOOST_TEST(contains(line, "--serial file=/run/web.serial"));
    BOOST_TEST(contains(line, "--console off"));
}

BOOST_AUTO_TEST_CASE(values_with_commas_or_equals_are_quoted_and_unrepresentable_ones_refused) {
    auto s = base();
    s.root_disk->path = "/images/a,b=c.img";
    auto args = ch::command_line(ch::make_vm_config(s, {}), -1, -1);
    BOOST_TEST_REQUIRE(args.has_value());
    BOOST_TEST(contains(joined(*args), "--disk path=\"/images/a,b=c.img\",id=disk0"));

    s.root_disk->path = "/images/a\"b.img";
    auto refused = ch::command_line(ch::make_vm_config(s, {}), -1, -1);
    BOOST_TEST_REQUIRE(!refused.has_value());
    BOOST_TEST(refused.error().field == "disks[0].path");
    BOOST_TEST_MESSAGE(refused.error().message);
}

BOOST_AUTO_TEST_CASE(the_api_config_matches_the_command_line) {
    auto s = base();
    s.shared_dirs.push_back({.host_path = "/srv", .tag = "srv"});
    auto json = ch::to_json(ch::make_vm_config(s, ch::launch_resources{.fs_sockets = {"/run/fs.sock"}}));
    const auto& o = json.as_object();
    BOOST_TEST(o.at("memory").at("shared").as_bool());
    BOOST_TEST(o.at("payload").at("kernel").as_string() == "/boot/vmlinux");
    BOOST_TEST(o.at("disks").as_array().at(0).at("id").as_string() == "disk0");
    BOOST_TEST(o.at("serial").at("mode").as_string() == "File");
    BOOST_TEST(o.at("console").at("mode").as_string() == "Off");
    BOOST_TEST(o.at("fs").as_array().at(0).at("socket").as_string() == "/run/fs.sock");
}

BOOST_AUTO_TEST_CASE(every_nic_gets_its_own_mac) {
    auto s = base();
    for (int i = 0; i < 4; ++i)
        s.networks.push_back({.kind = vmrt::nic_kind::tap, .tap_name = "tap" + std::to_string(i)});
    auto c = ch::make_vm_config(s, {});
    std::vector<std::string> macs;
    for (const auto& n : c.net) macs.push_back(n.mac.value());
    std::sort(macs.begin(), macs.end());
    BOOST_TEST((std::adjacent_find(macs.begin(), macs.end()) == macs.end()));
}

BOOST_AUTO_TEST_CASE(what_ch_cannot_do_is_refused_by_field) {
    auto refusal = [](vmrt::vm_spec s) {
        return ch::check_spec_for_ch(s, false).value_or(vmrt::spec_error{}).field;
    };
    auto s = base();
    s.root_disk->interface = vmrt::disk_interface::nvme;
    BOOST_TEST(refusal(s) == "root_disk.interface");
    s = base();
    s.data_disks.push_back({.path = "/x", .cache = vmrt::disk_cache::unsafe});
    BOOST_TEST(refusal(s) == "data_disks[0].cache");
    s = base();
    s.networks.push_back({.kind = vmrt::nic_kind::fd_dgram, .fd = 3});
    BOOST_TEST(refusal(s) == "networks[0]");
    s = base();
    s.shared_dirs.push_back({.host_path = "/srv", .tag = "srv", .read_only = true});
    BOOST_TEST(refusal(s) == "shared_dirs[0].read_only");
    BOOST_TEST(!ch::check_spec_for_ch(s, true).has_value());  // a virtiofsd that can
    s = base();
    s.shared_dirs.push_back({.host_path = "/srv", .tag = "srv"});
    s.shared_dirs.push_back({.host_path = "/opt", .tag = "srv", .share_name = "opt"});
    BOOST_TEST(refusal(s) == "shared_dirs[1].share_name");
    s = base();
    s.boot = vmrt::boot_mode::uefi;
    BOOST_TEST(refusal(s) == "firmware");
    s = base();
    s.max_memory_mib = s.memory_mib + 100;
    BOOST_TEST(refusal(s) == "max_memory_mib");
    s.max_memory_mib = s.memory_mib + 256;
    BOOST_TEST(!ch::check_spec_for_ch(s, false).has_value());
    BOOST_TEST(!ch::check_spec_for_ch(base(), false).has_value());
}

BOOST_AUTO_TEST_CASE(sizes_use_chs_binary_suffixes_only_when_exact) {
    BOOST_TEST(ch::size_option(512ull << 20) == "512M");
    BOOST_TEST(ch::size_option(2ull << 30) == "2G");
    BOOST_TEST(ch::size_option(4096) == "4K");
    BOOST_TEST(ch::size_option(1000) == "1000");
    BOOST_TEST(ch::size_option(0) == "0");
}

BOOST_AUTO_TEST_SUITE_END()
