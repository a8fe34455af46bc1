// clone_disk on real file systems the test makes itself (loop-mounted XFS with reflink, ext4,
// tmpfs; see support/scratch_fs.hpp): FICLONE where extents can be shared, a hole-keeping copy
// elsewhere, and failures that leave nothing behind. Needs root: without it every test fails
// with a message saying so.
#include "support/scratch_fs.hpp"
#include "support/sparse_files.hpp"
#include "support/test_support.hpp"

#include <vmrt/image/disk.hpp>

#include <boost/test/unit_test.hpp>

#include <sys/stat.h>

#include <numeric>

namespace {

namespace fs = std::filesystem;
using namespace vmrt::image;
using vmrt::test::scratch_fs;
using vmrt::test::scratch_fs_type;

constexpr std::uint64_t MiB = 1 << 20;

std::uint64_t total_length(const std::vector<vmrt::test::byte_range>& ranges) {
    return std::accumulate(ranges.begin(), ranges.end(), std::uint64_t{0},
                           [](std::uint64_t sum, const auto& r) { return sum + r.length; });
}

unsigned mode_of(const fs::path& file) {
    struct stat st {};
    BOOST_REQUIRE(::stat(file.c_str(), &st) == 0);
    return st.st_mode & 0777;
}

/// Runs `f`, which must throw vmrt::error with `code`; returns it for further checks.
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

boost::system::errc::errc_t sys(boost::system::errc::errc_t e) { return e; }

/// A scratch file system in its own temp dir, with a 256 MiB disk image holding 8 MiB of data in
/// 8 ranges (and holes in between and at the end).
struct fs_with_image {
    explicit fs_with_image(scratch_fs_type type, std::uint64_t size = 256 * MiB, std::uint64_t ranges = 8)
        : fs(type, dir.path()), image(fs / "base.img"), data(vmrt::test::spread_ranges(size, ranges, MiB)) {
        vmrt::test::make_sparse_file(image, size, data);
    }
    vmrt::test::temp_dir dir;
    scratch_fs fs;
    fs::path image;
    std::vector<vmrt::test::byte_range> data;
};

}  // namespace

BOOST_AUTO_TEST_SUITE(disk_clone_test)

BOOST_AUTO_TEST_CASE(xfs_clone_is_a_reflink_that_shares_every_data_extent) {
    fs_with_image xfs(scratch_fs_type::xfs_reflink);
    const auto clone = xfs.fs / "clone.img";
    const auto r = clone_disk(xfs.image, clone);

    BOOST_TEST(to_string(r.method) == "reflink");
    BOOST_TEST(r.logical_size == 256 * MiB);
    BOOST_TEST(r.bytes_copied == 0U);
    // Every allocated byte of the source (its 8 MiB of data; holes are not extents) is shared.
    BOOST_TEST(r.bytes_shared == total_length(xfs.data));
    BOOST_TEST(query_disk_usage(xfs.image).shared_bytes.value_or(0) == total_length(xfs.data));
    BOOST_TEST(!vmrt::test::first_difference(xfs.image, clone).has_value());
    BOOST_TEST(mode_of(clone) == 0640U);
    BOOST_TEST(fs::file_size(clone) == 256 * MiB);
    // Only the clone and the source: no temporary file left.
    BOOST_TEST(vmrt::test::dir_entries(xfs.fs.mount_point()) == vmrt::test::strings("base.img", "clone.img"),
               boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_dense_file_is_shared_whole) {
    vmrt::test::temp_dir dir;
    scratch_fs xfs(scratch_fs_type::xfs_reflink, dir.path());
    vmrt::test::make_sparse_file(xfs / "dense.img", 16 * MiB, {{0, 16 * MiB}});
    const auto r = clone_disk(xfs / "dense.img", xfs / "clone.img");
    BOOST_TEST(to_string(r.method) == "reflink");
    BOOST_TEST(r.bytes_shared == 16 * MiB);
    BOOST_TEST(r.bytes_shared == r.logical_size);
}

BOOST_AUTO_TEST_CASE(writing_a_reflinked_clone_leaves_the_source_unchanged) {
    fs_with_image xfs(scratch_fs_type::xfs_reflink);
    const auto pristine = xfs.fs / "pristine.img";  // an independent copy to compare the source with
    BOOST_TEST(clone_disk(xfs.image, pristine, {.strategy = clone_strategy::copy_only, .kernel_copy = false})
                   .bytes_shared == 0U);
    const auto clone = xfs.fs / "clone.img";
    BOOST_REQUIRE(clone_disk(xfs.image, clone).method == clone_method::reflink);

    const auto first = xfs.data.at(0);
    vmrt::test::fill_range(clone, first.offset, first.length, 0xAB);
    vmrt::test::fill_range(clone, 240 * MiB, MiB, 0xCD);  // into a hole of the source

    BOOST_TEST(!vmrt::test::first_difference(xfs.image, pristine).has_value());
    BOOST_TEST(vmrt::test::first_difference(xfs.image, clone).value_or(1) == first.offset);
    // The overwritten range was unshared (copy-on-write); the other 7 MiB are still shared.
    BOOST_TEST(query_disk_usage(xfs.image).shared_bytes.value_or(0) == total_length(xfs.data) - first.length);
}

BOOST_AUTO_TEST_CASE(ext4_clone_is_a_sparse_copy_that_keeps_the_holes) {
    fs_with_image ext4(scratch_fs_type::ext4, 1024 * MiB, 4);  // 1 GiB, 4 MiB of data
    const auto clone = ext4.fs / "clone.img";
    const auto r = clone_disk(ext4.image, clone);

    BOOST_TEST(to_string(r.method) == "sparse_copy");
    BOOST_TEST(r.logical_size == 1024 * MiB);
    BOOST_TEST(r.bytes_copied == 4 * MiB);
    BOOST_TEST(r.bytes_shared == 0U);
    BOOST_TEST(fs::file_size(clone) == 1024 * MiB);  // the trailing hole is kept as size
    const auto src_blocks = vmrt::test::allocated_bytes(ext4.image);
    const auto dst_blocks = vmrt::test::allocated_bytes(clone);
    BOOST_TEST_MESSAGE("allocated: source " << src_blocks << " B, clone " << dst_blocks << " B");
    BOOST_TEST(dst_blocks <= src_blocks + MiB);  // extent-tree blocks may differ a little
    BOOST_TEST(dst_blocks < 8 * MiB);            // nowhere near 1 GiB
    BOOST_TEST(!vmrt::test::first_difference(ext4.image, clone).has_value());
    BOOST_TEST(mode_of(clone) == 0640U);
}

BOOST_AUTO_TEST_CASE(tmpfs_clone_is_a_sparse_copy_that_keeps_the_holes) {
    fs_with_image tmp(scratch_fs_type::tmpfs, 1024 * MiB, 4);
    const auto clone = tmp.fs / "clone.img";
    const auto r = clone_disk(tmp.image, clone);
    BOOST_TEST(to_string(r.method) == "sparse_copy");
    BOOST_TEST(r.bytes_copied == 4 * MiB);
    BOOST_TEST(r.bytes_shared == 0U);
    BOOST_TEST(!query_disk_usage(clone).shared_bytes.has_value());  // tmpfs has no FIEMAP
    BOOST_TEST(vmrt::test::allocated_bytes(clone) == vmrt::test::allocated_bytes(tmp.image));
    BOOST_TEST(!vmrt::test::first_difference(tmp.image, clone).has_value());
}

BOOST_AUTO_TEST_CASE(a_clone_across_file_systems_falls_back_to_a_copy) {
    fs_with_image xfs(scratch_fs_type::xfs_reflink);
    vmrt::test::temp_dir ext4_dir;
    scratch_fs ext4(scratch_fs_type::ext4, ext4_dir.path());
    const auto clone = ext4 / "clone.img";
    // FICLONE fails with EXDEV; copy_file_range between XFS and ext4 too (read/write then).
    const auto r = clone_disk(xfs.image, clone);
    BOOST_TEST(to_string(r.method) == "sparse_copy");
    BOOST_TEST(r.bytes_copied == total_length(xfs.data));
    BOOST_TEST(r.bytes_shared == 0U);
    BOOST_TEST(vmrt::test::allocated_bytes(clone) < 16 * MiB);
    BOOST_TEST(!vmrt::test::first_difference(xfs.image, clone).has_value());
}

BOOST_AUTO_TEST_CASE(reflink_only_refuses_a_file_system_without_reflink) {
    fs_with_image ext4(scratch_fs_type::ext4, 64 * MiB, 2);
    auto e = expect_error(
        [&] { clone_disk(ext4.image, ext4.fs / "clone.img", {.strategy = clone_strategy::reflink_only}); },
        vmrt::errc::unsupported);
    BOOST_TEST(e.diag().field == "dst");
    BOOST_TEST(vmrt::test::dir_entries(ext4.fs.mount_point()) ==
                   vmrt::test::strings("base.img", "lost+found"),
               boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_forced_copy_reports_what_the_kernel_shared) {
    fs_with_image xfs(scratch_fs_type::xfs_reflink);
    // read/write: fresh blocks, nothing shared.
    const auto plain = clone_disk(xfs.image, xfs.fs / "plain.img",
                                  {.strategy = clone_strategy::copy_only, .kernel_copy = false});
    BOOST_TEST(to_string(plain.method) == "sparse_copy");
    BOOST_TEST(plain.bytes_copied == total_length(xfs.data));
    BOOST_TEST(plain.bytes_shared == 0U);
    // copy_file_range on one XFS may remap instead of copying: whatever it did, the result says
    // what the file system reports, not what the method suggests.
    const auto kernel = clone_disk(xfs.image, xfs.fs / "kernel.img", {.strategy = clone_strategy::copy_only});
    BOOST_TEST_MESSAGE("copy_file_range on XFS: " << kernel.bytes_shared << " of " << kernel.bytes_copied
                                                  << " bytes shared");
    BOOST_TEST(kernel.bytes_copied == total_length(xfs.data));
    BOOST_TEST(kernel.bytes_shared == query_disk_usage(xfs.fs / "kernel.img").shared_bytes.value_or(0));
    BOOST_TEST(!vmrt::test::first_difference(xfs.image, xfs.fs / "kernel.img").has_value());
    BOOST_TEST(!vmrt::test::first_difference(xfs.image, xfs.fs / "plain.img").has_value());
}

BOOST_AUTO_TEST_CASE(a_missing_source_is_a_clear_error_and_creates_nothing) {
    vmrt::test::temp_dir dir;
    auto e = expect_error([&] { clone_disk(dir / "nope.img", dir / "clone.img"); },
                          sys(boost::system::errc::no_such_file_or_directory));
    BOOST_TEST(e.diag().field == "src");
    BOOST_TEST(std::string(e.what()).find("nope.img") != std::string::npos);
    BOOST_TEST(vmrt::test::dir_entries(dir.path()).empty());
}

BOOST_AUTO_TEST_CASE(an_existing_target_is_refused_unless_overwrite) {
    vmrt::test::temp_dir dir;
    vmrt::test::make_sparse_file(dir / "src.img", 4 * MiB, {{0, MiB}});
    vmrt::test::write_file(dir / "dst.img", "precious");
    auto e = expect_error([&] { clone_disk(dir / "src.img", dir / "dst.img"); },
                          sys(boost::system::errc::file_exists));
    BOOST_TEST(e.diag().field == "dst");
    BOOST_TEST(vmrt::test::read_file(dir / "dst.img") == "precious");
    BOOST_TEST(vmrt::test::dir_entries(dir.path()).size() == 2U);

    clone_disk(dir / "src.img", dir / "dst.img", {.overwrite = true});
    BOOST_TEST(!vmrt::test::first_difference(dir / "src.img", dir / "dst.img").has_value());
    BOOST_TEST(vmrt::test::dir_entries(dir.path()).size() == 2U);
}

BOOST_AUTO_TEST_CASE(a_missing_target_directory_is_a_clear_error) {
    vmrt::test::temp_dir dir;
    vmrt::test::make_sparse_file(dir / "src.img", 4 * MiB, {{0, MiB}});
    auto e = expect_error([&] { clone_disk(dir / "src.img", dir / "no-such-dir" / "dst.img"); },
                          sys(boost::system::errc::no_such_file_or_directory));
    BOOST_TEST(e.diag().field == "dst");
    BOOST_TEST(std::string(e.what()).find("no-such-dir") != std::string::npos);
    BOOST_TEST(vmrt::test::dir_entries(dir.path()) == vmrt::test::strings("src.img"),
               boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_source_that_is_not_a_file_is_refused) {
    vmrt::test::temp_dir dir;
    fs::create_directory(dir / "a-dir");
    auto e = expect_error([&] { clone_disk(dir / "a-dir", dir / "dst.img"); },
                          sys(boost::system::errc::invalid_argument));
    BOOST_TEST(e.diag().field == "src");
    BOOST_TEST(vmrt::test::dir_entries(dir.path()) == vmrt::test::strings("a-dir"),
               boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_read_only_target_file_system_is_a_clear_error_and_gets_nothing) {
    fs_with_image xfs(scratch_fs_type::xfs_reflink, 64 * MiB, 2);
    vmrt::test::temp_dir ro_dir;
    scratch_fs ro(scratch_fs_type::ext4, ro_dir.path());
    ro.remount(true);
    auto e = expect_error([&] { clone_disk(xfs.image, ro / "clone.img"); },
                          sys(boost::system::errc::read_only_file_system));
    BOOST_TEST(e.diag().field == "dst");
    ro.remount(false);
    BOOST_TEST(vmrt::test::dir_entries(ro.mount_point()) == vmrt::test::strings("lost+found"),
               boost::test_tools::per_element());
}

BOOST_AUTO_TEST_SUITE_END()
