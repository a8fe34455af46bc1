// Crash-safe file replacement: write a temporary file in the same directory, fsync it, rename
// it over the target, fsync the directory. A reader sees the old contents or the new, never a mix,
// and a crash leaves no partial file at the final path.
#pragma once

#include <vmrt/error.hpp>

#include <filesystem>
#include <string_view>

namespace vmrt::io {

/// Replaces `target` with `contents` atomically. The temporary file is removed on failure.
void write_file_atomically(const std::filesystem::path& target, std::string_view contents,
                           std::filesystem::perms perms = std::filesystem::perms::owner_read |
                                                          std::filesystem::perms::owner_write |
                                                          std::filesystem::perms::group_read |
                                                          std::filesystem::perms::others_read);
void write_file_atomically(const std::filesystem::path& target, std::string_view contents,
                           std::filesystem::perms perms, error_code& ec) noexcept;

/// fsync() of a directory, so that a rename or a creation inside it is durable.
error_code sync_directory(const std::filesystem::path& dir) noexcept;

}  // namespace vmrt::io
