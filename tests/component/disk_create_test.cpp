// Making disks: sparse raw disks and their resizing, ext4 data disks populated from a folder
// (checked with debugfs and e2fsck), qcow2 overlays (checked with qemu-img info and qemu-io),
// and the errors of each, which must leave nothing behind.
#include "support/scratch_fs.hpp"
#include "support/sparse_files.hpp"
#include "support/test_support.hpp"

#include <vmrt/image/disk.hpp>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/test/unit_test.hpp>

#include <sys/stat.h>

namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace vmrt::image;
using namespace std::chrono_literals;
using namespace boost::asio::experimental::awaitable_operators;
using vmrt::test::run_coro;
using vmrt::test::run_program;
using vmrt::test::strings;

constexpr std::uint64_t MiB = 1 << 20;

boost::system::errc::errc_t sys(boost::system::errc::errc_t e) { return e; }

/// `code`: a vmrt::errc, or a boost::system::errc condition (matches the system category too).
template <typename F, typename Code>
vmrt::error expect_error(F&& f, Code code) {
    try {
        f();
    } catch (const vmrt::error& e) {
        BOOST_TEST_MESSAGE("error as expected: " << e.what());
        BOOST_TEST((e.code() == code), "got " << e.code().message() << ": " << e.what());
        return e;
    }
    BOOST_FAIL("no error was thrown");
    throw;  // unreachable
}

// Synchronous wrappers: each runs one disk coroutine to completion (or to its error) on a private
// io_context. The awaitable is made in a statement of its own (GCC 12 mishandles temporaries
// that live across a co_await).

void make_ext4(const ext4_disk_options& options) {
    run_coro(
        [&]() -> asio::awaitable<void> {
            auto op = create_ext4_disk(options);
            co_await std::move(op);
        },
        60s);
}

disk_info make_overlay(const qcow2_overlay_options& options) {
    disk_info info;
    run_coro(
        [&]() -> asio::awaitable<void> {
            auto op = create_qcow2_overlay(options);
            info = co_await std::move(op);
        },
        60s);
    return info;
}

disk_info info_of(const fs::path& image) {
    disk_info info;
    run_coro(
        [&]() -> asio::awaitable<void> {
            auto op = query_disk_info(image);
            info = co_await std::move(op);
        },
        60s);
    return info;
}

/// `debugfs -R 'cat <file>'` on an ext4 image: the file's contents, read without mounting.
std::string debugfs_cat(const fs::path& image, const std::string& file) {
    auto output = run_program("/usr/sbin/debugfs", strings("-R", "cat " + file, image.string()));
    // Its banner ("debugfs 1.47.0 (5-Feb-2023)") goes to stderr, which shares the output.
    if (output.starts_with("debugfs ")) output.erase(0, output.find('\n') + 1);
    return output;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(disk_create_test)

BOOST_AUTO_TEST_CASE(a_raw_disk_is_sparse_and_of_the_given_size) {
    vmrt::test::temp_dir dir;
    create_raw_disk(dir / "disk.raw", 1024 * MiB);
    BOOST_TEST(fs::file_size(dir / "disk.raw") == 1024 * MiB);
    BOOST_TEST(vmrt::test::allocated_bytes(dir / "disk.raw") == 0U);
    BOOST_TEST(vmrt::test::dir_entries(dir.path()) == strings("disk.raw"), boost::test_tools::per_element());

    vmrt::test::fill_range(dir / "disk.raw", 0, 4096, 0x11);
    auto e = expect_error([&] { create_raw_disk(dir / "disk.raw", 2 * MiB); },
                          sys(boost::system::errc::file_exists));
    BOOST_TEST(e.diag().field == "path");
    BOOST_TEST(fs::file_size(dir / "disk.raw") == 1024 * MiB);  // untouched
    create_raw_disk(dir / "disk.raw", 2 * MiB, true);
    BOOST_TEST(fs::file_size(dir / "disk.raw") == 2 * MiB);
    BOOST_TEST(vmrt::test::allocated_bytes(dir / "disk.raw") == 0U);  // a fresh disk, not a truncated one
}

BOOST_AUTO_TEST_CASE(raw_disk_sizes_must_be_whole_sectors) {
    vmrt::test::temp_dir dir;
    for (std::uint64_t bad : {std::uint64_t{0}, std::uint64_t{1000}, std::uint64_t{MiB + 1}}) {
        auto e = expect_error([&] { create_raw_disk(dir / "disk.raw", bad); },
                              sys(boost::system::errc::invalid_argument));
        BOOST_TEST(e.diag().field == "size_bytes");
    }
    BOOST_TEST(vmrt::test::dir_entries(dir.path()).empty());
}

BOOST_AUTO_TEST_CASE(resizing_grows_with_a_hole_and_shrinks_only_when_asked) {
    vmrt::test::temp_dir dir;
    const auto disk = dir / "disk.raw";
    vmrt::test::make_sparse_file(disk, 8 * MiB, {{0, MiB}, {7 * MiB, MiB}});
    vmrt::test::make_sparse_file(dir / "expected.raw", 8 * MiB, {{0, MiB}, {7 * MiB, MiB}});
    const auto allocated = vmrt::test::allocated_bytes(disk);

    resize_raw_disk(disk, 64 * MiB);
    BOOST_TEST(fs::file_size(disk) == 64 * MiB);
    BOOST_TEST(vmrt::test::allocated_bytes(disk) == allocated);  // the new 56 MiB are a hole
    resize_raw_disk(dir / "expected.raw", 64 * MiB);
    BOOST_TEST(!vmrt::test::first_difference(disk, dir / "expected.raw").has_value());

    auto e =
        expect_error([&] { resize_raw_disk(disk, 4 * MiB); }, sys(boost::system::errc::invalid_argument));
    BOOST_TEST(e.diag().field == "new_size_bytes");
    BOOST_TEST(std::string(e.what()).find("destroy") != std::string::npos);
    BOOST_TEST(fs::file_size(disk) == 64 * MiB);
    resize_raw_disk(disk, 4 * MiB, true);
    BOOST_TEST(fs::file_size(disk) == 4 * MiB);

    e = expect_error([&] { resize_raw_disk(dir / "missing.raw", 4 * MiB); },
                     sys(boost::system::errc::no_such_file_or_directory));
    BOOST_TEST(!fs::exists(dir / "missing.raw"));
    expect_error([&] { resize_raw_disk(disk, 1000); }, sys(boost::system::errc::invalid_argument));
}

BOOST_AUTO_TEST_CASE(an_ext4_disk_holds_the_folder_it_was_populated_from) {
    vmrt::test::temp_dir dir;
    fs::create_directories(dir / "content/sub/deeper");
    vmrt::test::write_file(dir / "content/hello.txt", "hello from the host\n");
    vmrt::test::write_file(dir / "content/sub/deeper/nested.txt", "nested: value # not a comment\n");
    fs::permissions(dir / "content/hello.txt", fs::perms(0600));
    const auto disk = dir / "data.ext4";

    make_ext4({.path = disk, .size_bytes = 64 * MiB, .populate_from = dir / "content", .label = "vmrt-data"});
    BOOST_TEST(fs::file_size(disk) == 64 * MiB);
    BOOST_TEST(vmrt::test::allocated_bytes(disk) < 32 * MiB);  // mkfs on a sparse file writes metadata only
    BOOST_TEST(debugfs_cat(disk, "/hello.txt") == "hello from the host\n");
    BOOST_TEST(debugfs_cat(disk, "/sub/deeper/nested.txt") == "nested: value # not a comment\n");
    BOOST_TEST(run_program("/usr/sbin/e2label", strings(disk.string())) == "vmrt-data\n");
    const auto stat = run_program("/usr/sbin/debugfs", strings("-R", "stat /hello.txt", disk.string()));
    BOOST_TEST(stat.find("Mode:  0600") != std::string::npos, stat);
    run_program("/usr/sbin/e2fsck", strings("-f", "-n", disk.string()));  // throws if not clean
    BOOST_TEST(vmrt::test::dir_entries(dir.path()) == strings("content", "data.ext4"),
               boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(an_ext4_disk_mounts_and_reads_back) {
    vmrt::test::temp_dir dir;
    fs::create_directories(dir / "content");
    vmrt::test::write_file(dir / "content/a.txt", "mounted\n");
    make_ext4({.path = dir / "data.ext4", .size_bytes = 32 * MiB, .populate_from = dir / "content"});
    // Through the kernel's own ext4 driver, read-only (loop device attached by mount -o loop).
    vmrt::test::require_root("mount -o loop");
    fs::create_directory(dir / "mnt");
    run_program("/usr/bin/mount",
                strings("-o", "loop,ro", (dir / "data.ext4").string(), (dir / "mnt").string()));
    struct unmount {
        fs::path dir;
        ~unmount() { run_program("/usr/bin/umount", strings(dir.string())); }
    } guard{dir / "mnt"};
    BOOST_TEST(vmrt::test::read_file(dir / "mnt/a.txt") == "mounted\n");
}

BOOST_AUTO_TEST_CASE(an_empty_ext4_disk_without_folder_or_label) {
    vmrt::test::temp_dir dir;
    make_ext4({.path = dir / "empty.ext4", .size_bytes = 16 * MiB});
    run_program("/usr/sbin/e2fsck", strings("-f", "-n", (dir / "empty.ext4").string()));
    BOOST_TEST(run_program("/usr/sbin/e2label", strings((dir / "empty.ext4").string())) == "\n");
}

BOOST_AUTO_TEST_CASE(bad_ext4_requests_are_refused_before_anything_is_written) {
    vmrt::test::temp_dir dir;
    auto attempt = [](const ext4_disk_options& o) {
        make_ext4(o);
    };
    auto e = expect_error(
        [&] { attempt({.path = dir / "d.ext4", .size_bytes = 64 * MiB, .label = "seventeen-bytes!!"}); },
        sys(boost::system::errc::invalid_argument));
    BOOST_TEST(e.diag().field == "label");
    e = expect_error([&] { attempt({.path = dir / "d.ext4", .size_bytes = 512 * 1024}); },
                     sys(boost::system::errc::invalid_argument));
    BOOST_TEST(e.diag().field == "size_bytes");
    e = expect_error(
        [&] { attempt({.path = dir / "d.ext4", .size_bytes = 64 * MiB, .populate_from = dir / "nope"}); },
        sys(boost::system::errc::no_such_file_or_directory));
    BOOST_TEST(e.diag().field == "populate_from");
    vmrt::test::write_file(dir / "taken.ext4", "x");
    e = expect_error([&] { attempt({.path = dir / "taken.ext4", .size_bytes = 64 * MiB}); },
                     sys(boost::system::errc::file_exists));
    BOOST_TEST(vmrt::test::read_file(dir / "taken.ext4") == "x");
    BOOST_TEST(vmrt::test::dir_entries(dir.path()) == strings("taken.ext4"),
               boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_failing_mkfs_reports_its_output_and_leaves_nothing) {
    vmrt::test::temp_dir dir;
    fs::create_directories(dir / "content");
    // 8 MiB of incompressible data cannot fit in a 4 MiB file system.
    vmrt::test::make_sparse_file(dir / "content/big.bin", 8 * MiB, {{0, 8 * MiB}});
    auto e = expect_error(
        [&] {
            make_ext4({.path = dir / "small.ext4", .size_bytes = 4 * MiB, .populate_from = dir / "content"});
        },
        sys(boost::system::errc::io_error));
    BOOST_TEST(std::string(e.what()).find("mkfs.ext4") != std::string::npos);
    BOOST_TEST(!e.diag().vmm_stderr_tail.empty());  // what mkfs.ext4 said
    BOOST_TEST(vmrt::test::dir_entries(dir.path()) == strings("content"), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_tool_past_its_time_limit_is_killed_and_leaves_nothing) {
    vmrt::test::temp_dir dir;
    auto e =
        expect_error([&] { make_ext4({.path = dir / "slow.ext4", .size_bytes = 256 * MiB, .timeout = 1ms}); },
                     vmrt::errc::timeout);
    BOOST_TEST(vmrt::test::dir_entries(dir.path()).empty());
}

BOOST_AUTO_TEST_CASE(a_cancelled_call_kills_its_tool_and_leaves_nothing) {
    vmrt::test::temp_dir dir;
    const ext4_disk_options options{.path = dir / "cancelled.ext4", .size_bytes = 256 * MiB};
    std::size_t winner = 0;
    run_coro(
        [&]() -> asio::awaitable<void> {
            asio::steady_timer timer(co_await asio::this_coro::executor, 1ms);
            // The timer wins and the || operator cancels the disk operation (terminal cancellation).
            auto make = create_ext4_disk(options);
            auto expire = timer.async_wait(asio::use_awaitable);
            auto result = co_await (std::move(make) || std::move(expire));
            winner = result.index();
        },
        60s);
    BOOST_TEST(winner == 1U);
    // mkfs.ext4 was killed and reaped (cleanup.leftovers checks for processes) and its file removed.
    BOOST_TEST(vmrt::test::dir_entries(dir.path()).empty());
}

BOOST_AUTO_TEST_CASE(a_qcow2_overlay_reads_through_to_its_base_and_keeps_writes) {
    vmrt::test::temp_dir dir;
    const auto base = dir / "base.raw";
    vmrt::test::make_sparse_file(base, 64 * MiB, {{0, 4 * MiB}});
    vmrt::test::make_sparse_file(dir / "pristine.raw", 64 * MiB, {{0, 4 * MiB}});
    const auto overlay = dir / "overlay.qcow2";

    const auto info = make_overlay({.base = base, .overlay = overlay, .base_format = "raw"});
    BOOST_TEST(info.format == "qcow2");
    BOOST_TEST(info.virtual_size == 64 * MiB);
    BOOST_TEST(info.backing_file.value_or("") == fs::canonical(base).string());
    BOOST_TEST(info.backing_format.value_or("") == "raw");

    // Reads fall through to the base; writes land in the overlay only.
    run_program("/usr/bin/qemu-io", strings("-f", "qcow2", "-c", "write -P 0xab 1M 1M", overlay.string()));
    run_program("/usr/bin/qemu-io", strings("-f", "qcow2", "-c", "read -P 0xab 1M 1M", overlay.string()));
    run_program("/usr/bin/qemu-io", strings("-f", "qcow2", "-c", "read -P 0 8M 1M", overlay.string()));
    BOOST_TEST(!vmrt::test::first_difference(base, dir / "pristine.raw").has_value());
    run_program("/usr/bin/qemu-img", strings("convert", "-f", "qcow2", "-O", "raw", overlay.string(),
                                             (dir / "flat.raw").string()));
    // The flattened overlay: the base's data except the 1 MiB written through the overlay.
    BOOST_TEST(vmrt::test::first_difference(dir / "flat.raw", base).value_or(0) == 1 * MiB);
    vmrt::test::fill_range(dir / "pristine.raw", MiB, MiB, 0xab);
    BOOST_TEST(!vmrt::test::first_difference(dir / "flat.raw", dir / "pristine.raw").has_value());
}

BOOST_AUTO_TEST_CASE(an_overlay_probes_its_base_format_and_can_be_larger) {
    vmrt::test::temp_dir dir;
    run_program("/usr/bin/qemu-img",
                strings("create", "-q", "-f", "qcow2", (dir / "base.qcow2").string(), "32M"));
    const auto info =
        make_overlay({.base = dir / "base.qcow2", .overlay = dir / "big.qcow2", .size_bytes = 128 * MiB});
    const auto base_info = info_of(dir / "base.qcow2");
    BOOST_TEST(info.virtual_size == 128 * MiB);
    BOOST_TEST(info.backing_format.value_or("") == "qcow2");
    BOOST_TEST(base_info.format == "qcow2");
    BOOST_TEST(base_info.virtual_size == 32 * MiB);
    BOOST_TEST(!base_info.backing_file);
}

BOOST_AUTO_TEST_CASE(overlay_and_info_errors_are_clear_and_leave_nothing) {
    vmrt::test::temp_dir dir;
    auto e = expect_error([&] { make_overlay({.base = dir / "nope.raw", .overlay = dir / "o.qcow2"}); },
                          sys(boost::system::errc::no_such_file_or_directory));
    BOOST_TEST(e.diag().field == "base");

    create_raw_disk(dir / "base.raw", 16 * MiB);
    // A smaller overlay than its base would cut the base off (qemu-img would accept it).
    e = expect_error(
        [&] {
            make_overlay({.base = dir / "base.raw",
                          .overlay = dir / "o.qcow2",
                          .base_format = "raw",
                          .size_bytes = MiB});
        },
        sys(boost::system::errc::invalid_argument));
    BOOST_TEST(e.diag().field == "size_bytes");
    // A wrong base format: qemu-img cannot open a raw file as qcow2, and its reason is in the error.
    e = expect_error(
        [&] { make_overlay({.base = dir / "base.raw", .overlay = dir / "o.qcow2", .base_format = "qcow2"}); },
        sys(boost::system::errc::io_error));
    BOOST_TEST(std::string(e.what()).find("not in qcow2 format") != std::string::npos);
    BOOST_TEST(e.diag().vmm_stderr_tail.find("not in qcow2 format") != std::string::npos);
    BOOST_TEST(vmrt::test::dir_entries(dir.path()) == strings("base.raw"), boost::test_tools::per_element());

    e = expect_error([&] { info_of(dir / "missing.img"); },
                     sys(boost::system::errc::no_such_file_or_directory));
    BOOST_TEST(e.diag().field == "path");
}

BOOST_AUTO_TEST_SUITE_END()
