// Disk images on the host: copy-on-write clones, sparse raw disks, ext4 data disks and qcow2
// overlays.
//
// Every function that creates a file writes it under a temporary name in the target's directory,
// fsyncs it, renames it into place (refusing an existing target unless told to overwrite) and
// fsyncs the directory: on any failure nothing is left at the target or at the temporary name.
//
// The file-only functions (clone_disk, create_raw_disk, resize_raw_disk, query_disk_usage) are
// synchronous: a reflink or a resize takes microseconds, but a sparse copy of a large image is
// bounded by the disk, so call clone_disk from a worker thread when a copy is possible. The
// functions that run a tool (mkfs.ext4, qemu-img) are coroutines on the caller's executor; they
// are cancellation-safe: a cancelled call kills the tool (SIGKILL), waits for it and removes its
// temporary file before it completes with errc::cancelled.
//
// Errors are vmrt::error. File system failures keep their errno (system category) with a message
// naming the path; diagnostics.field names the argument ("src", "dst", "size_bytes", ...). A tool
// that fails gives boost::system::errc::io_error, its output in the message and in
// diagnostics.vmm_stderr_tail; a missing tool gives no_such_file_or_directory and names its
// package; a tool that outlives its time limit is killed and gives errc::timeout.
#pragma once

#include <vmrt/error.hpp>

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace vmrt::image {

// ---- copy-on-write clones ----------------------------------------------------------------------

enum class clone_method {
    reflink,      ///< FICLONE: the clone shares every extent with the source until either is written
    sparse_copy,  ///< the source's data ranges (SEEK_DATA/SEEK_HOLE) copied; its holes stay holes
};
std::string_view to_string(clone_method m) noexcept;

enum class clone_strategy {
    reflink_or_copy,  ///< FICLONE; a sparse copy where the file systems cannot share extents
    reflink_only,     ///< FICLONE or errc::unsupported (nothing is copied)
    copy_only,        ///< never FICLONE (benchmarks; disks that must not fragment through CoW)
};

struct clone_options {
    clone_strategy strategy = clone_strategy::reflink_or_copy;
    /// Replace an existing dst (atomically). false: an existing dst is refused (file_exists).
    bool overwrite = false;
    /// Copy data ranges with copy_file_range(2), which lets the kernel do the work; note that on
    /// XFS and Btrfs it shares the extents instead of copying them (bytes_shared shows it).
    /// false: read(2)/write(2), which always writes fresh blocks.
    bool kernel_copy = true;
};

struct clone_result {
    clone_method method = clone_method::sparse_copy;
    std::uint64_t logical_size = 0;  ///< st_size of the source (and of the clone)
    /// Bytes of the clone's extents that the file system reports as shared (FIEMAP_EXTENT_SHARED),
    /// measured after the clone: the source's allocated data for a reflink, 0 for a fresh copy.
    /// Holes are neither shared nor copied.
    std::uint64_t bytes_shared = 0;
    /// Bytes of data this call moved through copy_file_range or read/write (0 for a reflink).
    std::uint64_t bytes_copied = 0;
};

/// Clones the regular file `src` to `dst` (see clone_strategy); dst gets src's permission bits.
/// Falls back from FICLONE to a copy on EXDEV, EOPNOTSUPP, EINVAL, ENOTTY or ENOSYS, and from
/// copy_file_range to read/write on EXDEV, ENOSYS, EOPNOTSUPP or EINVAL. Blocking (see above).
clone_result clone_disk(const std::filesystem::path& src, const std::filesystem::path& dst,
                        const clone_options& options = {});

/// Space a file takes on its file system.
struct disk_usage {
    std::uint64_t logical_size = 0;     ///< st_size
    std::uint64_t allocated_bytes = 0;  ///< st_blocks * 512
    /// Bytes of extents shared with other files (FIEMAP); nullopt where the file system has no
    /// FIEMAP (tmpfs), which also means it cannot share extents.
    std::optional<std::uint64_t> shared_bytes;
};
disk_usage query_disk_usage(const std::filesystem::path& file);

// ---- raw disks ---------------------------------------------------------------------------------

/// Creates a sparse raw disk of `size_bytes` (a positive multiple of 512): no block is allocated.
/// An existing file is refused (file_exists) unless `overwrite`.
void create_raw_disk(const std::filesystem::path& path, std::uint64_t size_bytes, bool overwrite = false);

/// Grows a raw disk to `new_size_bytes` (a positive multiple of 512); the new space is a hole.
/// Shrinking destroys the data past the new end, so it is refused (invalid_argument) unless
/// `allow_shrink`. A missing file is an error, never created.
void resize_raw_disk(const std::filesystem::path& path, std::uint64_t new_size_bytes,
                     bool allow_shrink = false);

// ---- tools: mkfs.ext4, qemu-img ----------------------------------------------------------------

/// Time a tool may take before it is killed.
inline constexpr std::chrono::seconds default_disk_tool_timeout{300};

struct ext4_disk_options {
    std::filesystem::path path;
    std::uint64_t size_bytes = 0;  ///< a multiple of 512, at least 1 MiB
    /// Copied into the new file system's root (mkfs.ext4 -d): files, directories, symlinks,
    /// modes and owners. Empty: an empty file system.
    std::filesystem::path populate_from;
    std::string label;  ///< at most 16 bytes; empty: none
    /// Number of inodes (mkfs.ext4 -N); unset: mkfs's default of one per 16 KiB, which a tree of
    /// many small files (a container rootfs) can exhaust.
    std::optional<std::uint64_t> inode_count;
    bool overwrite = false;
    std::chrono::steady_clock::duration timeout = default_disk_tool_timeout;
};

/// A sparse raw disk holding a fresh ext4 file system: `mkfs.ext4 -F -q [-L label] [-N inodes] [-d dir]`.
boost::asio::awaitable<void> create_ext4_disk(ext4_disk_options options);

/// What `qemu-img info` says about an image.
struct disk_info {
    std::string format;  ///< "raw", "qcow2", ...
    std::uint64_t virtual_size = 0;
    std::optional<std::uint64_t> actual_size;  ///< bytes allocated on the host
    std::optional<std::string> backing_file;   ///< resolved against the image's directory
    std::optional<std::string> backing_format;
};

/// `qemu-img info -U --output=json [-f format] path`. -U (force share) lets it read images that a
/// running QEMU holds locked. Without `format`, qemu-img probes it: do not probe images a guest
/// could have written (a raw disk can be made to look like qcow2 with a backing file).
boost::asio::awaitable<disk_info>
query_disk_info(std::filesystem::path path, std::string format = {},
                std::chrono::steady_clock::duration timeout = default_disk_tool_timeout);

struct qcow2_overlay_options {
    std::filesystem::path base;     ///< recorded in the overlay as an absolute path
    std::filesystem::path overlay;  ///< the new qcow2 file
    /// Format of `base` ("raw", "qcow2"); empty: probed with query_disk_info (see its caveat).
    std::string base_format;
    /// Virtual size of the overlay; unset: the base's. Smaller than the base is refused
    /// (invalid_argument): it would cut off the end of the base.
    std::optional<std::uint64_t> size_bytes;
    bool overwrite = false;
    std::chrono::steady_clock::duration timeout = default_disk_tool_timeout;
};

/// A qcow2 overlay whose reads fall through to `base` and whose writes stay in the overlay:
/// `qemu-img create -f qcow2 -F <fmt> -b <base> <overlay> [size]`. Only QEMU opens qcow2 backing
/// chains; the base must not change while an overlay uses it. Returns the overlay's info.
boost::asio::awaitable<disk_info> create_qcow2_overlay(qcow2_overlay_options options);

}  // namespace vmrt::image
