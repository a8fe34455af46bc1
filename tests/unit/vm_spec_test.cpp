// vm_spec: MAC addresses and names, the JSON format (parse, errors, round trip, fuzzing),
// validation against the file system, and load_spec_file.
#include "support/test_support.hpp"

#include <vmrt/vm_spec.hpp>

#include <boost/json.hpp>
#include <boost/test/unit_test.hpp>

#include <random>
#include <set>
#include <sstream>

namespace {

namespace fs = std::filesystem;
using vmrt::spec_error;
using vmrt::vm_spec;

// ----------------------------------------------------------------------------------------------
// Equality of specs, field by field, so a failing round trip says which field broke.

std::string describe_disk(const vmrt::disk_spec& d) {
    return d.path.native() + (d.read_only ? " ro " : " rw ") + std::string(to_string(d.cache)) + " " +
           std::string(to_string(d.interface));
}

std::string describe_nic(const vmrt::nic_spec& n) {
    return std::string(to_string(n.kind)) + " tap=" + n.tap_name + " fd=" + std::to_string(n.fd) +
           " mac=" + (n.mac ? n.mac->to_string() : "unset") + " switch=" + n.switch_network;
}

template <class T, class Describe>
std::string describe_optional(const std::optional<T>& v, Describe describe) {
    return v ? describe(*v) : "unset";
}

/// The first field in which `a` and `b` differ ("" if none).
std::string first_difference(const vm_spec& a, const vm_spec& b) {
    std::vector<std::pair<std::string, std::pair<std::string, std::string>>> fields;
    const auto add = [&](std::string name, std::string x, std::string y) {
        fields.push_back({std::move(name), {std::move(x), std::move(y)}});
    };
    const auto path_of = [](const fs::path& p) {
        return p.native();
    };
    const auto str = [](const std::string& s) {
        return s;
    };
    add("name", a.name, b.name);
    add("namespace", a.namespace_, b.namespace_);
    add("backend", std::string(to_string(a.backend)), std::string(to_string(b.backend)));
    add("boot", std::string(to_string(a.boot)), std::string(to_string(b.boot)));
    add("kernel", a.kernel.native(), b.kernel.native());
    add("initramfs", describe_optional(a.initramfs, path_of), describe_optional(b.initramfs, path_of));
    add("cmdline", describe_optional(a.cmdline, str), describe_optional(b.cmdline, str));
    add("firmware", describe_optional(a.firmware, path_of), describe_optional(b.firmware, path_of));
    add("efi_variable_store", describe_optional(a.efi_variable_store, path_of),
        describe_optional(b.efi_variable_store, path_of));
    add("cpus", std::to_string(a.cpus), std::to_string(b.cpus));
    const auto count = [](std::uint32_t n) {
        return std::to_string(n);
    };
    add("max_cpus", describe_optional(a.max_cpus, count), describe_optional(b.max_cpus, count));
    add("control_channel", a.control_channel ? "on" : "off", b.control_channel ? "on" : "off");
    add("memory_mib", std::to_string(a.memory_mib), std::to_string(b.memory_mib));
    const auto balloon = [](const vmrt::balloon_spec& s) {
        return std::to_string(s.initial_mib) + (s.deflate_on_oom ? " deflate" : " keep") +
               (s.free_page_reporting ? " report" : " silent");
    };
    add("balloon", describe_optional(a.balloon, balloon), describe_optional(b.balloon, balloon));
    add("root_disk", describe_optional(a.root_disk, describe_disk),
        describe_optional(b.root_disk, describe_disk));
    const auto list = [](const auto& items, auto describe) {
        std::string out;
        for (const auto& item : items) out += "[" + describe(item) + "]";
        return out;
    };
    add("data_disks", list(a.data_disks, describe_disk), list(b.data_disks, describe_disk));
    add("seed_iso", describe_optional(a.seed_iso, path_of), describe_optional(b.seed_iso, path_of));
    add("networks", list(a.networks, describe_nic), list(b.networks, describe_nic));
    const auto share = [](const vmrt::shared_dir_spec& s) {
        return s.host_path.native() + " " + s.tag + (s.read_only ? " ro" : " rw") + " name=" + s.share_name;
    };
    add("shared_dirs", list(a.shared_dirs, share), list(b.shared_dirs, share));
    const auto vsock = [](const vmrt::vsock_spec& v) {
        return std::to_string(v.cid) + " " + v.socket.native();
    };
    add("vsock", describe_optional(a.vsock, vsock), describe_optional(b.vsock, vsock));
    add("serial_log", a.serial_log.native(), b.serial_log.native());
    add("netns", describe_optional(a.netns, str), describe_optional(b.netns, str));
    const auto bytes = [](const std::vector<std::uint8_t>& v) {
        std::string out;
        for (auto x : v) out += std::to_string(x) + ",";
        return out;
    };
    add("machine_id", describe_optional(a.machine_id, bytes), describe_optional(b.machine_id, bytes));
    add("rosetta", a.rosetta ? "true" : "false", b.rosetta ? "true" : "false");
    for (const auto& [name, values] : fields)
        if (values.first != values.second)
            return name + ": \"" + values.first + "\" != \"" + values.second + "\"";
    return "";
}

// ----------------------------------------------------------------------------------------------
// Fixtures.

// Every field set to a non-default value; relative paths resolve against the base directory.
const std::string full_spec_json = R"({
  "name": "web-1",
  "namespace": "team.a",
  "backend": "cloud-hypervisor",
  "boot": "direct",
  "kernel": "images/vmlinuz",
  "initramfs": "/boot/initrd.img",
  "cmdline": "console=ttyS0 root=/dev/vda rw quiet",
  "firmware": "fw/hypervisor-fw",
  "efi_variable_store": "efi/vars.fd",
  "cpus": 4,
  "max_cpus": 8,
  "memory_mib": 2048,
  "balloon": {"initial_mib": 512, "deflate_on_oom": false, "free_page_reporting": true},
  "root_disk": {"path": "disks/root.img", "read_only": true, "cache": "none", "interface": "nvme"},
  "data_disks": ["disks/data.img", {"path": "/var/lib/scratch.img", "cache": "unsafe"}],
  "seed_iso": "seed.iso",
  "networks": [
    {"kind": "tap", "tap": "tap0", "mac": "52:54:00:12:34:56"},
    {"tap": "tap1"}
  ],
  "shared_dirs": [{"host_path": "share", "tag": "share0", "read_only": true, "share_name": "www"}],
  "vsock": {"cid": 42, "socket": "run/vsock.sock"},
  "serial_log": "logs/serial.log",
  "netns": "vmrt-web",
  "machine_id": "00ff10AB",
  "rosetta": true,
  "control_channel": true
})";

const fs::path base_dir = "/srv/vms/web";

vm_spec parse_ok(const std::string& json, const fs::path& base = base_dir) {
    auto parsed = vmrt::parse_spec_json(json, base);
    BOOST_TEST_REQUIRE(parsed.has_value(),
                       "unexpected parse error: " << (parsed ? "" : parsed.error().field) << ": "
                                                  << (parsed ? "" : parsed.error().message));
    return *parsed;
}

spec_error parse_error(const std::string& json) {
    auto parsed = vmrt::parse_spec_json(json, base_dir);
    BOOST_TEST_REQUIRE(parsed.has_error(), "expected a parse error for: " << json);
    return parsed.error();
}

/// Parses `json`, expects an error on `field` whose message contains every `fragment`.
void expect_error(const std::string& json, const std::string& field,
                  std::initializer_list<std::string> fragments) {
    BOOST_TEST_CONTEXT("json: " << json) {
        const auto e = parse_error(json);
        BOOST_TEST(e.field == field);
        BOOST_TEST(!e.message.empty());
        for (const auto& fragment : fragments)
            BOOST_TEST(e.message.find(fragment) != std::string::npos,
                       "message \"" << e.message << "\" lacks \"" << fragment << "\"");
    }
}

boost::json::value json_string(const std::string& s) { return boost::json::string(s.data(), s.size()); }

/// The full spec with the value at `pointer` (a JSON pointer) replaced by `replacement`.
std::string full_spec_with(std::string_view pointer, const boost::json::value& replacement) {
    auto doc = boost::json::parse(full_spec_json);
    doc.at_pointer(pointer) = replacement;
    return boost::json::serialize(doc);
}

/// The full spec with `key` of the object at `pointer` added (or replaced).
std::string full_spec_adding(std::string_view pointer, std::string_view key,
                             const boost::json::value& value) {
    auto doc = boost::json::parse(full_spec_json);
    doc.at_pointer(pointer).as_object()[key] = value;
    return boost::json::serialize(doc);
}

/// The full spec without `key` of the object at `pointer`.
std::string full_spec_without(std::string_view pointer, std::string_view key) {
    auto doc = boost::json::parse(full_spec_json);
    doc.at_pointer(pointer).as_object().erase(key);
    return boost::json::serialize(doc);
}

// A spec whose files all exist in a temp dir, so that validate_spec passes; tests break it.
struct valid_on_disk {
    vmrt::test::temp_dir dir;
    vm_spec spec;

    valid_on_disk() {
        for (const char* file :
             {"vmlinuz", "initrd.img", "root.img", "data0.img", "data1.img", "seed.iso", "fw.fd"})
            vmrt::test::write_file(dir / file, "x");
        fs::create_directory(dir / "share");
        fs::create_directory(dir / "share2");
        spec.name = "vm1";
        spec.kernel = dir / "vmlinuz";
        spec.initramfs = dir / "initrd.img";
        spec.cpus = 2;
        spec.memory_mib = 1024;
        spec.balloon = vmrt::balloon_spec{256, true, false};
        spec.root_disk = vmrt::disk_spec{dir / "root.img", false, vmrt::disk_cache::automatic,
                                         vmrt::disk_interface::virtio_blk};
        spec.data_disks.push_back(
            {dir / "data0.img", false, vmrt::disk_cache::none, vmrt::disk_interface::nvme});
        spec.data_disks.push_back(
            {dir / "data1.img", true, vmrt::disk_cache::writeback, vmrt::disk_interface::virtio_blk});
        spec.seed_iso = dir / "seed.iso";
        spec.networks.push_back(
            {vmrt::nic_kind::tap, "tap0", -1, vmrt::mac_address::parse("52:54:00:00:00:01")});
        spec.networks.push_back({vmrt::nic_kind::tap, "tap1", -1, std::nullopt});
        spec.networks.push_back({vmrt::nic_kind::fd_dgram, "", 7, std::nullopt});
        spec.shared_dirs.push_back({dir / "share", "share0", true});
        spec.shared_dirs.push_back({dir / "share2", "share1", false});
        spec.vsock = vmrt::vsock_spec{3, dir / "vsock.sock"};
        spec.serial_log = dir / "serial.log";
        spec.netns = "ns1";
        spec.machine_id = std::vector<std::uint8_t>(16, 0xab);
    }
};

std::vector<std::string> fields_of(const std::vector<spec_error>& problems) {
    std::vector<std::string> out;
    for (const auto& p : problems) out.push_back(p.field);
    return out;
}

std::string list_problems(const std::vector<spec_error>& problems) {
    std::string out;
    for (const auto& p : problems) out += "\n  " + p.field + ": " + p.message;
    return out;
}

/// Validates `spec` and expects exactly one problem, on `field`, whose message contains `fragment`.
void expect_problem(const vm_spec& spec, const std::string& field, const std::string& fragment) {
    const auto problems = vmrt::validate_spec(spec);
    BOOST_TEST_REQUIRE(problems.size() == 1u,
                       "expected one problem on " << field << ", got" << list_problems(problems));
    BOOST_TEST(problems[0].field == field);
    BOOST_TEST(problems[0].message.find(fragment) != std::string::npos,
               "message \"" << problems[0].message << "\" lacks \"" << fragment << "\"");
}

}  // namespace

BOOST_AUTO_TEST_SUITE(vm_spec_test)

// ---------------------------------------------------------------------------------------------
// MAC addresses, names, enum spellings.

BOOST_AUTO_TEST_CASE(mac_parse_and_format) {
    auto mac = vmrt::mac_address::parse("52:54:00:Ab:cD:ef");
    BOOST_TEST_REQUIRE(mac.has_value());
    BOOST_TEST(mac->to_string() == "52:54:00:ab:cd:ef");
    BOOST_TEST(!mac->is_multicast());
    BOOST_TEST(vmrt::mac_address::parse("01:00:5e:00:00:01")->is_multicast());
    for (const char* bad : {"", "52:54:00:12:34", "52:54:00:12:34:56:", "52-54-00-12-34-56",
                            "52:54:00:12:34:5g", "5:54:00:12:34:567", "52:54:00:12:34:56 ",
                            " 52:54:00:12:34:56", "525400123456", "52:54:00:12::3456", "0x:54:00:12:34:56"})
        BOOST_TEST(!vmrt::mac_address::parse(bad).has_value(), "accepted \"" << bad << "\"");
}

BOOST_AUTO_TEST_CASE(nic_macs_gives_one_distinct_address_per_nic) {
    vm_spec s;
    s.name = "vm1";
    const auto explicit_mac = vmrt::mac_address::parse("52:54:00:00:00:01");
    s.networks.push_back({vmrt::nic_kind::tap, "t0", -1, explicit_mac});
    s.networks.push_back({vmrt::nic_kind::tap, "t1", -1, std::nullopt});
    s.networks.push_back({vmrt::nic_kind::fd_dgram, "", 7, std::nullopt});
    {
        const auto macs = vmrt::nic_macs(s);
        BOOST_TEST_REQUIRE(macs.has_value());
        BOOST_TEST_REQUIRE(macs->size() == 3u);
        BOOST_TEST(((*macs)[0] == *explicit_mac));
        BOOST_TEST(((*macs)[1] == vmrt::default_mac("vm1", 1)));
        BOOST_TEST(((*macs)[2] == vmrt::default_mac("vm1", 2)));
        BOOST_TEST(vmrt::nic_macs(vm_spec{}).value().empty());
    }
    const auto expect_refused = [](const vm_spec& spec, const std::string& field,
                                   const std::string& fragment) {
        const auto macs = vmrt::nic_macs(spec);
        BOOST_TEST_REQUIRE(!macs.has_value());
        BOOST_TEST(macs.error().field == field);
        BOOST_TEST(macs.error().message.find(fragment) != std::string::npos, macs.error().message);
        // value() turns it into vmrt::error(invalid_spec) naming the field.
        try {
            (void)macs.value();
            BOOST_FAIL("value() did not throw");
        } catch (const vmrt::error& e) {
            BOOST_TEST((e.code() == vmrt::errc::invalid_spec));
            BOOST_TEST(e.diag().field == field);
        }
    };
    {
        auto d = s;  // an explicit MAC repeated
        d.networks[2].mac = explicit_mac;
        expect_refused(d, "networks[2].mac", "already used by networks[0].mac");
    }
    {
        auto d = s;  // an explicit MAC equal to a later NIC's derived one
        d.networks[0].mac = vmrt::default_mac("vm1", 1);
        expect_refused(d, "networks[1].mac", "already used by networks[0].mac");
    }
    {
        auto d = s;  // an explicit MAC equal to an earlier NIC's derived one
        d.networks[2].mac = vmrt::default_mac("vm1", 1);
        expect_refused(d, "networks[2].mac", "already used by networks[1]'s default MAC");
    }
    {
        auto d = s;
        d.networks[1].mac = vmrt::mac_address::parse("01:00:5e:00:00:01");
        expect_refused(d, "networks[1].mac", "unicast");
    }
}

BOOST_AUTO_TEST_CASE(default_mac_properties) {
    std::set<std::array<std::uint8_t, 6>> seen;
    for (std::size_t i = 0; i < 1000; ++i) {
        const auto mac = vmrt::default_mac("web-1", i);
        BOOST_TEST((mac.octets[0] & 0x01) == 0, "multicast at index " << i);
        BOOST_TEST((mac.octets[0] & 0x02) == 2, "not locally administered at index " << i);
        BOOST_TEST(seen.insert(mac.octets).second, "index " << i << " repeats " << mac.to_string());
        BOOST_TEST((mac == vmrt::default_mac("web-1", i)), "not stable at index " << i);
    }
    BOOST_TEST((vmrt::default_mac("web-1", 0) != vmrt::default_mac("web-2", 0)));
    BOOST_TEST((vmrt::default_mac("", 0) != vmrt::default_mac("a", 0)));
    // Pinned: a guest's MAC must not change when vmrt is upgraded (DHCP leases, udev rules).
    BOOST_TEST(vmrt::default_mac("web-1", 0).to_string() == "42:de:86:a5:0a:de");
    BOOST_TEST(vmrt::default_mac("web-1", 1).to_string() == "42:de:86:a5:0a:df");
}

BOOST_AUTO_TEST_CASE(vm_name_syntax) {
    BOOST_TEST(vmrt::is_valid_vm_name("a"));
    BOOST_TEST(vmrt::is_valid_vm_name("Web-1.prod_2"));
    BOOST_TEST(vmrt::is_valid_vm_name("9"));
    BOOST_TEST(vmrt::is_valid_vm_name(std::string(128, 'x')));
    BOOST_TEST(!vmrt::is_valid_vm_name(std::string(129, 'x')));
    for (const char* bad : {"", "-a", ".a", "_a", "a/b", "a b", "a:b", "caf\xc3\xa9", "a\nb", ".."})
        BOOST_TEST(!vmrt::is_valid_vm_name(bad), "accepted \"" << bad << "\"");
}

BOOST_AUTO_TEST_CASE(share_tag_syntax) {
    BOOST_TEST(vmrt::is_valid_share_tag("share0"));
    BOOST_TEST(vmrt::is_valid_share_tag(std::string(36, 't')));
    BOOST_TEST(!vmrt::is_valid_share_tag(std::string(37, 't')));
    for (const char* bad : {"", "-x", "a b", "a/b", "a,b", "a=b"})
        BOOST_TEST(!vmrt::is_valid_share_tag(bad), "accepted \"" << bad << "\"");
}

BOOST_AUTO_TEST_CASE(enum_spellings) {
    BOOST_TEST(to_string(vmrt::backend_kind::automatic) == "auto");
    BOOST_TEST(to_string(vmrt::backend_kind::qemu) == "qemu");
    BOOST_TEST(to_string(vmrt::backend_kind::cloud_hypervisor) == "cloud-hypervisor");
    BOOST_TEST(to_string(vmrt::backend_kind::apple_vz) == "apple-vz");
    BOOST_TEST(to_string(vmrt::backend_kind::fake) == "fake");
    BOOST_TEST(to_string(vmrt::disk_cache::automatic) == "auto");
    BOOST_TEST(to_string(vmrt::disk_cache::none) == "none");
    BOOST_TEST(to_string(vmrt::disk_cache::writeback) == "writeback");
    BOOST_TEST(to_string(vmrt::disk_cache::writethrough) == "writethrough");
    BOOST_TEST(to_string(vmrt::disk_cache::unsafe) == "unsafe");
    BOOST_TEST(to_string(vmrt::disk_interface::virtio_blk) == "virtio-blk");
    BOOST_TEST(to_string(vmrt::nic_kind::fd_stream) == "fd-stream");
}

// ---------------------------------------------------------------------------------------------
// Parsing.

BOOST_AUTO_TEST_CASE(full_spec_parses) {
    const auto s = parse_ok(full_spec_json);
    BOOST_TEST(s.name == "web-1");
    BOOST_TEST(s.namespace_ == "team.a");
    BOOST_TEST((s.backend == vmrt::backend_kind::cloud_hypervisor));
    BOOST_TEST((s.boot == vmrt::boot_mode::direct));
    BOOST_TEST(s.kernel == "/srv/vms/web/images/vmlinuz");
    BOOST_TEST(*s.initramfs == "/boot/initrd.img");
    BOOST_TEST(*s.cmdline == "console=ttyS0 root=/dev/vda rw quiet");
    BOOST_TEST(*s.firmware == "/srv/vms/web/fw/hypervisor-fw");
    BOOST_TEST(*s.efi_variable_store == "/srv/vms/web/efi/vars.fd");
    BOOST_TEST(s.cpus == 4u);
    BOOST_TEST(s.memory_mib == 2048u);
    BOOST_TEST_REQUIRE(s.balloon.has_value());
    BOOST_TEST(s.balloon->initial_mib == 512u);
    BOOST_TEST(!s.balloon->deflate_on_oom);
    BOOST_TEST(s.balloon->free_page_reporting);
    BOOST_TEST_REQUIRE(s.root_disk.has_value());
    BOOST_TEST(s.root_disk->path == "/srv/vms/web/disks/root.img");
    BOOST_TEST(s.root_disk->read_only);
    BOOST_TEST((s.root_disk->cache == vmrt::disk_cache::none));
    BOOST_TEST((s.root_disk->interface == vmrt::disk_interface::nvme));
    BOOST_TEST_REQUIRE(s.data_disks.size() == 2u);
    BOOST_TEST(s.data_disks[0].path == "/srv/vms/web/disks/data.img");
    BOOST_TEST(!s.data_disks[0].read_only);
    BOOST_TEST((s.data_disks[0].cache == vmrt::disk_cache::automatic));
    BOOST_TEST((s.data_disks[0].interface == vmrt::disk_interface::virtio_blk));
    BOOST_TEST(s.data_disks[1].path == "/var/lib/scratch.img");
    BOOST_TEST((s.data_disks[1].cache == vmrt::disk_cache::unsafe));
    BOOST_TEST(*s.seed_iso == "/srv/vms/web/seed.iso");
    BOOST_TEST_REQUIRE(s.networks.size() == 2u);
    BOOST_TEST((s.networks[0].kind == vmrt::nic_kind::tap));
    BOOST_TEST(s.networks[0].tap_name == "tap0");
    BOOST_TEST(s.networks[0].fd == -1);
    BOOST_TEST(s.networks[0].mac->to_string() == "52:54:00:12:34:56");
    BOOST_TEST(s.networks[1].tap_name == "tap1");
    BOOST_TEST(!s.networks[1].mac.has_value());
    BOOST_TEST_REQUIRE(s.shared_dirs.size() == 1u);
    BOOST_TEST(s.shared_dirs[0].host_path == "/srv/vms/web/share");
    BOOST_TEST(s.shared_dirs[0].tag == "share0");
    BOOST_TEST(s.shared_dirs[0].read_only);
    BOOST_TEST(s.shared_dirs[0].share_name == "www");
    BOOST_TEST_REQUIRE(s.vsock.has_value());
    BOOST_TEST(s.vsock->cid == 42u);
    BOOST_TEST(s.vsock->socket == "/srv/vms/web/run/vsock.sock");
    BOOST_TEST(s.serial_log == "/srv/vms/web/logs/serial.log");
    BOOST_TEST(*s.netns == "vmrt-web");
    BOOST_TEST((*s.machine_id == std::vector<std::uint8_t>{0x00, 0xff, 0x10, 0xab}));
    BOOST_TEST(s.rosetta);
}

BOOST_AUTO_TEST_CASE(minimal_spec_takes_struct_defaults) {
    const auto s = parse_ok(R"({"name": "tiny"})");
    vm_spec expected;
    expected.name = "tiny";
    BOOST_TEST(first_difference(s, expected) == "");
    BOOST_TEST(s.serial_log.empty());  // the manager fills it in
}

BOOST_AUTO_TEST_CASE(relative_paths_resolve_against_base_dir) {
    const auto s =
        parse_ok(R"({"name": "a", "kernel": "../images/./vmlinuz", "initramfs": "/boot//x/../initrd",
        "root_disk": "./root.img", "data_disks": [{"path": "d/../data.img"}], "seed_iso": "iso/",
        "shared_dirs": [{"host_path": "../../shared", "tag": "t"}], "vsock": {"socket": "v.sock"},
        "serial_log": "serial.log", "firmware": "fw", "efi_variable_store": "../vars"})");
    BOOST_TEST(s.kernel == "/srv/vms/images/vmlinuz");
    BOOST_TEST(*s.initramfs == "/boot/initrd");
    BOOST_TEST(s.root_disk->path == "/srv/vms/web/root.img");
    BOOST_TEST(s.data_disks[0].path == "/srv/vms/web/data.img");
    BOOST_TEST(*s.seed_iso == "/srv/vms/web/iso/");
    BOOST_TEST(s.shared_dirs[0].host_path == "/srv/shared");
    BOOST_TEST(s.vsock->socket == "/srv/vms/web/v.sock");
    BOOST_TEST(s.serial_log == "/srv/vms/web/serial.log");
    BOOST_TEST(*s.firmware == "/srv/vms/web/fw");
    BOOST_TEST(*s.efi_variable_store == "/srv/vms/vars");

    // An empty base leaves relative paths relative (to the caller's working directory).
    const auto r = parse_ok(R"({"name": "a", "kernel": "k/./vmlinuz"})", "");
    BOOST_TEST(r.kernel == "k/vmlinuz");
}

BOOST_AUTO_TEST_CASE(round_trip_of_parsed_spec) {
    const auto s = parse_ok(full_spec_json);
    const std::string json = vmrt::spec_to_json(s);
    BOOST_TEST(first_difference(parse_ok(json), s) == "");
    // Absolute paths do not depend on the base directory any more.
    BOOST_TEST(first_difference(parse_ok(json, "/elsewhere"), s) == "");
    // The output is stable: writing the re-parsed spec gives the same text.
    BOOST_TEST(vmrt::spec_to_json(parse_ok(json)) == json);
}

BOOST_AUTO_TEST_CASE(round_trip_of_cpp_spec_with_awkward_values) {
    vm_spec s;
    s.name = "x";
    s.namespace_ = "ns-1";
    s.backend = vmrt::backend_kind::fake;
    s.boot = vmrt::boot_mode::uefi;
    s.firmware = "/fw/OVMF \"CODE\",v2.fd";
    s.cmdline = "init=/bin/sh console=\"tty S0\" \\ \t caf\xc3\xa9";
    s.cpus = 4294967295u;
    s.memory_mib = 18446744073709551615ull;
    s.balloon = vmrt::balloon_spec{0, true, false};
    s.data_disks.push_back(
        {"/a,b/c=d.img", false, vmrt::disk_cache::writethrough, vmrt::disk_interface::nvme});
    s.networks.push_back({vmrt::nic_kind::tap, "t", -1, vmrt::mac_address::parse("02:00:00:00:00:ff")});
    s.vsock = vmrt::vsock_spec{4294967295u, {}};
    s.netns = "";
    s.machine_id = std::vector<std::uint8_t>{};
    const auto back = parse_ok(vmrt::spec_to_json(s), "/");
    BOOST_TEST(first_difference(back, s) == "");

    // A default-constructed spec (with a name) round-trips too.
    vm_spec d;
    d.name = "d";
    BOOST_TEST(first_difference(parse_ok(vmrt::spec_to_json(d)), d) == "");
}

BOOST_AUTO_TEST_CASE(share_name_round_trip) {
    vm_spec s;
    s.name = "x";
    s.shared_dirs.push_back({.host_path = "/srv/a", .tag = "data", .share_name = "alpha"});
    s.shared_dirs.push_back(
        {.host_path = "/srv/b", .tag = "data", .read_only = true, .share_name = "b \"2\""});
    s.shared_dirs.push_back({.host_path = "/srv/c", .tag = "own"});
    const auto json = vmrt::spec_to_json(s);
    BOOST_TEST(json.find("\"share_name\": \"alpha\"") != std::string::npos);
    // An unnamed directory is written without the key, as it is read.
    const auto own = json.find("\"own\"");
    BOOST_TEST_REQUIRE(own != std::string::npos);
    BOOST_TEST(json.find("share_name", own) == std::string::npos);
    const auto back = parse_ok(json, "/");
    BOOST_TEST(first_difference(back, s) == "");
    BOOST_TEST(back.shared_dirs[1].share_name == "b \"2\"");
    BOOST_TEST(back.shared_dirs[2].share_name.empty());

    expect_error(full_spec_with("/shared_dirs/0/share_name", ""), "shared_dirs[0].share_name",
                 {"must not be empty"});
    expect_error(full_spec_with("/shared_dirs/0/share_name", 3), "shared_dirs[0].share_name",
                 {"expected a string"});
}

BOOST_AUTO_TEST_CASE(spec_to_json_writes_fd_nics_that_json_cannot_read_back) {
    vm_spec s;
    s.name = "x";
    s.networks.push_back({vmrt::nic_kind::fd_stream, "", 5, std::nullopt});
    const auto json = vmrt::spec_to_json(s);
    BOOST_TEST(json.find("\"fd-stream\"") != std::string::npos);
    BOOST_TEST(json.find("\"fd\": 5") != std::string::npos);
    expect_error(json, "networks[0].kind", {"C++"});
}

BOOST_AUTO_TEST_CASE(unknown_keys) {
    expect_error(R"({"name": "a", "nmae": "b"})", "nmae",
                 {"unknown key (did you mean \"name\"?)", "rosetta"});
    expect_error(R"({"name": "a", "memory": 1})", "memory", {"(did you mean \"memory_mib\"?)"});
    expect_error(R"({"name": "a", "zzzzzzzz": 1})", "zzzzzzzz", {"unknown key; expected one of: name, "});
    expect_error(full_spec_adding("/root_disk", "size", 1), "root_disk.size",
                 {"unknown key", "path, read_only, cache, interface"});
    expect_error(full_spec_adding("/data_disks/1", "sise", 1), "data_disks[1].sise", {"unknown key"});
    expect_error(full_spec_adding("/networks/1", "model", "e1000"), "networks[1].model", {"unknown key"});
    expect_error(full_spec_adding("/shared_dirs/0", "cache", "x"), "shared_dirs[0].cache", {"unknown key"});
    expect_error(full_spec_adding("/vsock", "port", 1), "vsock.port", {"unknown key"});
    expect_error(full_spec_adding("/balloon", "max", 1), "balloon.max", {"unknown key"});
}

BOOST_AUTO_TEST_CASE(wrong_json_types) {
    expect_error(full_spec_with("/name", 5), "name", {"expected a string", "found the number 5"});
    expect_error(full_spec_with("/namespace", true), "namespace", {"expected a string", "found true"});
    expect_error(full_spec_with("/cpus", "2"), "cpus", {"integer", "found the string \"2\""});
    expect_error(full_spec_with("/memory_mib", boost::json::array{1}), "memory_mib",
                 {"integer", "found an array"});
    expect_error(full_spec_with("/kernel", boost::json::object{}), "kernel",
                 {"expected a string", "found an object"});
    expect_error(full_spec_with("/cmdline", nullptr), "cmdline", {"found null", "omit the key"});
    expect_error(full_spec_with("/balloon", 1), "balloon", {"expected an object"});
    expect_error(full_spec_with("/balloon/deflate_on_oom", "yes"), "balloon.deflate_on_oom",
                 {"true or false", "\"yes\""});
    expect_error(full_spec_with("/root_disk", 5), "root_disk",
                 {"a path string or an object", "found the number 5"});
    expect_error(full_spec_with("/root_disk/read_only", 1), "root_disk.read_only", {"true or false"});
    expect_error(full_spec_with("/data_disks", "disk.img"), "data_disks", {"expected an array"});
    expect_error(full_spec_with("/data_disks/0", nullptr), "data_disks[0]", {"found null"});
    expect_error(full_spec_with("/networks", boost::json::object{}), "networks", {"expected an array"});
    expect_error(full_spec_with("/networks/1", "tap1"), "networks[1]", {"expected an object"});
    expect_error(full_spec_with("/networks/0/tap", 0), "networks[0].tap", {"expected a string"});
    expect_error(full_spec_with("/shared_dirs/0/read_only", "true"), "shared_dirs[0].read_only",
                 {"true or false"});
    expect_error(full_spec_with("/shared_dirs/0/tag", 1), "shared_dirs[0].tag", {"expected a string"});
    expect_error(full_spec_with("/vsock/socket", false), "vsock.socket", {"expected a string"});
    expect_error(full_spec_with("/rosetta", 1), "rosetta", {"true or false", "found the number 1"});
    expect_error(full_spec_with("/netns", nullptr), "netns", {"found null"});
    expect_error(R"([{"name": "a"}])", "", {"a JSON object at the top level", "found an array"});
    expect_error(R"("a")", "", {"a JSON object at the top level"});
}

BOOST_AUTO_TEST_CASE(bad_integers) {
    expect_error(full_spec_with("/cpus", -1), "cpus", {"non-negative integer", "found the number -1"});
    expect_error(full_spec_with("/cpus", 2.5), "cpus", {"without a fraction", "2.5"});
    expect_error(R"({"name": "a", "cpus": 1e1})", "cpus", {"without a fraction"});
    expect_error(R"({"name": "a", "cpus": 4294967296})", "cpus",
                 {"no greater than 4294967295", "4294967296"});
    expect_error(R"({"name": "a", "memory_mib": 18446744073709551616})", "memory_mib", {"integer"});
    expect_error(R"({"name": "a", "memory_mib": -0.5})", "memory_mib", {"integer"});
    expect_error(R"({"name": "a", "vsock": {"cid": -3}})", "vsock.cid", {"non-negative", "-3"});
    expect_error(R"({"name": "a", "vsock": {"cid": 4294967296}})", "vsock.cid", {"4294967295"});
    expect_error(R"({"name": "a", "balloon": {"initial_mib": -1}})", "balloon.initial_mib", {"non-negative"});
    // The extremes that fit are accepted (validation judges whether they make sense).
    BOOST_TEST(parse_ok(R"({"name": "a", "cpus": 4294967295})").cpus == 4294967295u);
    BOOST_TEST(parse_ok(R"({"name": "a", "memory_mib": 18446744073709551615})").memory_mib ==
               18446744073709551615ull);
    BOOST_TEST(parse_ok(R"({"name": "a", "cpus": 0})").cpus == 0u);
}

BOOST_AUTO_TEST_CASE(bad_enum_strings) {
    expect_error(full_spec_with("/backend", "kvm"), "backend",
                 {"one of \"auto\", \"qemu\", \"cloud-hypervisor\", \"apple-vz\", \"fake\"", "\"kvm\""});
    expect_error(full_spec_with("/backend", "QEMU"), "backend", {"\"QEMU\""});
    expect_error(full_spec_with("/boot", "bios"), "boot", {"\"direct\", \"uefi\"", "\"bios\""});
    expect_error(full_spec_with("/data_disks/1/cache", "fast"), "data_disks[1].cache",
                 {"\"auto\", \"none\", \"writeback\", \"writethrough\", \"unsafe\"", "\"fast\""});
    expect_error(full_spec_with("/root_disk/interface", "scsi"), "root_disk.interface",
                 {"\"virtio-blk\", \"nvme\"", "\"scsi\""});
    expect_error(full_spec_with("/networks/0/kind", "bridge"), "networks[0].kind", {"\"tap\"", "\"bridge\""});
    expect_error(full_spec_with("/boot", 1), "boot", {"one of", "found the number 1"});
}

BOOST_AUTO_TEST_CASE(fd_nics_are_rejected_in_json) {
    expect_error(full_spec_with("/networks/0/kind", "fd-dgram"), "networks[0].kind", {"fd-dgram", "C++"});
    expect_error(full_spec_adding("/networks/1", "kind", "fd-stream"), "networks[1].kind",
                 {"fd-stream", "C++"});
    expect_error(full_spec_adding("/networks/0", "fd", 3), "networks[0].fd", {"C++"});
}

BOOST_AUTO_TEST_CASE(switch_ports_are_named_in_json) {
    auto s = parse_ok(
        R"({"name": "a", "networks": [{"kind": "fd-stream", "switch": "lan0", "mac": "52:54:00:00:00:01"},
                                                   {"kind": "fd-dgram", "switch": "lan1"}]})");
    BOOST_TEST_REQUIRE(s.networks.size() == 2u);
    BOOST_TEST(s.networks[0].switch_network == "lan0");
    BOOST_TEST((s.networks[0].kind == vmrt::nic_kind::fd_stream));
    BOOST_TEST(s.networks[0].fd == -1);
    BOOST_TEST(s.networks[1].switch_network == "lan1");
    // Round trip: the writer names the network, not a descriptor.
    auto again = parse_ok(vmrt::spec_to_json(s));
    BOOST_TEST(again.networks[1].switch_network == "lan1");
    expect_error(R"({"name": "a", "networks": [{"kind": "tap", "tap": "t0", "switch": "lan0"}]})",
                 "networks[0].switch", {"fd-dgram and fd-stream"});
    expect_error(R"({"name": "a", "networks": [{"kind": "fd-dgram", "switch": "lan0", "fd": 3}]})",
                 "networks[0].fd", {"made by the manager"});
}

BOOST_AUTO_TEST_CASE(bad_values) {
    expect_error(full_spec_with("/networks/0/mac", "52:54:00:12:34"), "networks[0].mac",
                 {"xx:xx:xx:xx:xx:xx", "\"52:54:00:12:34\""});
    expect_error(full_spec_adding("/networks/1", "mac", "52-54-00-12-34-56"), "networks[1].mac", {"MAC"});
    expect_error(full_spec_with("/networks/0/mac", 5), "networks[0].mac", {"MAC", "found the number 5"});
    expect_error(full_spec_with("/machine_id", "abc"), "machine_id", {"two per byte", "\"abc\""});
    expect_error(full_spec_with("/machine_id", "zz"), "machine_id", {"hex digits"});
    expect_error(full_spec_with("/kernel", ""), "kernel", {"non-empty path"});
    expect_error(full_spec_with("/data_disks/0", ""), "data_disks[0]", {"non-empty path"});
    expect_error(full_spec_with("/cmdline", json_string(std::string("a\0b", 3))), "cmdline", {"NUL"});
    expect_error(full_spec_with("/kernel", json_string(std::string("/k\0", 3))), "kernel", {"NUL"});
    // Long values are shortened in messages.
    const auto e = parse_error(full_spec_with("/backend", json_string(std::string(1000, 'q'))));
    BOOST_TEST(e.message.size() < 300u);
    BOOST_TEST(e.message.find("...") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(missing_required_keys) {
    expect_error(R"({"cpus": 1})", "name", {"missing required key \"name\""});
    expect_error(full_spec_without("/root_disk", "path"), "root_disk.path", {"missing required key"});
    expect_error(full_spec_without("/data_disks/1", "path"), "data_disks[1].path", {"missing"});
    expect_error(full_spec_without("/networks/0", "tap"), "networks[0].tap", {"missing"});
    expect_error(full_spec_without("/shared_dirs/0", "tag"), "shared_dirs[0].tag", {"missing"});
    expect_error(full_spec_without("/shared_dirs/0", "host_path"), "shared_dirs[0].host_path", {"missing"});
}

BOOST_AUTO_TEST_CASE(duplicate_keys) {
    expect_error(R"({"name": "a", "cpus": 1, "cpus": 2})", "cpus", {"duplicate key"});
    expect_error(R"({"name": "a", "networks": [{"tap": "t0"}, {"tap": "t1", "mac": "02:00:00:00:00:01",
                    "mac": "02:00:00:00:00:02"}]})",
                 "networks[1].mac", {"duplicate key"});
    expect_error(R"({"name": "a", "vsock": {"cid": 3, "c\u0069d": 4}})", "vsock.cid", {"duplicate key"});
    // The same key in different objects is fine.
    parse_ok(R"({"name": "a", "root_disk": {"path": "a"}, "data_disks": [{"path": "b"}, {"path": "c"}]})");
}

BOOST_AUTO_TEST_CASE(malformed_json_names_the_position) {
    auto e = parse_error("{\n  \"name\": \"a\",\n  \"cpus\": 2,,\n}");
    BOOST_TEST(e.field == "");
    BOOST_TEST(e.message.find("invalid JSON") != std::string::npos, e.message);
    BOOST_TEST(e.message.find("line 3, column 13") != std::string::npos, e.message);

    e = parse_error(R"({"name": "a")");
    BOOST_TEST(e.field == "");
    BOOST_TEST(e.message.find("line 1, column 13") != std::string::npos, e.message);

    e = parse_error(R"({"name": "a"} x)");
    BOOST_TEST(e.message.find("column 15") != std::string::npos, e.message);

    e = parse_error("{\"name\": \"a\" // comment\n}");
    BOOST_TEST(e.message.find("line 1, column 14") != std::string::npos, e.message);

    for (const char* text :
         {"", "   ", "nul", "{\"name\": \"\xff\"}", "{'name': 'a'}", "{\"name\": \"a\",}"}) {
        e = parse_error(text);
        BOOST_TEST(e.field == "");
        BOOST_TEST(e.message.find("invalid JSON at line") != std::string::npos, e.message);
    }
}

BOOST_AUTO_TEST_CASE(result_value_throws_vmrt_error) {
    try {
        (void)vmrt::parse_spec_json(R"({"name": "a", "cpus": "x"})", "/").value();
        BOOST_FAIL("no exception");
    } catch (const vmrt::error& e) {
        BOOST_TEST((e.code() == vmrt::errc::invalid_spec));
        BOOST_TEST(e.diag().field == "cpus");
        BOOST_TEST(e.diag().message.find("cpus: expected") == 0u, e.diag().message);
    }
}

// Random damage to a valid document must never crash the parser, and must produce either a spec
// or an error with a message. Every spec that is accepted must also survive a round trip.
BOOST_AUTO_TEST_CASE(fuzzed_input_never_crashes) {
    std::mt19937 rng(20240611);
    const std::string base = full_spec_json;
    using namespace std::string_literals;
    const std::string interesting = "{}[]\":,\\0123456789-.eE+ \n\tnulltruefalseu\x00\xff\xc3\xa9"s;
    const auto pick = [&](std::size_t n) {
        return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng);
    };
    const auto random_byte = [&]() -> char {
        return pick(2) ? interesting[pick(interesting.size())] : static_cast<char>(pick(256));
    };
    std::size_t accepted = 0;
    for (int round = 0; round < 20000; ++round) {
        std::string text = base;
        const std::size_t mutations = 1 + pick(3);
        for (std::size_t m = 0; m < mutations && !text.empty(); ++m) {
            switch (pick(4)) {
            case 0:
                text[pick(text.size())] = random_byte();
                break;
            case 1:
                text.resize(pick(text.size()));
                break;
            case 2:
                text.insert(text.begin() + static_cast<std::ptrdiff_t>(pick(text.size() + 1)), random_byte());
                break;
            default:
                text.erase(pick(text.size()), 1 + pick(8));
                break;
            }
        }
        const auto parsed = vmrt::parse_spec_json(text, base_dir);
        if (parsed.has_error()) {
            BOOST_TEST_REQUIRE(!parsed.error().message.empty(), "empty message for: " << text);
            continue;
        }
        ++accepted;
        const auto again = vmrt::parse_spec_json(vmrt::spec_to_json(*parsed), base_dir);
        BOOST_TEST_REQUIRE(again.has_value(), "accepted spec does not round-trip: " << text);
        BOOST_TEST_REQUIRE(first_difference(*again, *parsed) == "", "for: " << text);
    }
    BOOST_TEST_MESSAGE("fuzz: " << accepted << " of 20000 mutants parsed");
}

// ---------------------------------------------------------------------------------------------
// Validation.

BOOST_AUTO_TEST_CASE(valid_spec_has_no_problems) {
    valid_on_disk v;
    const auto problems = vmrt::validate_spec(v.spec);
    BOOST_TEST(problems.empty(), list_problems(problems));

    // UEFI boot needs firmware, not a kernel.
    v.spec.boot = vmrt::boot_mode::uefi;
    v.spec.kernel.clear();
    v.spec.initramfs.reset();
    v.spec.firmware = v.dir / "fw.fd";
    v.spec.efi_variable_store = v.dir / "vars.fd";
    BOOST_TEST(vmrt::validate_spec(v.spec).empty(), list_problems(vmrt::validate_spec(v.spec)));
}

BOOST_AUTO_TEST_CASE(names) {
    valid_on_disk v;
    v.spec.name = "";
    expect_problem(v.spec, "name", "is required");
    v.spec.name = "-bad";
    expect_problem(v.spec, "name", "\"-bad\"");
    v.spec.name = "vm1";
    v.spec.namespace_ = "a/b";
    expect_problem(v.spec, "namespace", "[A-Za-z0-9._-]");
}

BOOST_AUTO_TEST_CASE(boot_files) {
    {
        valid_on_disk v;
        v.spec.kernel.clear();
        expect_problem(v.spec, "kernel", "required for direct boot");
    }
    {
        valid_on_disk v;
        v.spec.kernel = v.dir / "missing";
        expect_problem(v.spec, "kernel", "does not exist");
    }
    {
        valid_on_disk v;
        v.spec.kernel = v.dir / "share";
        expect_problem(v.spec, "kernel", "found a directory");
    }
    {
        valid_on_disk v;
        v.spec.initramfs = v.dir / "vmlinuz" / "x";  // a file used as a directory (ENOTDIR)
        expect_problem(v.spec, "initramfs", "does not exist");
    }
    {
        valid_on_disk v;
        v.spec.boot = vmrt::boot_mode::uefi;  // no firmware: the backend's default
        BOOST_TEST(vmrt::validate_spec(v.spec).empty(), list_problems(vmrt::validate_spec(v.spec)));
        v.spec.firmware = v.dir / "nofw";
        expect_problem(v.spec, "firmware", "does not exist");
        v.spec.firmware = v.dir / "vmlinuz";
        v.spec.boot = vmrt::boot_mode::direct;
        expect_problem(v.spec, "firmware", "needs \"boot\": \"uefi\"");
    }
    {
        valid_on_disk v;
        v.spec.efi_variable_store = v.dir / "nodir" / "vars.fd";
        expect_problem(v.spec, "efi_variable_store", "does not exist");
    }
}

BOOST_AUTO_TEST_CASE(cpu_memory_balloon_bounds) {
    valid_on_disk v;
    for (std::uint32_t cpus : {0u, 256u}) {
        v.spec.cpus = cpus;
        expect_problem(v.spec, "cpus", "between 1 and 255");
    }
    v.spec.cpus = 255;
    BOOST_TEST(vmrt::validate_spec(v.spec).empty());
    v.spec.cpus = 2;
    for (std::uint32_t max : {1u, 256u}) {
        v.spec.max_cpus = max;
        expect_problem(v.spec, "max_cpus", "between cpus (2) and 255");
    }
    v.spec.max_cpus = 2;
    BOOST_TEST(vmrt::validate_spec(v.spec).empty());
    v.spec.max_cpus.reset();
    v.spec.cpus = 1;
    v.spec.balloon.reset();
    for (std::uint64_t mib : {15ull, 1048577ull}) {
        v.spec.memory_mib = mib;
        expect_problem(v.spec, "memory_mib", "between 16 and 1048576");
    }
    for (std::uint64_t mib : {16ull, 1048576ull}) {
        v.spec.memory_mib = mib;
        BOOST_TEST(vmrt::validate_spec(v.spec).empty());
    }
    v.spec.memory_mib = 512;
    v.spec.balloon = vmrt::balloon_spec{512, true, false};
    expect_problem(v.spec, "balloon.initial_mib", "less than memory_mib");
    v.spec.balloon->initial_mib = 511;
    BOOST_TEST(vmrt::validate_spec(v.spec).empty());
}

BOOST_AUTO_TEST_CASE(disks) {
    {
        valid_on_disk v;
        v.spec.data_disks[1].path = v.dir / "nothing.img";
        expect_problem(v.spec, "data_disks[1].path", "does not exist");
    }
    {
        valid_on_disk v;
        v.spec.seed_iso = v.dir / "share";
        expect_problem(v.spec, "seed_iso", "regular file or a block device");
    }
    {
        valid_on_disk v;
        v.spec.data_disks[1].path = v.dir / "share" / ".." / "root.img";
        expect_problem(v.spec, "data_disks[1].path", "already attached as root_disk.path");
    }
    {
        valid_on_disk v;
        fs::create_symlink(v.dir / "data0.img", v.dir / "alias.img");
        v.spec.seed_iso = v.dir / "alias.img";
        expect_problem(v.spec, "seed_iso", "already attached as data_disks[0].path");
    }
    {
        valid_on_disk v;
        if (fs::is_block_file("/dev/loop0")) {
            v.spec.data_disks[0].path = "/dev/loop0";
            BOOST_TEST(vmrt::validate_spec(v.spec).empty());
        }
    }
}

BOOST_AUTO_TEST_CASE(shared_dirs) {
    {
        valid_on_disk v;
        v.spec.shared_dirs[0].host_path = v.dir / "vmlinuz";
        expect_problem(v.spec, "shared_dirs[0].host_path", "expected a directory, found a regular file");
    }
    {
        valid_on_disk v;
        v.spec.shared_dirs[1].tag = std::string(37, 't');
        expect_problem(v.spec, "shared_dirs[1].tag", "1 to 36 characters");
    }
    {
        valid_on_disk v;
        v.spec.shared_dirs[1].tag = "share0";
        expect_problem(v.spec, "shared_dirs[1].tag", "also used by shared_dirs[0].tag");
    }
}

// Several directories may share a tag only when each has a distinct share_name.
BOOST_AUTO_TEST_CASE(shared_dirs_share_names) {
    struct row {
        std::string what;
        std::vector<std::pair<std::string, std::string>> tag_and_name;  // one per shared_dirs entry
        std::string field;                                              ///< "" : valid
        std::string fragment;
    };
    const std::vector<row> rows = {
        {"distinct names in one tag", {{"data", "a"}, {"data", "b"}}, "", ""},
        {"a name on a tag of its own", {{"data", "a"}, {"logs", ""}}, "", ""},
        {"one name in two tags", {{"data", "a"}, {"logs", "a"}}, "", ""},
        {"the later entry has no name",
         {{"data", "a"}, {"data", ""}},
         "shared_dirs[1].tag",
         "distinct \"share_name\""},
        {"the first entry has no name",
         {{"data", ""}, {"data", "b"}},
         "shared_dirs[1].tag",
         "also used by shared_dirs[0].tag"},
        {"a name used twice",
         {{"data", "a"}, {"data", "a"}},
         "shared_dirs[1].share_name",
         "also used by shared_dirs[0].share_name"},
        {"a slash", {{"data", "a/b"}, {"logs", ""}}, "shared_dirs[0].share_name", "file name"},
        {"a dot-dot", {{"data", ".."}, {"logs", ""}}, "shared_dirs[0].share_name", "file name"},
        {"a control character", {{"data", "a\nb"}, {"logs", ""}}, "shared_dirs[0].share_name", "file name"},
        {"too long",
         {{"data", std::string(256, 'n')}, {"logs", ""}},
         "shared_dirs[0].share_name",
         "255 bytes"},
    };
    for (const auto& r : rows) {
        BOOST_TEST_CONTEXT(r.what) {
            valid_on_disk v;
            for (std::size_t i = 0; i < r.tag_and_name.size(); ++i) {
                v.spec.shared_dirs.at(i).tag = r.tag_and_name[i].first;
                v.spec.shared_dirs.at(i).share_name = r.tag_and_name[i].second;
            }
            if (r.field.empty())
                BOOST_TEST(vmrt::validate_spec(v.spec).empty(), list_problems(vmrt::validate_spec(v.spec)));
            else
                expect_problem(v.spec, r.field, r.fragment);
        }
    }
    BOOST_TEST(vmrt::is_valid_share_name("caf\xc3\xa9 2"));
    BOOST_TEST(vmrt::is_valid_share_name(std::string(255, 'n')));
    BOOST_TEST(!vmrt::is_valid_share_name(""));
    BOOST_TEST(!vmrt::is_valid_share_name("."));
}

BOOST_AUTO_TEST_CASE(networks) {
    {
        valid_on_disk v;
        v.spec.networks[1].mac = vmrt::mac_address::parse("01:00:5e:00:00:01");
        expect_problem(v.spec, "networks[1].mac", "unicast");
    }
    {
        valid_on_disk v;
        v.spec.networks[1].mac = vmrt::mac_address{};
        expect_problem(v.spec, "networks[1].mac", "all-zero");
    }
    {
        valid_on_disk v;
        v.spec.networks[1].mac = v.spec.networks[0].mac;
        expect_problem(v.spec, "networks[1].mac", "already used by networks[0].mac");
    }
    {
        valid_on_disk v;  // an explicit address equal to another NIC's default
        v.spec.networks[0].mac = vmrt::default_mac("vm1", 1);
        expect_problem(v.spec, "networks[1].mac", "already used by networks[0].mac");
    }
    for (const auto& bad : {"", "0123456789abcdef", "a/b", "a b", "a\tb", "a:1", ".", ".."}) {
        valid_on_disk v;
        v.spec.networks[0].tap_name = bad;
        expect_problem(v.spec, "networks[0].tap", "Linux interface name");
    }
    {
        valid_on_disk v;
        v.spec.networks[0].tap_name = "0123456789abcde";  // 15 bytes: the maximum
        BOOST_TEST(vmrt::validate_spec(v.spec).empty());
    }
    {
        valid_on_disk v;
        v.spec.networks[2].fd = -1;
        expect_problem(v.spec, "networks[2].fd", "fd-dgram NIC needs an inherited file descriptor");
    }
    {
        valid_on_disk v;
        v.spec.networks[0].fd = 3;
        expect_problem(v.spec, "networks[0].fd", "only fd-dgram and fd-stream");
    }
    {
        valid_on_disk v;
        v.spec.networks[2].fd = -1;
        v.spec.networks[2].switch_network = "lan0";
        BOOST_TEST(vmrt::validate_spec(v.spec).empty(), list_problems(vmrt::validate_spec(v.spec)));
        v.spec.networks[2].switch_network = "bad name";
        expect_problem(v.spec, "networks[2].switch", "[A-Za-z0-9._-]");
    }
}

BOOST_AUTO_TEST_CASE(vsock_serial_netns_machine_id) {
    {
        valid_on_disk v;
        for (std::uint32_t cid : {0u, 2u, 0xFFFFFFFFu}) {
            v.spec.vsock->cid = cid;
            expect_problem(v.spec, "vsock.cid", "at least 3");
        }
        v.spec.vsock->cid = 0xFFFFFFFEu;
        BOOST_TEST(vmrt::validate_spec(v.spec).empty());
    }
    {
        valid_on_disk v;
        const auto prefix = v.dir.path().native() + "/";
        v.spec.vsock->socket = prefix + std::string(108 - prefix.size(), 's');
        expect_problem(v.spec, "vsock.socket", "at most 107 bytes");
        v.spec.vsock->socket = prefix + std::string(107 - prefix.size(), 's');
        BOOST_TEST(vmrt::validate_spec(v.spec).empty());
        v.spec.vsock->socket = v.dir / "nodir" / "v.sock";
        expect_problem(v.spec, "vsock.socket", "directory");
        v.spec.vsock->socket.clear();  // no host socket (vhost-vsock) is fine
        BOOST_TEST(vmrt::validate_spec(v.spec).empty());
    }
    {
        valid_on_disk v;
        v.spec.serial_log = v.dir / "nodir" / "serial.log";
        expect_problem(v.spec, "serial_log", "does not exist");
        v.spec.serial_log = v.dir / "share";
        expect_problem(v.spec, "serial_log", "is a directory");
        v.spec.serial_log.clear();
        BOOST_TEST(vmrt::validate_spec(v.spec).empty());
    }
    for (const auto& bad : {std::string(), std::string("a/b"), std::string(256, 'n'), std::string(".")}) {
        valid_on_disk v;
        v.spec.netns = bad;
        expect_problem(v.spec, "netns", "network namespace name");
    }
    {
        valid_on_disk v;
        v.spec.machine_id = std::vector<std::uint8_t>(65, 1);
        expect_problem(v.spec, "machine_id", "1 to 64 bytes");
        v.spec.machine_id = std::vector<std::uint8_t>(64, 1);
        BOOST_TEST(vmrt::validate_spec(v.spec).empty());
    }
}

BOOST_AUTO_TEST_CASE(all_problems_are_reported) {
    valid_on_disk v;
    v.spec.name = "bad name";
    v.spec.kernel = v.dir / "missing";
    v.spec.cpus = 0;
    v.spec.memory_mib = 8;
    v.spec.data_disks[0].path = v.dir / "root.img";
    v.spec.networks[1].tap_name = "this-name-is-too-long";
    v.spec.shared_dirs[1].tag = "share0";
    v.spec.vsock->cid = 1;
    v.spec.netns = "a/b";
    const auto problems = vmrt::validate_spec(v.spec);
    const std::vector<std::string> expected{"name",
                                            "kernel",
                                            "cpus",
                                            "memory_mib",
                                            "balloon.initial_mib",
                                            "data_disks[0].path",
                                            "networks[1].tap",
                                            "shared_dirs[1].tag",
                                            "vsock.cid",
                                            "netns"};
    BOOST_TEST(fields_of(problems) == expected, boost::test_tools::per_element());
    for (const auto& p : problems) BOOST_TEST(!p.message.empty());
}

// ---------------------------------------------------------------------------------------------
// load_spec_file.

BOOST_AUTO_TEST_CASE(load_spec_file_resolves_against_the_file) {
    vmrt::test::temp_dir dir;
    fs::create_directories(dir / "vms" / "images");
    vmrt::test::write_file(dir / "vms" / "images" / "vmlinuz", "k");
    vmrt::test::write_file(dir / "vms" / "root.img", "r");
    vmrt::test::write_file(dir / "vms" / "web.json", R"({"name": "web", "kernel": "images/vmlinuz",
        "root_disk": "root.img", "serial_log": "serial.log"})");
    const auto spec = vmrt::load_spec_file(dir / "vms" / "web.json");
    BOOST_TEST(spec.kernel == dir / "vms" / "images" / "vmlinuz");
    BOOST_TEST(spec.root_disk->path == dir / "vms" / "root.img");
    BOOST_TEST(spec.serial_log == dir / "vms" / "serial.log");
}

BOOST_AUTO_TEST_CASE(load_spec_file_errors) {
    vmrt::test::temp_dir dir;
    const auto expect_throw = [](const fs::path& file, vmrt::error_code code, const std::string& field,
                                 std::initializer_list<std::string> fragments) {
        try {
            (void)vmrt::load_spec_file(file);
            BOOST_FAIL("no exception for " << file);
        } catch (const vmrt::error& e) {
            BOOST_TEST(e.code() == code, e.code().message());
            BOOST_TEST(e.diag().field == field);
            for (const auto& fragment : fragments)
                BOOST_TEST(e.diag().message.find(fragment) != std::string::npos,
                           "message \"" << e.diag().message << "\" lacks \"" << fragment << "\"");
        }
    };
    const auto system = [](int err) {
        return vmrt::error_code(err, boost::system::system_category());
    };
    const vmrt::error_code invalid = vmrt::errc::invalid_spec;

    expect_throw(dir / "missing.json", system(ENOENT), "", {"missing.json", "No such file"});
    expect_throw(dir.path(), system(EISDIR), "", {"cannot read VM spec file", "Is a directory"});

    vmrt::test::write_file(dir / "broken.json", "{\n\"name\": \"a\"\n");
    expect_throw(dir / "broken.json", invalid, "", {"broken.json", "invalid JSON at line 3"});

    vmrt::test::write_file(dir / "typo.json", R"({"name": "a", "cpu": 2})");
    expect_throw(dir / "typo.json", invalid, "cpu", {"typo.json", "\ncpu: unknown key"});

    vmrt::test::write_file(dir / "bad.json", R"({"name": "-a", "cpus": 0, "kernel": "nope"})");
    expect_throw(dir / "bad.json", invalid, "name",
                 {"bad.json", "\nname: must be", "\nkernel: does not exist", "\ncpus: must be between"});
}

BOOST_AUTO_TEST_CASE(user_nics) {
    auto spec = vmrt::parse_spec_json(
        R"({"name": "vm", "kernel": "/k", "networks": [{"kind": "user", "isolated": true}, {"kind": "user"}]})",
        "/");
    BOOST_TEST_REQUIRE(spec.has_value());
    BOOST_TEST((spec->networks[0].kind == vmrt::nic_kind::user));
    BOOST_TEST(spec->networks[0].isolated);
    BOOST_TEST(!spec->networks[1].isolated);
    auto again = vmrt::parse_spec_json(vmrt::spec_to_json(*spec), "/");
    BOOST_TEST_REQUIRE(again.has_value());
    BOOST_TEST(again->networks[0].isolated);
    auto tap_isolated = vmrt::parse_spec_json(
        R"({"name": "vm", "kernel": "/k", "networks": [{"kind": "tap", "tap": "t0", "isolated": true}]})",
        "/");
    BOOST_TEST_REQUIRE(!tap_isolated.has_value());
    BOOST_TEST(tap_isolated.error().field == "networks[0].isolated");
    auto user_tap = vmrt::parse_spec_json(
        R"({"name": "vm", "kernel": "/k", "networks": [{"kind": "user", "tap": "t0"}]})", "/");
    BOOST_TEST_REQUIRE(!user_tap.has_value());
    BOOST_TEST(user_tap.error().field == "networks[0].tap");
}

BOOST_AUTO_TEST_SUITE_END()
