// A root file system directory turned into a bootable ext4 disk (mkfs.ext4 -d, through
// create_ext4_disk), and a cache of such disks keyed by image digest.
//
// The cache holds <cache_dir>/sha256-<hex>.ext4 per image. A disk is built under a temporary name
// by one process at a time (flock on <cache_dir>/sha256-<hex>.lock, waited for asynchronously),
// then fsynced and renamed into place: a reader sees a complete disk or none, two processes that
// want the same image build it once, and a crashed builder's temporary file is removed by the next
// builder of that digest. Lock files stay (removing them would reopen the race they close).
// VMs must not write to the cached disk: give each a copy-on-write clone (clone_disk).
#pragma once

#include <vmrt/error.hpp>
#include <vmrt/image/disk.hpp>

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>

namespace vmrt::image {

/// What a rootfs needs on ext4, and the disk chosen for it.
struct rootfs_size_estimate {
    std::uint64_t data_bytes = 0;   ///< blocks of files, directories and long symlinks (4 KiB each)
    std::uint64_t entries = 0;      ///< inodes the tree uses (every file, directory, link, node)
    std::uint64_t inode_count = 0;  ///< inodes to make (mkfs.ext4 -N): the tree's plus headroom
    std::uint64_t disk_bytes = 0;   ///< the disk size: data, free space, inode tables, journal
};

struct rootfs_disk_options {
    std::filesystem::path rootfs;  ///< the directory to copy (with owners, modes, links)
    std::filesystem::path image;   ///< the raw disk to create (refused if it exists, unless overwrite)
    /// The disk size (a multiple of 512). Unset: estimate_rootfs_disk(rootfs, headroom, min_free).
    std::optional<std::uint64_t> size_bytes;
    double headroom = 0.5;                        ///< free space as a fraction of the data...
    std::uint64_t min_free_bytes = 256ull << 20;  ///< ...but at least this much
    std::string label = "rootfs";                 ///< ext4 label, at most 16 bytes
    bool overwrite = false;
    std::chrono::steady_clock::duration timeout = default_disk_tool_timeout;
};

/// Sizes an ext4 disk for `rootfs` by walking it (lstat: symlinks are not followed). Throws
/// vmrt::error naming the path if the tree cannot be read.
rootfs_size_estimate estimate_rootfs_disk(const std::filesystem::path& rootfs, double headroom = 0.5,
                                          std::uint64_t min_free_bytes = 256ull << 20);

/// Creates options.image as an ext4 file system holding a copy of options.rootfs (owners, modes,
/// hard links, symlinks, device nodes, xattrs as mkfs.ext4 -d copies them). Returns the sizes used
/// (with an explicit size_bytes: disk_bytes is it, inode_count mkfs's default, reported as 0).
/// Errors and cancellation as create_ext4_disk (nothing is left at options.image on failure).
boost::asio::awaitable<rootfs_size_estimate> make_ext4_from_rootfs(rootfs_disk_options options);

/// Builds a disk at the path it is given (which does not exist yet), e.g. by applying the image's
/// layers and calling make_ext4_from_rootfs.
using rootfs_disk_builder = std::function<boost::asio::awaitable<void>(std::filesystem::path)>;

struct cached_disk {
    std::filesystem::path path;  ///< <cache_dir>/sha256-<hex>.ext4
    bool built = false;          ///< true if this call built it, false if it was in the cache
};

/// The cache path for `image_digest` ("sha256:<64 hex>"; anything else is invalid_argument).
std::filesystem::path rootfs_disk_cache_path(const std::filesystem::path& cache_dir,
                                             const std::string& image_digest);

/// The cached disk of `image_digest`, built with `make` if missing (see the top of this file).
/// Waiting for another builder's lock is a timer loop on the caller's executor (cancellable);
/// `make`'s errors propagate and leave nothing in the cache but the lock file.
boost::asio::awaitable<cached_disk> cached_rootfs_disk(std::filesystem::path cache_dir,
                                                       std::string image_digest, rootfs_disk_builder make);

}  // namespace vmrt::image
