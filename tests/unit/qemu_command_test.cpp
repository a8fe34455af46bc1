// The QEMU command line built from a spec: every field lands where it must, paths with commas are
// escaped, and fields QEMU cannot honour are refused by name.
#include "hv/qemu_command.hpp"
#include "support/test_support.hpp"

#include <boost/test/unit_test.hpp>

#include <algorithm>

namespace {

vmrt::vm_spec base_spec() {
    vmrt::vm_spec s;
    s.name = "vm1";
    s.kernel = "/boot/vmlinuz";
    s.initramfs = "/boot/initrd.gz";
    s.serial_log = "/run/vm1/serial.log";
    s.cpus = 2;
    s.memory_mib = 256;
    return s;
}

vmrt::hv::qemu_runtime runtime() {
    vmrt::hv::qemu_runtime rt;
    rt.qmp_fd = 5;
    return rt;
}

// The value following `flag` at its n-th occurrence.
std::vector<std::string> values_of(const std::vector<std::string>& args, const std::string& flag) {
    std::vector<std::string> out;
    for (std::size_t i = 0; i + 1 < args.size(); ++i)
        if (args[i] == flag) out.push_back(args[i + 1]);
    return out;
}

bool has(const std::vector<std::string>& v, const std::string& x) {
    return std::find(v.begin(), v.end(), x) != v.end();
}

}  // namespace

BOOST_AUTO_TEST_SUITE(qemu_command_test)

BOOST_AUTO_TEST_CASE(direct_boot_command_line) {
    auto args = vmrt::hv::build_qemu_args(base_spec(), runtime());
    BOOST_TEST_REQUIRE(args.has_value());
    auto& a = *args;
    BOOST_TEST(has(a, "-nodefaults"));
    BOOST_TEST(has(a, "-no-user-config"));
    BOOST_TEST(values_of(a, "-display") == std::vector<std::string>{"none"},
               boost::test_tools::per_element());
    BOOST_TEST(values_of(a, "-accel").at(0) == "tcg");
    BOOST_TEST(values_of(a, "-smp").at(0) == "2");
    BOOST_TEST(values_of(a, "-m").at(0) == "256M");
    BOOST_TEST(values_of(a, "-kernel").at(0) == "/boot/vmlinuz");
    BOOST_TEST(values_of(a, "-initrd").at(0) == "/boot/initrd.gz");
    BOOST_TEST(values_of(a, "-append").at(0) == "console=ttyS0 panic=-1 quiet no_timer_check");
    BOOST_TEST(has(values_of(a, "-chardev"), "socket,id=qmp,fd=5"));
    BOOST_TEST(has(values_of(a, "-chardev"), "file,id=serial0,append=on,path=/run/vm1/serial.log"));
    BOOST_TEST(has(values_of(a, "-device"), "virtio-rng-pci,rng=rng0"));
}

BOOST_AUTO_TEST_CASE(kvm_uses_the_host_cpu_and_no_timer_check_is_tcg_only) {
    auto rt = runtime();
    rt.accelerator = "kvm";
    auto a = *vmrt::hv::build_qemu_args(base_spec(), rt);
    BOOST_TEST(values_of(a, "-cpu").at(0) == "host");
    BOOST_TEST(values_of(a, "-append").at(0).find("no_timer_check") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(disks_with_modes_and_escaped_paths) {
    auto s = base_spec();
    s.root_disk = vmrt::disk_spec{.path = "/images/a,b.img", .cache = vmrt::disk_cache::none};
    s.data_disks.push_back(
        {.path = "/images/data.img", .read_only = true, .interface = vmrt::disk_interface::nvme});
    s.seed_iso = "/images/seed.iso";
    auto a = *vmrt::hv::build_qemu_args(s, runtime());
    auto drives = values_of(a, "-drive");
    BOOST_TEST_REQUIRE(drives.size() == 3u);
    BOOST_TEST(drives[0] == "file=/images/a,,b.img,if=none,id=disk0,format=raw,cache=none");
    BOOST_TEST(drives[1] == "file=/images/seed.iso,if=none,id=seed,format=raw,readonly=on");
    BOOST_TEST(drives[2] == "file=/images/data.img,if=none,id=disk1,format=raw,readonly=on");
    auto devices = values_of(a, "-device");
    BOOST_TEST(has(devices, "virtio-blk-pci,drive=disk0"));
    BOOST_TEST(has(devices, "virtio-blk-pci,drive=seed"));
    BOOST_TEST(has(devices, "nvme,drive=disk1,serial=vmrt-disk1"));
}

BOOST_AUTO_TEST_CASE(qcow2_is_sniffed) {
    vmrt::test::temp_dir dir;
    vmrt::test::write_file(dir / "q.img", std::string("QFI\xfb", 4) + std::string(100, '\0'));
    vmrt::test::write_file(dir / "r.img", std::string(100, '\0'));
    BOOST_TEST(vmrt::hv::sniff_disk_format(dir / "q.img") == "qcow2");
    BOOST_TEST(vmrt::hv::sniff_disk_format(dir / "r.img") == "raw");
}

BOOST_AUTO_TEST_CASE(nics_of_every_kind_get_distinct_macs) {
    auto s = base_spec();
    s.networks.push_back({.kind = vmrt::nic_kind::tap, .tap_name = "tap0"});
    s.networks.push_back({.kind = vmrt::nic_kind::fd_dgram, .fd = 7});
    s.networks.push_back(
        {.kind = vmrt::nic_kind::fd_stream, .fd = 8, .mac = vmrt::mac_address::parse("52:54:00:aa:bb:cc")});
    auto rt = runtime();
    rt.nic_fds = {-1, 7, 8};
    auto a = *vmrt::hv::build_qemu_args(s, rt);
    auto netdevs = values_of(a, "-netdev");
    BOOST_TEST_REQUIRE(netdevs.size() == 3u);
    BOOST_TEST(netdevs[0] == "tap,id=net0,ifname=tap0,script=no,downscript=no");
    BOOST_TEST(netdevs[1] == "dgram,id=net1,local.type=fd,local.str=7");
    BOOST_TEST(netdevs[2] == "stream,id=net2,addr.type=fd,addr.str=8");
    std::vector<std::string> nics;
    for (auto& d : values_of(a, "-device"))
        if (d.rfind("virtio-net-pci", 0) == 0) nics.push_back(d);
    BOOST_TEST_REQUIRE(nics.size() == 3u);
    BOOST_TEST(nics[0] ==
               "virtio-net-pci,netdev=net0,mac=" + vmrt::default_mac("vm1", 0).to_string() + ",romfile=");
    BOOST_TEST(nics[1] ==
               "virtio-net-pci,netdev=net1,mac=" + vmrt::default_mac("vm1", 1).to_string() + ",romfile=");
    BOOST_TEST(nics[2] == "virtio-net-pci,netdev=net2,mac=52:54:00:aa:bb:cc,romfile=");
}

BOOST_AUTO_TEST_CASE(a_tap_opened_by_vmrt_is_passed_as_fd) {
    auto s = base_spec();
    s.networks.push_back({.kind = vmrt::nic_kind::tap, .tap_name = "tap0"});
    auto rt = runtime();
    rt.nic_fds = {9};
    auto a = *vmrt::hv::build_qemu_args(s, rt);
    BOOST_TEST(values_of(a, "-netdev").at(0) == "tap,id=net0,fd=9");
}

BOOST_AUTO_TEST_CASE(shared_dirs_use_shared_memory_and_vhost_user_fs) {
    auto s = base_spec();
    s.shared_dirs.push_back({.host_path = "/srv/share", .tag = "share0"});
    auto rt = runtime();
    rt.virtiofs_sockets = {"/run/vm1/fs0.sock"};
    auto a = *vmrt::hv::build_qemu_args(s, rt);
    BOOST_TEST(has(values_of(a, "-object"), "memory-backend-memfd,id=mem,size=256M,share=on"));
    BOOST_TEST(values_of(a, "-numa").at(0) == "node,memdev=mem");
    BOOST_TEST(has(values_of(a, "-chardev"), "socket,id=fs0,path=/run/vm1/fs0.sock"));
    BOOST_TEST(has(values_of(a, "-device"), "vhost-user-fs-pci,chardev=fs0,tag=share0"));
}

BOOST_AUTO_TEST_CASE(balloon_uefi_machine_id_and_restore) {
    auto s = base_spec();
    s.balloon = vmrt::balloon_spec{.initial_mib = 0, .deflate_on_oom = true, .free_page_reporting = true};
    s.boot = vmrt::boot_mode::uefi;
    s.firmware = "/usr/share/OVMF/OVMF_CODE.fd";
    s.efi_variable_store = "/var/lib/vm1/vars.fd";
    s.machine_id = std::vector<std::uint8_t>(16, 0xab);
    auto rt = runtime();
    rt.incoming_fd = 11;
    BOOST_TEST(vmrt::hv::build_qemu_args(s, rt).error().field == "firmware");  // flash not prepared
    rt.uefi_code = "/usr/share/OVMF/OVMF_CODE.fd";
    rt.uefi_vars = "/var/lib/vm1/vars.fd";
    auto a = *vmrt::hv::build_qemu_args(s, rt);
    BOOST_TEST(has(values_of(a, "-device"),
                   "virtio-balloon-pci,id=balloon0,deflate-on-oom=on,free-page-reporting=on"));
    BOOST_TEST(has(values_of(a, "-drive"),
                   "if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE.fd"));
    BOOST_TEST(has(values_of(a, "-drive"), "if=pflash,format=raw,unit=1,file=/var/lib/vm1/vars.fd"));
    BOOST_TEST(values_of(a, "-uuid").at(0) == "abababab-abab-abab-abab-abababababab");
    BOOST_TEST(values_of(a, "-incoming").at(0) == "defer");
}

BOOST_AUTO_TEST_CASE(fields_qemu_cannot_honour_are_refused_by_name) {
    auto s = base_spec();
    s.rosetta = true;
    auto r = vmrt::hv::build_qemu_args(s, runtime());
    BOOST_TEST_REQUIRE(!r.has_value());
    BOOST_TEST(r.error().field == "rosetta");

    auto s2 = base_spec();
    s2.machine_id = std::vector<std::uint8_t>{1, 2, 3};
    BOOST_TEST(vmrt::hv::build_qemu_args(s2, runtime()).error().field == "machine_id");

    auto s3 = base_spec();
    s3.efi_variable_store = "/vars.fd";
    BOOST_TEST(vmrt::hv::build_qemu_args(s3, runtime()).error().field == "efi_variable_store");

    auto s4 = base_spec();
    s4.networks.push_back({.kind = vmrt::nic_kind::fd_dgram, .fd = 3});
    BOOST_TEST(vmrt::hv::build_qemu_args(s4, runtime()).error().field == "networks[0].fd");

    auto s5 = base_spec();
    s5.name = "bad\nname";
    BOOST_TEST(!vmrt::hv::build_qemu_args(s5, runtime()).has_value());

    // Several directories behind one tag are an apple-vz feature.
    auto s6 = base_spec();
    s6.shared_dirs.push_back({.host_path = "/srv/a", .tag = "data", .share_name = "a"});
    auto rt6 = runtime();
    rt6.virtiofs_sockets = {"/run/vm1/fs0.sock"};
    auto r6 = vmrt::hv::build_qemu_args(s6, rt6);
    BOOST_TEST_REQUIRE(!r6.has_value());
    BOOST_TEST(r6.error().field == "shared_dirs[0].share_name");
    s6.shared_dirs[0].share_name.clear();
    BOOST_TEST(vmrt::hv::build_qemu_args(s6, rt6).has_value());
}

BOOST_AUTO_TEST_CASE(cpu_hotplug_room_and_control_channel) {
    auto s = base_spec();
    s.max_cpus = 4;
    s.control_channel = true;
    auto rt = runtime();
    BOOST_TEST(vmrt::hv::build_qemu_args(s, rt).error().field == "control_channel");
    rt.control_listen_fd = 9;
    auto a = *vmrt::hv::build_qemu_args(s, rt);
    BOOST_TEST(values_of(a, "-smp").at(0) == "cpus=2,maxcpus=4");
    BOOST_TEST(has(values_of(a, "-chardev"), "socket,id=vmrt-control,server=on,wait=off,fd=9"));
    BOOST_TEST(has(values_of(a, "-device"), "virtio-serial-pci,id=vmrt-serial"));
    BOOST_TEST(has(values_of(a, "-device"),
                   "virtserialport,bus=vmrt-serial.0,chardev=vmrt-control,name=org.vmrt.control"));
}

BOOST_AUTO_TEST_CASE(accelerator_choice) {
    vmrt::test::temp_dir dir;
    vmrt::test::write_file(dir / "kvm", "");
    vmrt::test::write_file(dir / "cpuinfo-pvm",
                           "processor\t: 0\nflags\t\t: fpu vme de pse sse2 ht syscall\n");
    vmrt::test::write_file(dir / "cpuinfo-vmx", "processor\t: 0\nflags\t\t: fpu vmx sse2\n");
    BOOST_TEST(vmrt::hv::choose_accelerator(dir / "kvm", dir / "cpuinfo-pvm") == "tcg");
    BOOST_TEST(vmrt::hv::choose_accelerator(dir / "kvm", dir / "cpuinfo-vmx") == "kvm");
    BOOST_TEST(vmrt::hv::choose_accelerator(dir / "no-kvm", dir / "cpuinfo-vmx") == "tcg");
}

BOOST_AUTO_TEST_SUITE_END()
