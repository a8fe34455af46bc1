// Unpacking selected files of a Debian package (.deb) with libarchive, without dpkg.
//
// A .deb is an `ar` archive: "debian-binary", "control.tar.*", "data.tar.*" (xz, zstd, gzip,
// bzip2 or none). Only data.tar.* is read, streamed straight out of the ar member.
//
// The package is treated as untrusted input: every member name of the data archive must be a
// safe relative path (no absolute path, no ".." component), otherwise the whole package is
// rejected. Only regular files (and their directories) are created; links, devices and fifos
// are never created, and files are created through directory descriptors opened with
// O_NOFOLLOW, so nothing can be written outside the destination.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vmrt::image {

/// Decides for each regular file of the data archive (its normalized path, e.g.
/// "boot/vmlinuz-6.1.0-56-cloud-amd64") where to put it below the destination directory
/// (a relative path), or nothing to skip it.
using deb_member_map = std::function<std::optional<std::string>(std::string_view member)>;

struct deb_unpack_limits {
    std::uint64_t max_total_bytes = 2ULL << 30;  ///< refuse packages that unpack to more than this
};

/// Extracts the selected files of `deb` below `destination` (an existing directory) and returns
/// their destination paths (relative), in archive order. Throws vmrt::error:
/// errc::protocol_error for a malformed or hostile package (named in the message), or the
/// system error of a failed file operation.
std::vector<std::string> unpack_deb(const std::filesystem::path& deb,
                                    const std::filesystem::path& destination, const deb_member_map& map,
                                    const deb_unpack_limits& limits = {});

}  // namespace vmrt::image
