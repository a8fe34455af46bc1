// A rootfs directory turned into an ext4 disk (read back with debugfs, checked with e2fsck),
// auto-sizing for a tree of many small files, and the per-digest cache: built once, reused (same
// inode), built once by two concurrent callers, nothing cached when the builder fails.
#include "support/scratch_fs.hpp"
#include "support/test_support.hpp"

#include <vmrt/image/rootfs_disk.hpp>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/test/unit_test.hpp>

#include <sys/stat.h>
#include <unistd.h>

namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace vmrt::image;
using namespace std::chrono_literals;
using namespace boost::asio::experimental::awaitable_operators;
using vmrt::test::run_coro;
using vmrt::test::run_program;
using vmrt::test::strings;

const std::string digest = "sha256:" + std::string(64, 'a');

std::string debugfs(const fs::path& image, const std::string& request) {
    auto args = strings("-R", request, image.string());
    return run_program("/usr/sbin/debugfs", std::move(args));
}

/// A small rootfs: etc/hello owned by 1000:1001 mode 0640, a symlink, a hard link, a directory.
void make_rootfs(const fs::path& root) {
    fs::create_directories(root / "etc");
    fs::create_directories(root / "var/empty");
    vmrt::test::write_file(root / "etc/hello", "hello from the image\n");
    BOOST_REQUIRE(::chown((root / "etc/hello").c_str(), 1000, 1001) == 0);
    BOOST_REQUIRE(::chmod((root / "etc/hello").c_str(), 0640) == 0);
    fs::create_symlink("hello", root / "etc/hello-link");
    fs::create_hard_link(root / "etc/hello", root / "etc/hello-hard");
}

rootfs_size_estimate make_disk(const rootfs_disk_options& options) {
    rootfs_size_estimate result;
    run_coro(
        [&]() -> asio::awaitable<void> {
            auto op = make_ext4_from_rootfs(options);
            result = co_await std::move(op);
        },
        120s);
    return result;
}

ino_t inode_of(const fs::path& p) {
    struct stat st {};
    BOOST_REQUIRE(::stat(p.c_str(), &st) == 0);
    return st.st_ino;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(rootfs_disk_test)

BOOST_AUTO_TEST_CASE(a_rootfs_becomes_an_ext4_disk_with_its_files_and_owners) {
    vmrt::test::require_root("the rootfs has files owned by other users");
    vmrt::test::temp_dir tmp;
    make_rootfs(tmp / "root");
    rootfs_disk_options options;
    options.rootfs = tmp / "root";
    options.image = tmp / "disk.ext4";
    const auto used = make_disk(options);
    BOOST_TEST(used.entries == 6u);  // root, etc, var, var/empty, hello (and its hard link), link
    BOOST_TEST(fs::file_size(options.image) == used.disk_bytes);
    BOOST_TEST(used.disk_bytes >= options.min_free_bytes);
    // e2fsck -f -n: a forced check that changes nothing; exit 0 means clean.
    run_program("/usr/sbin/e2fsck", strings("-f", "-n", options.image.string()));
    BOOST_TEST(debugfs(options.image, "cat /etc/hello").find("hello from the image\n") != std::string::npos);
    const auto stat_out = debugfs(options.image, "stat /etc/hello");
    BOOST_TEST_MESSAGE(stat_out);
    BOOST_TEST(stat_out.find("User:  1000") != std::string::npos);
    BOOST_TEST(stat_out.find("Group:  1001") != std::string::npos);
    BOOST_TEST(stat_out.find("Mode:  0640") != std::string::npos);
    BOOST_TEST(stat_out.find("Links: 2") != std::string::npos);  // the hard link stays a hard link
    BOOST_TEST(debugfs(options.image, "stat /etc/hello-link").find("Type: symlink") != std::string::npos);
    const auto header = run_program("/usr/sbin/dumpe2fs", strings("-h", options.image.string()));
    BOOST_TEST(header.find("Filesystem volume name:   rootfs") != std::string::npos);
    // An existing image is refused, and stays as it was.
    const auto ino = inode_of(options.image);
    BOOST_CHECK_THROW(make_disk(options), vmrt::error);
    BOOST_TEST(inode_of(options.image) == ino);
}

BOOST_AUTO_TEST_CASE(auto_size_fits_many_small_files) {
    // 20,000 one-byte files need 20,000 inodes: more than mkfs's default ratio gives a disk sized
    // for their data, which is why the estimate passes -N.
    vmrt::test::temp_dir tmp;
    const fs::path root = tmp / "root";
    fs::create_directories(root / "many");
    for (int i = 0; i < 20000; ++i) vmrt::test::write_file(root / "many" / ("f" + std::to_string(i)), "x");
    rootfs_disk_options options;
    options.rootfs = root;
    options.image = tmp / "disk.ext4";
    options.min_free_bytes = 16 << 20;
    options.headroom = 0.1;
    const auto used = make_disk(options);
    BOOST_TEST_MESSAGE("disk " << used.disk_bytes << " bytes, " << used.inode_count << " inodes for "
                               << used.entries << " entries");
    BOOST_TEST(used.inode_count > used.entries);
    run_program("/usr/sbin/e2fsck", strings("-f", "-n", options.image.string()));
    BOOST_TEST(debugfs(options.image, "cat /many/f19999").find('x') != std::string::npos);
}

BOOST_AUTO_TEST_CASE(the_cache_builds_once_and_reuses_the_same_file) {
    vmrt::test::temp_dir tmp;
    make_rootfs(tmp / "root");
    const fs::path cache = tmp / "cache";
    int builds = 0;
    rootfs_disk_builder make = [&](fs::path out) -> asio::awaitable<void> {
        ++builds;
        rootfs_disk_options options;
        options.rootfs = tmp / "root";
        options.image = out;
        options.min_free_bytes = 8 << 20;
        auto op = make_ext4_from_rootfs(std::move(options));
        co_await std::move(op);
    };
    cached_disk first, second;
    run_coro(
        [&]() -> asio::awaitable<void> {
            auto op = cached_rootfs_disk(cache, digest, make);
            first = co_await std::move(op);
            auto again = cached_rootfs_disk(cache, digest, make);
            second = co_await std::move(again);
        },
        120s);
    BOOST_TEST(builds == 1);
    BOOST_TEST(first.built);
    BOOST_TEST(!second.built);
    BOOST_TEST(first.path == rootfs_disk_cache_path(cache, digest));
    BOOST_TEST(second.path == first.path);
    BOOST_TEST(inode_of(second.path) == inode_of(first.path));
    BOOST_TEST(debugfs(first.path, "cat /etc/hello").find("hello from the image") != std::string::npos);
    // Only the disk and its lock file are left in the cache.
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(cache)) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    BOOST_TEST(names == strings("sha256-" + std::string(64, 'a') + ".ext4",
                                "sha256-" + std::string(64, 'a') + ".lock"),
               boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(two_concurrent_callers_build_once) {
    vmrt::test::temp_dir tmp;
    const fs::path cache = tmp / "cache";
    int builds = 0;
    // A slow builder: the second caller must wait on the lock, then find the disk.
    rootfs_disk_builder make = [&](fs::path out) -> asio::awaitable<void> {
        ++builds;
        asio::steady_timer timer(co_await asio::this_coro::executor);
        timer.expires_after(300ms);
        co_await timer.async_wait(asio::use_awaitable);
        vmrt::test::write_file(out, "disk");
    };
    cached_disk a, b;
    run_coro([&]() -> asio::awaitable<void> {
        auto one = [&]() -> asio::awaitable<void> {
            auto op = cached_rootfs_disk(cache, digest, make);
            a = co_await std::move(op);
        };
        auto two = [&]() -> asio::awaitable<void> {
            auto op = cached_rootfs_disk(cache, digest, make);
            b = co_await std::move(op);
        };
        auto both = one() && two();
        co_await std::move(both);
    });
    BOOST_TEST(builds == 1);
    BOOST_TEST(a.built != b.built);
    BOOST_TEST(a.path == b.path);
    BOOST_TEST(vmrt::test::read_file(a.path) == "disk");
}

BOOST_AUTO_TEST_CASE(a_failed_build_caches_nothing_and_bad_digests_are_refused) {
    vmrt::test::temp_dir tmp;
    const fs::path cache = tmp / "cache";
    rootfs_disk_builder failing = [](fs::path out) -> asio::awaitable<void> {
        vmrt::test::write_file(out, "half");
        throw vmrt::error(vmrt::errc::protocol_error, {.message = "layer refused"});
        co_return;
    };
    rootfs_disk_builder working = [](fs::path out) -> asio::awaitable<void> {
        vmrt::test::write_file(out, "whole");
        co_return;
    };
    BOOST_CHECK_THROW(run_coro([&]() -> asio::awaitable<void> {
                          auto op = cached_rootfs_disk(cache, digest, failing);
                          co_await std::move(op);
                      }),
                      vmrt::error);
    for (const auto& e : fs::directory_iterator(cache)) BOOST_TEST(e.path().extension() == ".lock");
    cached_disk d;
    run_coro([&]() -> asio::awaitable<void> {
        auto op = cached_rootfs_disk(cache, digest, working);
        d = co_await std::move(op);
    });
    BOOST_TEST(d.built);
    BOOST_TEST(vmrt::test::read_file(d.path) == "whole");
    for (const auto* bad : {"sha256:abc", "md5:0123", "", "sha256:../../etc/passwd"})
        BOOST_CHECK_THROW(rootfs_disk_cache_path(cache, bad), vmrt::error);
}

BOOST_AUTO_TEST_SUITE_END()
