// The default guest image: the initramfs writer, the .deb unpacker (against hostile packages
// crafted here with libarchive), module dependency closure, the guest's shell scripts, and a
// real build from the Debian cloud kernel package.
//
// The real build needs apt and the Debian mirror (reachable on the project's machines). The
// downloaded kernel package (~27 MB) is kept in $VMRT_TEST_CACHE, or /var/cache/vmrt-test, so
// that repeated runs download it once; everything else goes to the test's temp dir.
#include "image/cpio_writer.hpp"
#include "image/deb_unpack.hpp"
#include "image/guest_build.hpp"
#include "image/guest_init.hpp"
#include "image/kernel_modules.hpp"
#include "support/test_support.hpp"

#include <vmrt/image/guest_image.hpp>
#include <vmrt/io/process.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/test/unit_test.hpp>

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using namespace vmrt::image;
using vmrt::test::read_file;
using vmrt::test::temp_dir;
using vmrt::test::write_file;

// ---- reading archives back with libarchive ------------------------------------------------------

struct read_entry {
    unsigned type = 0;  // AE_IFREG, AE_IFDIR, ...
    unsigned perm = 0;
    std::string data;  // file contents or symlink target
    long long uid = -1, gid = -1, mtime = -1;
    dev_t rdev = 0;
};

struct reader_free {
    void operator()(struct archive* a) const { archive_read_free(a); }
};

/// Every entry of an archive (any format and filter libarchive knows), in archive order.
std::vector<std::pair<std::string, read_entry>> read_archive(const std::string& bytes) {
    std::unique_ptr<struct archive, reader_free> a(archive_read_new());
    archive_read_support_filter_all(a.get());
    archive_read_support_format_all(a.get());
    BOOST_REQUIRE(archive_read_open_memory(a.get(), bytes.data(), bytes.size()) == ARCHIVE_OK);
    std::vector<std::pair<std::string, read_entry>> out;
    archive_entry* e = nullptr;
    while (archive_read_next_header(a.get(), &e) == ARCHIVE_OK) {
        read_entry r;
        r.type = archive_entry_filetype(e);
        r.perm = archive_entry_perm(e);
        r.uid = archive_entry_uid(e);
        r.gid = archive_entry_gid(e);
        r.mtime = archive_entry_mtime(e);
        r.rdev = archive_entry_rdev(e);
        if (r.type == AE_IFLNK) r.data = archive_entry_symlink(e);
        char buffer[65536];
        la_ssize_t n;
        while ((n = archive_read_data(a.get(), buffer, sizeof buffer)) > 0)
            r.data.append(buffer, static_cast<std::size_t>(n));
        out.emplace_back(archive_entry_pathname(e), std::move(r));
    }
    return out;
}

std::map<std::string, read_entry> as_map(const std::vector<std::pair<std::string, read_entry>>& entries) {
    return {entries.begin(), entries.end()};
}

// ---- crafting packages ---------------------------------------------------------------------------

struct member {
    std::string name;
    std::string data;
    unsigned type = AE_IFREG;
    std::string link;  // symlink target
};

struct writer_free {
    void operator()(struct archive* a) const { archive_write_free(a); }
};

la_ssize_t append(struct archive*, void* out, const void* buffer, size_t n) {
    static_cast<std::string*>(out)->append(static_cast<const char*>(buffer), n);
    return static_cast<la_ssize_t>(n);
}

/// An archive in memory: `format` is a libarchive format setter, gzip on request.
std::string make_archive(int (*format)(struct archive*), const std::vector<member>& members, bool gzip) {
    std::unique_ptr<struct archive, writer_free> a(archive_write_new());
    format(a.get());
    if (gzip) archive_write_add_filter_gzip(a.get());
    std::string out;
    BOOST_REQUIRE(archive_write_open2(a.get(), &out, nullptr, append, nullptr, nullptr) == ARCHIVE_OK);
    for (const auto& m : members) {
        archive_entry* e = archive_entry_new();
        archive_entry_set_pathname(e, m.name.c_str());
        archive_entry_set_filetype(e, m.type);
        archive_entry_set_perm(e, m.type == AE_IFDIR ? 0755 : 0644);
        archive_entry_set_size(e, m.type == AE_IFREG ? static_cast<la_int64_t>(m.data.size()) : 0);
        if (m.type == AE_IFLNK) archive_entry_set_symlink(e, m.link.c_str());
        BOOST_REQUIRE(archive_write_header(a.get(), e) == ARCHIVE_OK);
        if (m.type == AE_IFREG && !m.data.empty()) archive_write_data(a.get(), m.data.data(), m.data.size());
        archive_entry_free(e);
    }
    archive_write_close(a.get());
    return out;
}

/// A .deb: ar(debian-binary, control.tar.gz, data.tar.gz) with the given data members.
void write_deb(const fs::path& file, const std::vector<member>& data) {
    const std::string control =
        make_archive(archive_write_set_format_pax_restricted, {{"./control", "Package: x\n"}}, true);
    const std::string payload = make_archive(archive_write_set_format_pax_restricted, data, true);
    write_file(file, make_archive(
                         archive_write_set_format_ar_svr4,
                         {{"debian-binary", "2.0\n"}, {"control.tar.gz", control}, {"data.tar.gz", payload}},
                         false));
}

/// Everything goes to the same relative path: the unpacker's own checks are what is tested.
std::optional<std::string> keep_all(std::string_view path) { return std::string(path); }

void check_rejected(const std::vector<member>& data, const std::string& needle) {
    temp_dir dir;
    write_deb(dir / "bad.deb", data);
    fs::create_directories(dir / "out");
    try {
        unpack_deb(dir / "bad.deb", dir / "out", keep_all);
        BOOST_FAIL("a hostile package was accepted (" << needle << ")");
    } catch (const vmrt::error& e) {
        BOOST_TEST((e.code() == vmrt::errc::protocol_error), e.code().message());
        BOOST_TEST(std::string(e.what()).find(needle) != std::string::npos, e.what());
    }
    // Nothing may have landed next to the destination.
    for (const auto& entry : fs::directory_iterator(dir.path()))
        BOOST_TEST((entry.path().filename() == "bad.deb" || entry.path().filename() == "out"), entry.path());
}

// ---- running helpers -------------------------------------------------------------------------------

/// Where the test keeps the kernel package between runs; without a writable shared place
/// (not root), the test's own temp dir (one download per run).
fs::path test_package_cache(const temp_dir& fallback) {
    if (const char* dir = std::getenv("VMRT_TEST_CACHE"); dir && *dir) return dir;
    std::error_code ec;
    fs::create_directories("/var/cache/vmrt-test", ec);
    if (!ec && ::access("/var/cache/vmrt-test", W_OK) == 0) return "/var/cache/vmrt-test";
    return fallback / "packages";
}

}  // namespace

BOOST_AUTO_TEST_SUITE(guest_image_test)

// ---- initramfs writer --------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(cpio_round_trip_keeps_entries_modes_and_order) {
    cpio_archive cpio;
    cpio.add_file("init", "#!/bin/sh\n", 0755);
    cpio.add_file("etc/acpi/PWRF/00000080", "#!/bin/sh\npoweroff -f\n", 0755);
    cpio.add_symlink("bin/sh", "/bin/busybox");
    cpio.add_char_device("dev/console", 5, 1, 0600);
    cpio.add_directory("tmp", 01777);
    cpio.add_file("etc/vmrs-modules", "virtio\n");

    for (bool gzip : {false, true}) {
        const std::string bytes = cpio.write(gzip);
        if (gzip) {
            BOOST_REQUIRE(bytes.size() > 10);
            BOOST_TEST((static_cast<unsigned char>(bytes[0]) == 0x1f &&
                        static_cast<unsigned char>(bytes[1]) == 0x8b));
            BOOST_TEST(bytes.substr(4, 4) == std::string(4, '\0'));  // no build time in the gzip header
        } else {
            BOOST_TEST(bytes.substr(0, 6) == "070701");  // newc magic
        }
        auto entries = read_archive(bytes);
        std::vector<std::string> names;
        for (auto& [name, e] : entries) {
            names.push_back(name);
            BOOST_TEST(e.uid == 0);
            BOOST_TEST(e.gid == 0);
            BOOST_TEST(e.mtime == 0);
        }
        // Sorted, parents before children, missing parents added.
        const std::vector<std::string> expected{"bin",
                                                "bin/sh",
                                                "dev",
                                                "dev/console",
                                                "etc",
                                                "etc/acpi",
                                                "etc/acpi/PWRF",
                                                "etc/acpi/PWRF/00000080",
                                                "etc/vmrs-modules",
                                                "init",
                                                "tmp"};
        BOOST_TEST(names == expected, boost::test_tools::per_element());
        auto m = as_map(entries);
        BOOST_TEST(m["init"].type == AE_IFREG);
        BOOST_TEST(m["init"].perm == 0755U);
        BOOST_TEST(m["init"].data == "#!/bin/sh\n");
        BOOST_TEST(m["etc/vmrs-modules"].perm == 0644U);
        BOOST_TEST(m["bin/sh"].type == AE_IFLNK);
        BOOST_TEST(m["bin/sh"].data == "/bin/busybox");
        BOOST_TEST(m["dev/console"].type == AE_IFCHR);
        BOOST_TEST(major(m["dev/console"].rdev) == 5U);
        BOOST_TEST(minor(m["dev/console"].rdev) == 1U);
        BOOST_TEST(m["tmp"].type == AE_IFDIR);
        BOOST_TEST(m["tmp"].perm == 01777U);
        BOOST_TEST(m["etc/acpi"].perm == 0755U);
    }
    BOOST_TEST(cpio.write(true) == cpio.write(true));  // reproducible
}

BOOST_AUTO_TEST_CASE(cpio_is_readable_by_busybox_cpio) {
    // A second, independent reader (libarchive wrote it): busybox's own cpio.
    temp_dir dir;
    cpio_archive cpio;
    cpio.add_file("init", "echo hi\n", 0755);
    cpio.add_symlink("bin/sh", "/bin/busybox");
    write_file(dir / "a.cpio", cpio.write(false));
    auto [code, output] =
        vmrt::test::run_to_end("/bin/busybox", {"cpio", "-tv", "-F", (dir / "a.cpio").string()});
    BOOST_TEST(code == 0, output);
    BOOST_TEST(output.find("-rwxr-xr-x") != std::string::npos, output);
    BOOST_TEST(output.find("init") != std::string::npos, output);
    BOOST_TEST(output.find("bin/sh -> /bin/busybox") != std::string::npos, output);
}

BOOST_AUTO_TEST_CASE(cpio_rejects_hostile_and_conflicting_names) {
    for (const char* bad :
         {"", "/init", "../etc/passwd", "a/../../b", "a//b", "a/./b", ".", "..", "dir/", "/"}) {
        cpio_archive cpio;
        BOOST_CHECK_THROW(cpio.add_file(bad, "x"), std::invalid_argument);
        BOOST_CHECK_THROW(cpio.add_directory(bad), std::invalid_argument);
        BOOST_TEST(cpio.size() == 0U);
    }
    cpio_archive cpio;
    cpio.add_file("./bin/busybox", "elf", 0755);  // "./" is accepted and dropped
    BOOST_TEST(cpio.contains("bin/busybox"));
    BOOST_CHECK_NO_THROW(cpio.add_file("bin/busybox", "elf", 0755));  // same entry again: fine
    BOOST_CHECK_THROW(cpio.add_file("bin/busybox", "other"), std::invalid_argument);
    BOOST_CHECK_THROW(cpio.add_file("bin/busybox/x", "under a file"), std::invalid_argument);
    BOOST_CHECK_THROW(cpio.add_symlink("bin/sh", ""), std::invalid_argument);
    BOOST_TEST(safe_relative_path("./lib/modules/x.ko").value_or("?") == "lib/modules/x.ko");
    BOOST_TEST(!safe_relative_path(std::string_view("a\0b", 3)));
}

// ---- .deb unpacking -------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(deb_unpack_extracts_selected_files) {
    temp_dir dir;
    write_deb(dir / "k.deb", {{"./", "", AE_IFDIR},
                              {"./boot/", "", AE_IFDIR},
                              {"./boot/vmlinuz-1.0-test", "KERNEL"},
                              {"./boot/config-1.0-test", "CONFIG"},
                              {"./lib/modules/1.0-test/kernel/a.ko", "A"},
                              {"./lib/modules/1.0-test/kernel/link.ko", "", AE_IFLNK, "a.ko"}});
    fs::create_directories(dir / "out");
    auto written =
        unpack_deb(dir / "k.deb", dir / "out", [](std::string_view path) -> std::optional<std::string> {
            if (path == "boot/vmlinuz-1.0-test") return "boot/vmlinuz";
            if (path.starts_with("lib/modules/")) return std::string(path);
            return std::nullopt;
        });
    const std::vector<std::string> expected{"boot/vmlinuz", "lib/modules/1.0-test/kernel/a.ko"};
    BOOST_TEST(written == expected, boost::test_tools::per_element());
    BOOST_TEST(read_file(dir / "out/boot/vmlinuz") == "KERNEL");
    BOOST_TEST(read_file(dir / "out/lib/modules/1.0-test/kernel/a.ko") == "A");
    BOOST_TEST(!fs::exists(dir / "out/boot/config-1.0-test"));
    BOOST_TEST(!fs::exists(
        fs::symlink_status(dir / "out/lib/modules/1.0-test/kernel/link.ko")));  // links never created
}

BOOST_AUTO_TEST_CASE(deb_unpack_rejects_traversal_and_absolute_paths) {
    check_rejected({{"./ok", "fine"}, {"../escaped", "evil"}}, "../escaped");
    check_rejected({{"./a/../../escaped", "evil"}}, "escaped");
    check_rejected({{"/etc/vmrt-test-escaped", "evil"}}, "/etc/vmrt-test-escaped");
    BOOST_TEST(!fs::exists("/etc/vmrt-test-escaped"));
}

BOOST_AUTO_TEST_CASE(deb_unpack_never_follows_a_planted_symlink) {
    // "lib" -> the test's parent dir, then "lib/escaped": the link is not created, so the file
    // lands in a real directory inside the destination.
    temp_dir dir;
    fs::create_directories(dir / "out");
    fs::create_directories(dir / "outside");
    write_deb(dir / "k.deb",
              {{"./lib", "", AE_IFLNK, (dir / "outside").string()}, {"./lib/escaped", "evil"}});
    unpack_deb(dir / "k.deb", dir / "out", keep_all);
    BOOST_TEST(fs::is_directory(fs::symlink_status(dir / "out/lib")));
    BOOST_TEST(read_file(dir / "out/lib/escaped") == "evil");
    BOOST_TEST(fs::is_empty(dir / "outside"));

    // And a link that exists already (planted by someone else) makes the write fail, not escape.
    temp_dir dir2;
    fs::create_directories(dir2 / "out");
    fs::create_directories(dir2 / "outside");
    fs::create_directory_symlink(dir2 / "outside", dir2 / "out/lib");
    write_deb(dir2 / "k.deb", {{"./lib/escaped", "evil"}});
    BOOST_CHECK_THROW(unpack_deb(dir2 / "k.deb", dir2 / "out", keep_all), vmrt::error);
    BOOST_TEST(fs::is_empty(dir2 / "outside"));
}

BOOST_AUTO_TEST_CASE(deb_unpack_rejects_what_is_not_a_package) {
    temp_dir dir;
    fs::create_directories(dir / "out");
    write_file(dir / "junk.deb", std::string(4096, 'x'));
    BOOST_CHECK_EXCEPTION(unpack_deb(dir / "junk.deb", dir / "out", keep_all), vmrt::error,
                          [](const vmrt::error& e) { return e.code() == vmrt::errc::protocol_error; });
    write_file(dir / "nodata.deb",
               make_archive(archive_write_set_format_ar_svr4, {{"debian-binary", "2.0\n"}}, false));
    BOOST_CHECK_EXCEPTION(unpack_deb(dir / "nodata.deb", dir / "out", keep_all), vmrt::error,
                          [](const vmrt::error& e) { return e.code() == vmrt::errc::protocol_error; });
}

// ---- modules -----------------------------------------------------------------------------------------

constexpr std::string_view sample_modules_dep =
    "kernel/drivers/virtio/virtio_ring.ko:\n"
    "kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko\n"
    "kernel/net/core/failover.ko:\n"
    "kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko\n"
    "kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko "
    "kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko\n"
    "kernel/drivers/char/hw_random/virtio-rng.ko: kernel/drivers/virtio/virtio.ko "
    "kernel/drivers/virtio/virtio_ring.ko\n"
    "kernel/drivers/input/evdev.ko:\n"
    "kernel/drivers/unused.ko:\n";

BOOST_AUTO_TEST_CASE(module_closure_lists_dependencies_first) {
    auto c = resolve_module_closure(sample_modules_dep, {"virtio_net", "virtio_rng", "evdev", "ext4"});
    const std::vector<std::string> expected{
        "kernel/net/core/failover.ko",          "kernel/drivers/net/net_failover.ko",
        "kernel/drivers/virtio/virtio_ring.ko", "kernel/drivers/virtio/virtio.ko",
        "kernel/drivers/net/virtio_net.ko",     "kernel/drivers/char/hw_random/virtio-rng.ko",
        "kernel/drivers/input/evdev.ko"};
    BOOST_TEST(c.paths == expected, boost::test_tools::per_element());
    BOOST_TEST(c.missing == std::vector<std::string>{"ext4"}, boost::test_tools::per_element());

    // Every module comes after all of its dependencies.
    auto pos = [&](std::string_view p) {
        return std::find(c.paths.begin(), c.paths.end(), p) - c.paths.begin();
    };
    BOOST_TEST(pos("kernel/drivers/virtio/virtio_ring.ko") < pos("kernel/drivers/virtio/virtio.ko"));
}

BOOST_AUTO_TEST_CASE(module_names_and_builtins) {
    BOOST_TEST(module_name("kernel/drivers/char/hw_random/virtio-rng.ko") == "virtio_rng");
    BOOST_TEST(module_name("virtio-rng") == "virtio_rng");
    BOOST_TEST(module_name("kernel/fs/isofs/isofs.ko.xz") == "isofs");
    auto builtin = builtin_module_names("kernel/fs/ext4/ext4.ko\nkernel/fs/jbd2/jbd2.ko\n\n");
    BOOST_TEST(builtin.size() == 2U);
    BOOST_TEST(builtin.contains("ext4"));
}

BOOST_AUTO_TEST_CASE(module_closure_rejects_malformed_input) {
    auto is_protocol_error = [](const vmrt::error& e) {
        return e.code() == vmrt::errc::protocol_error;
    };
    BOOST_CHECK_EXCEPTION(resolve_module_closure("a.ko: b.ko\nb.ko: a.ko\n", {"a"}), vmrt::error,
                          is_protocol_error);
    BOOST_CHECK_EXCEPTION(resolve_module_closure("no colon here\n", {"a"}), vmrt::error, is_protocol_error);
    BOOST_CHECK_EXCEPTION(resolve_module_closure("a.ko: missing.ko\n", {"a"}), vmrt::error,
                          is_protocol_error);
}

// ---- small helpers -----------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(kernel_package_selection) {
    const std::string listing = "linux-image-6.1.0-9-cloud-amd64 - Linux 6.1 for x86-64 cloud (signed)\n"
                                "linux-image-6.1.0-56-cloud-amd64 - Linux 6.1 for x86-64 cloud (signed)\n"
                                "linux-image-6.1.0-56-cloud-amd64-unsigned - Linux 6.1 (unsigned)\n"
                                "linux-image-6.1.0-100x-cloud-amd64 - not a number\n"
                                "linux-image-6.1.0-55-cloud-amd64 - Linux 6.1 for x86-64 cloud (signed)\n"
                                "W: some apt warning\n";
    BOOST_TEST(pick_newest_kernel_package(listing).value_or("?") == "linux-image-6.1.0-56-cloud-amd64");
    BOOST_TEST(!pick_newest_kernel_package("W: nothing\n"));
    BOOST_TEST(kernel_version_of_package("linux-image-6.1.0-56-cloud-amd64") == "6.1.0-56-cloud-amd64");
    BOOST_TEST(kernel_version_of_package("linux-image-6.1.0-56-cloud-amd64-unsigned") ==
               "6.1.0-56-cloud-amd64");
    BOOST_TEST(kernel_version_of_package("busybox").empty());
}

BOOST_AUTO_TEST_CASE(static_busybox_and_bzimage_checks) {
    BOOST_TEST(is_static_x86_64_elf(read_file("/bin/busybox")));     // busybox-static
    BOOST_TEST(!is_static_x86_64_elf(read_file("/proc/self/exe")));  // this test: dynamically linked
    BOOST_TEST(!is_static_x86_64_elf("#!/bin/sh\n"));
    std::string kernel(0x300, '\0');
    BOOST_TEST(!is_bzimage(kernel));
    kernel.replace(0x202, 4, "HdrS");
    BOOST_TEST(is_bzimage(kernel));
    BOOST_TEST(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

// ---- the guest's scripts ---------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(guest_scripts_pass_the_busybox_syntax_check) {
    temp_dir dir;
    write_file(dir / "init", std::string(guest_init_script()));
    write_file(dir / "powerbutton", std::string(guest_powerbutton_script()));
    for (const char* script : {"init", "powerbutton"}) {
        auto [code, output] = vmrt::test::run_to_end("/bin/busybox", {"sh", "-n", (dir / script).string()});
        BOOST_TEST(code == 0, script << ": " << output);
    }
    BOOST_TEST(guest_init_script().starts_with("#!/bin/sh\n"));
    BOOST_TEST(guest_powerbutton_script().find("poweroff -f") != std::string_view::npos);
    for (std::string_view marker : {"VMRS_READY", "VMRS_CIDATA_META_BEGIN", "VMRS_CIDATA_META_END",
                                    "VMRS_COUNTER", "/etc/vmrs-modules", "acpid -c /etc/acpi"})
        BOOST_TEST(guest_init_script().find(marker) != std::string_view::npos, marker);
}

// ---- a real build --------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(builds_the_default_guest_and_reuses_the_cache) {
    temp_dir dir;
    guest_build_options options;
    options.data_dir = dir / "data";
    options.package_cache = test_package_cache(dir);
    std::vector<std::string> steps;
    options.progress = [&](std::string line) {
        steps.push_back(std::move(line));
    };

    const auto first = build_default_guest(options);
    BOOST_TEST_MESSAGE("built " << first.directory << " in steps: " << steps.size());
    BOOST_TEST(first.kernel_version.starts_with("6.1.0-"));
    BOOST_TEST(first.kernel.parent_path() == first.directory);

    // The kernel is a bzImage, the initramfs a gzip newc archive with everything /init needs.
    const std::string kernel = read_file(first.kernel);
    BOOST_TEST(kernel.substr(0x202, 4) == "HdrS");
    BOOST_TEST(sha256_hex(kernel) == first.kernel_sha256);
    const std::string initramfs = read_file(first.initramfs);
    BOOST_TEST(sha256_hex(initramfs) == first.initramfs_sha256);
    BOOST_TEST(initramfs.substr(0, 2) == "\x1f\x8b");
    auto entries = as_map(read_archive(initramfs));
    BOOST_TEST(entries["init"].type == AE_IFREG);
    BOOST_TEST(entries["init"].perm == 0755U);
    BOOST_TEST(entries["init"].data == std::string(guest_init_script()));
    BOOST_TEST(is_static_x86_64_elf(entries["bin/busybox"].data));
    BOOST_TEST(entries["bin/sh"].data == "/bin/busybox");
    BOOST_TEST(entries["sbin/modprobe"].data == "/bin/busybox");
    BOOST_TEST(entries["etc/acpi/PWRF/00000080"].perm == 0755U);
    BOOST_TEST(entries["dev/console"].type == AE_IFCHR);

    const std::string moddir = "lib/modules/" + first.kernel_version + "/";
    const std::string dep = entries[moddir + "modules.dep"].data;
    BOOST_TEST(dep.find("virtio_net.ko:") != std::string::npos);
    const std::string load_list = entries["etc/vmrs-modules"].data;
    for (const auto& wanted : default_guest_modules()) {
        const std::string name = module_name(wanted);
        BOOST_TEST((std::find(first.modules.begin(), first.modules.end(), name) != first.modules.end()),
                   name);
        BOOST_TEST(load_list.find(name + "\n") != std::string::npos, name);
    }
    std::size_t kos = 0;
    for (auto& [name, e] : entries)
        if (name.starts_with(moddir) && name.ends_with(".ko")) ++kos;
    BOOST_TEST(kos == first.modules.size());
    BOOST_TEST(!first.reused);

    // Second call: served from the cache, untouched, quickly.
    const auto written_at = fs::last_write_time(first.initramfs);
    const auto start = std::chrono::steady_clock::now();
    const auto second = build_default_guest(options);
    const auto took = std::chrono::steady_clock::now() - start;
    BOOST_TEST(second.reused);
    BOOST_TEST(second.directory == first.directory);
    BOOST_TEST(second.initramfs_sha256 == first.initramfs_sha256);
    BOOST_TEST((fs::last_write_time(second.initramfs) == written_at));
    BOOST_TEST((took < 15s), "a cache hit took " << std::chrono::duration<double>(took).count() << " s");

    // Forced rebuild: the same bytes again (the build is reproducible).
    options.force = true;
    const auto third = build_default_guest(options);
    BOOST_TEST(!third.reused);
    BOOST_TEST(third.initramfs_sha256 == first.initramfs_sha256);
    BOOST_TEST(third.kernel_sha256 == first.kernel_sha256);
    BOOST_TEST(!fs::exists(first.directory / "replaced"));
    std::size_t dirs = 0;
    for (const auto& entry : fs::directory_iterator(options.data_dir / "guest"))
        if (entry.is_directory()) ++dirs;  // the image dir only: no scratch left behind
    BOOST_TEST(dirs == 1U);
}

BOOST_AUTO_TEST_SUITE_END()
