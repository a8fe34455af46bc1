// File plumbing shared by the disk functions (lib/image/disk_*.cpp): errors that name the path,
// an owning file descriptor, and the temporary file that becomes the target only on commit.
#pragma once

#include <vmrt/error.hpp>
#include <vmrt/io/unique_fd.hpp>

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>

namespace vmrt::image::detail {

error_code last_error() noexcept;

/// Throws vmrt::error: "<what> <path>: <reason>", diagnostics.field = `field`.
[[noreturn]] void fail_at(error_code ec, const std::string& what, const std::filesystem::path& path,
                          const std::string& field);
/// Throws vmrt::error(invalid_argument) about the argument `field`.
[[noreturn]] void bad_argument(const std::string& field, const std::string& message);

/// Refuses sizes that are zero or not a multiple of 512 (the sector size every VMM assumes).
void check_disk_size(std::uint64_t size_bytes, const std::string& field);

/// Refuses an existing `target` (file_exists) unless `overwrite`; a cheap early check, the
/// commit re-checks atomically.
void check_target(const std::filesystem::path& target, bool overwrite, const std::string& field);

using io::unique_fd;

/// A new file ".<target name>.<purpose>-<pid>-<n>" in the target's directory, created with
/// O_EXCL. The destructor removes it unless commit() moved it to the target.
class pending_file {
public:
    pending_file(const std::filesystem::path& target, const std::string& purpose, const std::string& field);
    pending_file(const pending_file&) = delete;
    pending_file& operator=(const pending_file&) = delete;
    ~pending_file();

    const std::filesystem::path& path() const noexcept { return temp_; }
    int fd() const noexcept { return fd_.get(); }
    /// Closes the descriptor (for a tool that writes the file by name).
    void close();
    /// fsync, chmod to `mode`, rename onto the target (RENAME_NOREPLACE unless `overwrite`),
    /// fsync the directory.
    void commit(mode_t mode, bool overwrite);

private:
    std::filesystem::path target_, temp_;
    std::string field_;
    unique_fd fd_;
    bool committed_ = false;
};

}  // namespace vmrt::image::detail
