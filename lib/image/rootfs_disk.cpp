// Sizing a rootfs for ext4 and making the disk with create_ext4_disk (mkfs.ext4 -d).
#include <vmrt/image/rootfs_disk.hpp>

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>
#include <utility>

namespace vmrt::image {

namespace asio = boost::asio;
namespace fs = std::filesystem;

namespace {

constexpr std::uint64_t block = 4096;
constexpr std::uint64_t MiB = 1ull << 20;
constexpr std::uint64_t inode_size = 256;  // mkfs.ext4's default

std::uint64_t blocks_of(std::uint64_t bytes) { return (bytes + block - 1) / block * block; }

/// The journal mkfs.ext4 (e2fsprogs 1.47, ext2fs_default_journal_size) makes for a file system.
std::uint64_t journal_bytes(std::uint64_t fs_bytes) {
    static constexpr std::pair<std::uint64_t, std::uint64_t> steps[] = {
        {128 * MiB, 4 * MiB},      {1024 * MiB, 16 * MiB},   {2048 * MiB, 32 * MiB},
        {16384 * MiB, 64 * MiB},   {32768 * MiB, 128 * MiB}, {65536 * MiB, 256 * MiB},
        {131072 * MiB, 512 * MiB},
    };
    for (const auto& [limit, size] : steps)
        if (fs_bytes < limit) return size;
    return 1024 * MiB;
}

[[noreturn]] void cannot_read(const fs::path& path, int err) {
    throw vmrt::error(
        error_code(err, boost::system::system_category()),
        {.message = "cannot read " + path.string() + ": " + std::strerror(err), .field = "rootfs"});
}

}  // namespace

rootfs_size_estimate estimate_rootfs_disk(const fs::path& rootfs, double headroom,
                                          std::uint64_t min_free_bytes) {
    struct stat st {};
    if (::lstat(rootfs.c_str(), &st) != 0) cannot_read(rootfs, errno);
    if (!S_ISDIR(st.st_mode))
        throw vmrt::error(boost::system::errc::make_error_code(boost::system::errc::not_a_directory),
                          {.message = rootfs.string() + " is not a directory", .field = "rootfs"});
    rootfs_size_estimate e;
    e.entries = 1;
    e.data_bytes = block;
    std::set<std::pair<dev_t, ino_t>> linked;  // hard-linked inodes, counted once
    std::error_code ec;
    // directory_options::none: directory symlinks are listed, not entered.
    for (fs::recursive_directory_iterator it(rootfs, fs::directory_options::none, ec), end; !ec && it != end;
         it.increment(ec)) {
        if (::lstat(it->path().c_str(), &st) != 0) cannot_read(it->path(), errno);
        e.data_bytes += 8 + ((it->path().filename().native().size() + 3) & ~std::size_t{3});  // its dirent
        if (!S_ISDIR(st.st_mode) && st.st_nlink > 1 && !linked.emplace(st.st_dev, st.st_ino).second) continue;
        ++e.entries;
        if (S_ISDIR(st.st_mode)) e.data_bytes += block;
        if (S_ISREG(st.st_mode)) e.data_bytes += blocks_of(static_cast<std::uint64_t>(st.st_size));
        // Symlink targets of up to 59 bytes live in the inode itself.
        if (S_ISLNK(st.st_mode) && st.st_size >= 60) e.data_bytes += block;
    }
    if (ec) cannot_read(rootfs, ec.value());

    const auto free_bytes =
        std::max(min_free_bytes, static_cast<std::uint64_t>(static_cast<double>(e.data_bytes) * headroom));
    e.inode_count =
        e.entries + std::max(static_cast<std::uint64_t>(static_cast<double>(e.entries) * headroom),
                             free_bytes / (16 * 1024));
    // Data, free space, inode tables, a margin for bitmaps, group descriptors and the superblock
    // copies, then the journal that mkfs sizes from the total.
    std::uint64_t bytes = e.data_bytes + free_bytes + e.inode_count * inode_size + 8 * MiB;
    bytes += bytes / 100;
    bytes += journal_bytes(bytes);
    // ext4 has at most one inode per block.
    bytes = std::max(bytes, e.inode_count * block + e.inode_count * block / 16);
    e.disk_bytes = (bytes + MiB - 1) / MiB * MiB;
    return e;
}

asio::awaitable<rootfs_size_estimate> make_ext4_from_rootfs(rootfs_disk_options options) {
    rootfs_size_estimate estimate;
    if (options.size_bytes) {
        estimate.disk_bytes = *options.size_bytes;
    } else {
        estimate = estimate_rootfs_disk(options.rootfs, options.headroom, options.min_free_bytes);
    }
    ext4_disk_options ext4;
    ext4.path = options.image;
    ext4.size_bytes = estimate.disk_bytes;
    ext4.populate_from = options.rootfs;
    ext4.label = options.label;
    if (estimate.inode_count) ext4.inode_count = estimate.inode_count;
    ext4.overwrite = options.overwrite;
    ext4.timeout = options.timeout;
    // The options live in a named local: GCC 12 mishandles temporaries across a co_await.
    auto create = create_ext4_disk(std::move(ext4));
    co_await std::move(create);
    co_return estimate;
}

}  // namespace vmrt::image
