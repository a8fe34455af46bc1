// Real guests and lib/image: a cloud-init seed ISO written in-process is mounted by the guest and
// read back; a copy-on-write clone and a qcow2 overlay of one ext4 disk each carry a guest's
// writes while the disk they came from stays byte-identical.
#include "guest_fixture.hpp"
#include "support/oci_layout.hpp"
#include "support/registry_env.hpp"
#include "support/test_support.hpp"

#include <vmrt/image/disk.hpp>
#include <vmrt/image/oci_disk.hpp>
#include <vmrt/image/oci_pull.hpp>
#include <vmrt/image/seed.hpp>
#include <vmrt/io/sha256.hpp>
#include <vmrt/vm_manager.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/test/unit_test.hpp>

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using vmrt::test::console_lines;
using vmrt::test::contains;
using vmrt::test::debugfs_cat;
using vmrt::test::has_line;
using vmrt::test::run_coro;
using vmrt::test::run_tool;

namespace {

// The console lines between the guest's VMRS_CIDATA_META_BEGIN and _END markers.
std::vector<std::string> printed_meta_data(const std::string& console) {
    std::vector<std::string> out;
    bool inside = false;
    for (auto& line : console_lines(console)) {
        if (line == "VMRS_CIDATA_META_END") break;
        if (inside) out.push_back(line);
        if (line == "VMRS_CIDATA_META_BEGIN") inside = true;
    }
    return out;
}

using fixture = vmrt::test::guest_fixture;

}  // namespace

BOOST_FIXTURE_TEST_SUITE(qemu_image_test, fixture)

BOOST_AUTO_TEST_CASE(the_guest_reads_the_meta_data_of_a_seed_iso_written_in_process) {
    vmrt::image::seed_config seed;
    seed.meta_data.instance_id = "i-0123456789abcdef";
    seed.meta_data.hostname = "seeded-guest";
    seed.user_data.runcmd.push_back({"echo", "a: b # not a comment", "- not a list", "{not: a map}"});
    seed.network_config = vmrt::image::seed_network_config{};
    seed.network_config->ethernets.push_back(
        {.id = "eth0", .match_macaddress = "52:54:00:12:34:56", .addresses = {"10.0.2.15/24"}});
    vmrt::image::write_seed_iso(seed, dir / "seed.iso");
    const auto expected = console_lines(vmrt::image::render_seed(seed).meta_data);

    auto s = spec("seeded", "vmrs.cidata=1");
    s.seed_iso = dir / "seed.iso";
    run_coro(
        ctx,
        [&]() -> asio::awaitable<void> {
            co_await boot(s);
            const auto text = console("seeded");
            const auto printed = printed_meta_data(text);
            BOOST_TEST_MESSAGE("meta-data as the guest read it:" << vmrt::test::lines_starting(text, ""));
            BOOST_TEST_REQUIRE(!printed.empty(), text);
            BOOST_TEST(printed == expected, boost::test_tools::per_element());
            BOOST_TEST(contains(text, "seeded-guest"));
            co_await stop_clean("seeded");
        },
        120s);
}

BOOST_AUTO_TEST_CASE(clone_and_overlay_carry_guest_writes_and_spare_their_base) {
    const auto base = dir / "base.img", clone = dir / "clone.img", overlay = dir / "overlay.qcow2";
    run_coro(
        ctx,
        [&]() -> asio::awaitable<void> {
            // A named options object: GCC 12 destroys a braced temporary inside co_await twice.
            vmrt::image::ext4_disk_options e;
            e.path = base;
            e.size_bytes = 64 << 20;
            e.label = "base";
            co_await vmrt::image::create_ext4_disk(e);
            auto cloned = vmrt::image::clone_disk(base, clone);
            BOOST_TEST_MESSAGE("clone: " << vmrt::image::to_string(cloned.method) << ", "
                                         << cloned.bytes_shared << " bytes shared, " << cloned.bytes_copied
                                         << " copied");
            vmrt::image::qcow2_overlay_options o;
            o.base = base;
            o.overlay = overlay;
            o.base_format = "raw";
            auto info = co_await vmrt::image::create_qcow2_overlay(o);
            BOOST_TEST(info.format == "qcow2");
        },
        60s);
    const auto base_digest = vmrt::io::sha256_of_file(base);

    auto on_clone = spec("on-clone", "vmrs.datadisk=/dev/vda vmrs.datawrite=written-to-the-clone");
    on_clone.data_disks.push_back({.path = clone});
    auto on_overlay = spec("on-overlay", "vmrs.datadisk=/dev/vda vmrs.datawrite=written-to-the-overlay");
    on_overlay.data_disks.push_back({.path = overlay});
    std::vector<vmrt::vm_spec> both;
    both.push_back(on_clone);
    both.push_back(on_overlay);
    run_coro(
        ctx,
        [&]() -> asio::awaitable<void> {
            co_await boot(both);
            for (auto vm : {"on-clone", "on-overlay"}) {
                BOOST_TEST(has_line(console(vm), "VMRS_DATAWRITE ok"), console(vm));
                co_await stop_clean(vm);
            }
            auto from_clone = co_await debugfs_cat(clone, "/hello.txt");
            BOOST_TEST(contains(from_clone.output, "written-to-the-clone\n"), from_clone.output);
            // The overlay's data is read through qemu-img, which resolves the backing chain.
            const auto flat = dir / "overlay-flat.img";
            auto convert = co_await run_tool(
                "qemu-img", vmrt::test::strings("convert", "-O", "raw", overlay.string(), flat.string()),
                dir / "convert.log");
            BOOST_TEST_REQUIRE(convert.status.success(), convert.output);
            auto from_overlay = co_await debugfs_cat(flat, "/hello.txt");
            BOOST_TEST(contains(from_overlay.output, "written-to-the-overlay\n"), from_overlay.output);
            auto from_base = co_await debugfs_cat(base, "/hello.txt");
            BOOST_TEST(!contains(from_base.output, "written-to"), from_base.output);
        },
        150s);
    BOOST_TEST(vmrt::io::sha256_of_file(base) == base_digest, "the base disk changed");
}

BOOST_AUTO_TEST_CASE(a_guest_boots_from_a_disk_made_from_a_pulled_image) {
    // An image with a system of its own (static busybox and an /sbin/init that reports readiness),
    // in two layers with a whiteout, is pushed to a real registry, pulled, made into an ext4 disk
    // and cloned; the default guest's initramfs switches to it (vmrs.root=) and its init says Ready.
    vmrt::test::registry_server reg;
    vmrt::test::temp_dir layout;
    const std::string init_script = "#!/bin/busybox sh\n"
                                    "/bin/busybox mount -t proc proc /proc\n"
                                    "echo \"VMRS_IMAGE_ROOT $(/bin/busybox cat /etc/vmrt-image) "
                                    "$(/bin/busybox ls /etc | /bin/busybox tr '\\n' ' ')\"\n"
                                    "echo \"VMRS_READY ${VMRS_ADDRESS:--}\"\n"
                                    "while true; do /bin/busybox sleep 3600; done\n";
    vmrt::test::oci_image_builder b;
    b.layer({vmrt::test::dir("bin"),
             vmrt::test::file("bin/busybox", vmrt::test::read_file("/bin/busybox"), 0755),
             vmrt::test::symlink_to("bin/sh", "busybox"), vmrt::test::dir("sbin"),
             vmrt::test::file("sbin/init", init_script, 0755), vmrt::test::dir("etc"),
             vmrt::test::file("etc/vmrt-image", "pulled-from-the-registry"),
             vmrt::test::file("etc/removed", "x"), vmrt::test::dir("proc"), vmrt::test::dir("dev"),
             vmrt::test::dir("sys")})
        .layer({vmrt::test::whiteout("etc/removed"), vmrt::test::file("etc/added", "y")});
    const auto img = b.write(layout.path(), "v1");
    vmrt::test::push_image(layout.path(), "v1", reg, "vmrt/bootable:v1");

    vmrt::image::oci_store store(dir / "images");
    const auto root = dir / "root.img";
    run_coro(
        ctx,
        [&]() -> asio::awaitable<void> {
            vmrt::image::pull_options o;
            o.client.tls.ca_file = reg.ca_file();
            o.credentials = vmrt::image::registry_credentials{};
            auto ref = vmrt::image::parse_image_reference(reg.host_port() + "/vmrt/bootable:v1");
            auto pulled = co_await vmrt::image::pull_image(store, ref, o);
            BOOST_TEST(pulled.manifest_digest == img.manifest.digest);
            auto disk = co_await vmrt::image::image_disk(store, pulled.manifest_digest, dir / "disks", root);
            BOOST_TEST(disk.built);
        },
        120s);

    auto s = spec("from-image", "vmrs.ip=10.0.2.15 vmrs.root=/dev/vda");
    s.root_disk = vmrt::disk_spec{.path = root};
    run_coro(
        ctx,
        [&]() -> asio::awaitable<void> {
            co_await boot(s);
            const auto out = console("from-image");
            BOOST_TEST(contains(out, "VMRS_IMAGE_ROOT pulled-from-the-registry added vmrt-image"), out);
            BOOST_TEST(contains(out, "vmrs: switching to the root file system on /dev/vda"), out);
            auto [ec, outcome] =
                co_await manager->async_kill("from-image", asio::as_tuple(asio::use_awaitable));
            BOOST_TEST(!ec, ec.message());
        },
        150s);
}

BOOST_AUTO_TEST_SUITE_END()
