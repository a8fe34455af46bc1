// File plumbing shared by the disk functions (lib/image/disk_*.cpp): errors that name the path,
// an owning file descriptor, and the temporary file that becomes the target only on commit.
#pragma once

#include <vmrt/error.hpp>

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

class unique_fd {
public:
    unique_fd() = default;
    explicit unique_fd(int fd) noexcept : fd_(fd) {}
    unique_fd(unique_fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    unique_fd& operator=(unique_fd&& o) noexcept {
        if (this != &o) reset(std::exchange(o.fd_, -1));
        return *this;
    }
    ~unique_fd() { reset(); }
    int get() const noexcept { return fd_; }
    explicit operator bool() const noexcept { return fd_ >= 0; }
    void reset(int fd = -1) noexcept;
    /// close(2) with its error (a write-back error can surface here).
    error_code close() noexcept;

private:
    int fd_ = -1;
};

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
