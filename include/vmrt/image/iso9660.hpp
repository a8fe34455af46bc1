// ISO 9660 images written in-process with libarchive's iso9660 writer (Rock Ridge and Joliet
// extensions), no genisoimage/mkisofs process. Used for cloud-init NoCloud seeds (seed.hpp).
#pragma once

#include <vmrt/error.hpp>

#include <filesystem>
#include <map>
#include <string>
#include <string_view>

namespace vmrt::image {

/// Files of a flat ISO image: file name -> contents (any bytes). Names are one path component
/// (no '/', not "." or "..", no NUL, at most 255 bytes).
using iso_files = std::map<std::string, std::string, std::less<>>;

/// The image, in memory. `volume_id` is 1 to 32 characters of [A-Za-z0-9_]; the primary volume
/// descriptor stores it upper-cased (ISO 9660 d-characters, at byte 32808), the Joliet one as given.
/// Files are readable by everyone (0444, root:root, mtime 0) in the image's root directory.
/// Throws vmrt::error: errc::invalid_spec (diagnostics.field = "volume_id" or "files[<name>]")
/// for a bad name or volume id, errc::internal if libarchive fails.
std::string build_iso9660(const iso_files& files, std::string_view volume_id);

/// build_iso9660, then an atomic replacement of `out` (temp file in the same directory, fsync,
/// rename, fsync of the directory): a reader never sees a partial image. Throws vmrt::error (the
/// errno code for I/O failures, with the path in the message); `out` is untouched on failure.
void write_iso9660(const iso_files& files, std::string_view volume_id, const std::filesystem::path& out);

}  // namespace vmrt::image
