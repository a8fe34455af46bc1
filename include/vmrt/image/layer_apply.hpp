// Applying OCI / Docker image layers (tar, tar+gzip, tar+zstd) into a root file system directory.
//
// Every path is resolved inside the rootfs, never outside it, whatever the layer contains:
//  * entry names are normalised like Docker does (leading "/" and "./" stripped, so "/etc/x" is
//    <rootfs>/etc/x) and any ".." component refuses the layer;
//  * parent directories are opened with openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS) on the
//    rootfs's descriptor, so a symlink planted by this or an earlier layer ("evil -> /",
//    "evil -> ../..") resolves as if the rootfs were "/": a write through it lands inside;
//  * the last component is never followed: an existing entry is removed (unlinkat) and the new
//    one created with O_CREAT|O_EXCL, mkdirat, symlinkat, linkat (no AT_SYMLINK_FOLLOW) or mknodat;
//  * hard-link targets are archive paths resolved inside the rootfs like any other entry;
//  * whiteouts (".wh.<name>") and opaque markers (".wh..wh..opq") are resolved beneath the rootfs
//    without following any symlink (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS): a whiteout whose
//    directory is a symlink is skipped (and reported), because a layer diff never produces one and
//    following it would delete something the layer did not name.
// libarchive's own extractor (archive_write_disk and its ARCHIVE_EXTRACT_SECURE_* flags) is not
// used: it works on path names relative to the current directory, while every write here goes
// through descriptors resolved inside the rootfs, which is strictly stronger.
//
// Whiteouts follow the OCI image spec: they hide entries of LOWER layers only. A whiteout or
// opaque marker deletes what earlier layers left, but never an entry that the same layer wrote,
// whatever their order in the tar. The whiteout files themselves never appear in the result.
//
// Entries replace what is there as Docker does: a directory entry merges into an existing
// directory; any other combination removes the existing entry (a whole tree for a directory) first.
//
// Errors are vmrt::error: errc::protocol_error for a malformed or hostile layer (the message names
// the entry, sanitised: control characters escaped, long names cut), errc::unsupported for a
// compression the caller named but the blob does not have, and the errno (system category) of a
// file system failure, with the entry named.
#pragma once

#include <vmrt/error.hpp>

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace vmrt::image {

enum class blob_compression {
    detect,  ///< from the blob's magic bytes: gzip (1f 8b), zstd (28 b5 2f fd) or a plain tar
    none,
    gzip,
    zstd,
};

/// The compression an OCI / Docker layer media type announces
/// ("application/vnd.oci.image.layer.v1.tar+gzip" -> gzip, "...tar+zstd" -> zstd, "...tar" -> none,
/// "application/vnd.docker.image.rootfs.diff.tar.gzip" -> gzip). Throws errc::unsupported for any
/// other media type (foreign / non-distributable layers included: they are tars too, but their
/// media types are listed explicitly so that nothing unexpected is applied silently).
blob_compression compression_for_media_type(std::string_view media_type);

struct layer_options {
    blob_compression compression = blob_compression::detect;
    /// Owners (uid/gid) as recorded in the tar. Only possible when running as root: otherwise
    /// every entry belongs to the caller, silently (nothing is skipped for it).
    bool preserve_ownership = true;
    /// Character and block device nodes are created only if this is set AND the process runs as
    /// root; otherwise they are skipped and reported. FIFOs are always created; sockets never.
    bool allow_device_nodes = false;
    /// Keep setuid/setgid bits and file capabilities (the security.capability xattr). false: the
    /// bits are cleared and the capability dropped, each counted in setid_cleared.
    bool allow_setid = false;
    /// Apply extended attributes of regular files and directories (a failure to set one, e.g.
    /// ENOTSUP, is reported in skipped, not thrown).
    bool xattrs = true;
};

struct skipped_entry {
    std::string path;  ///< sanitised
    std::string reason;
};

struct layer_summary {
    std::uint64_t entries_applied = 0;    ///< files, directories, links, nodes created or merged
    std::uint64_t whiteouts_applied = 0;  ///< ".wh.<name>" entries that removed something
    std::uint64_t opaque_dirs = 0;        ///< ".wh..wh..opq" markers applied
    std::uint64_t bytes_written = 0;      ///< file data written
    std::uint64_t setid_cleared = 0;      ///< entries whose setuid/setgid/capability was dropped
    std::uint64_t skipped_count = 0;      ///< every skipped entry (the list below keeps the first 100)
    std::vector<skipped_entry> skipped;

    layer_summary& operator+=(const layer_summary& other);
};

/// Applies one layer on top of what `rootfs` (an existing directory) holds.
layer_summary apply_layer(const std::filesystem::path& rootfs, const std::filesystem::path& layer_blob,
                          const layer_options& options = {});

struct layer {
    std::filesystem::path blob;
    layer_options options;
};

/// Applies `layers` in order into a new directory `rootfs`, which must not exist: they are applied
/// into a temporary directory beside it, synced (syncfs) and renamed to `rootfs` only when every
/// layer succeeded. On failure the temporary directory is removed and `rootfs` not created.
/// An existing `rootfs` is refused (file_exists). Returns the sum of the layers' summaries.
layer_summary apply_layers(const std::filesystem::path& rootfs, const std::vector<layer>& layers);

}  // namespace vmrt::image
