// Real file systems for tests and benchmarks that need a particular one (XFS with reflink, ext4,
// tmpfs): a sparse image file, a loop device and a mount, all under a directory the caller owns.
//
// Needs root (loop devices, mount(2)); the constructor throws a clear std::runtime_error
// otherwise, so that a test fails instead of passing vacuously. The destructor unmounts, detaches
// the loop device and removes the image, also while an exception (a failed check) unwinds.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace vmrt::test {

enum class scratch_fs_type { xfs_reflink, ext4, tmpfs };

class scratch_fs {
public:
    /// Makes a file system of `size_bytes` (sparse: only metadata takes space) and mounts it on
    /// `dir`/mnt; the image is `dir`/fs.img. `dir` must exist and should be private to the caller.
    scratch_fs(scratch_fs_type type, const std::filesystem::path& dir, std::uint64_t size_bytes = 1ULL << 30);
    scratch_fs(const scratch_fs&) = delete;
    scratch_fs& operator=(const scratch_fs&) = delete;
    ~scratch_fs();

    const std::filesystem::path& mount_point() const noexcept { return mount_point_; }
    std::filesystem::path operator/(const std::string& name) const { return mount_point_ / name; }
    /// Remounts read-only (or back to read-write).
    void remount(bool read_only);

private:
    void teardown() noexcept;

    scratch_fs_type type_;
    std::filesystem::path image_, mount_point_, loop_device_;
    bool mounted_ = false;
};

/// Runs a program (argv, no shell) to completion and returns its stdout+stderr; throws
/// std::runtime_error with that output if it fails or runs longer than `limit`.
std::string run_program(const std::filesystem::path& program, std::vector<std::string> args,
                        std::chrono::seconds limit = std::chrono::seconds(120));

/// Throws std::runtime_error unless the process runs as root.
void require_root(const std::string& why);

}  // namespace vmrt::test
