// Reading a layer with libarchive, dispatching its entries, and the whiteouts: they delete what
// lower layers left, resolved beneath the rootfs without following symlinks, and spare every path
// this layer wrote (OCI image spec: whiteouts never hide entries of their own layer).
#include "image/layer_applier.hpp"

#include "image/layer_paths.hpp"

#include <boost/system/system_error.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

namespace vmrt::image::detail {

namespace fs = std::filesystem;

namespace {

blob_compression sniff_compression(int fd) {
    std::array<unsigned char, 4> magic{};
    const ssize_t n = ::pread(fd, magic.data(), magic.size(), 0);
    if (n >= 2 && magic[0] == 0x1f && magic[1] == 0x8b) return blob_compression::gzip;
    if (n >= 4 && magic[0] == 0x28 && magic[1] == 0xb5 && magic[2] == 0x2f && magic[3] == 0xfd)
        return blob_compression::zstd;
    return blob_compression::none;
}

const char* compression_name(blob_compression c) {
    switch (c) {
    case blob_compression::gzip:
        return "gzip";
    case blob_compression::zstd:
        return "zstd";
    case blob_compression::none:
        return "uncompressed";
    case blob_compression::detect:
        break;
    }
    return "detected";
}

}  // namespace

layer_applier::layer_applier(int root_fd, fs::path blob, const layer_options& options)
    : root_fd_(root_fd), blob_(std::move(blob)), options_(options), as_root_(::geteuid() == 0) {}

void layer_applier::open_archive() {
    blob_fd_.reset(::open(blob_.c_str(), O_RDONLY | O_CLOEXEC));
    if (!blob_fd_) {
        const int err = errno;
        throw vmrt::error(error_code(err, boost::system::system_category()),
                          {.message = "cannot open the layer " + blob_.string() + ": " + std::strerror(err),
                           .field = "layer_blob"});
    }
    // The blob's own magic decides; a media type that says otherwise is a broken manifest.
    const blob_compression found = sniff_compression(blob_fd_.get());
    if (options_.compression != blob_compression::detect && options_.compression != found)
        throw vmrt::error(errc::protocol_error,
                          {.message = "the layer " + blob_.string() + " is " + compression_name(found) +
                                      " but its media type says " + compression_name(options_.compression),
                           .field = "layer_blob"});
    archive_.reset(archive_read_new());
    if (!archive_) throw std::bad_alloc();
    // Only the filter the magic named and only tar formats: nothing else is probed.
    if (found == blob_compression::gzip) archive_read_support_filter_gzip(archive_.get());
    if (found == blob_compression::zstd && archive_read_support_filter_zstd(archive_.get()) != ARCHIVE_OK)
        throw vmrt::error(errc::unsupported,
                          {.message = "this libarchive cannot read zstd layers", .field = "layer_blob"});
    archive_read_support_format_tar(archive_.get());
    if (archive_read_open_fd(archive_.get(), blob_fd_.get(), 256 * 1024) != ARCHIVE_OK)
        throw vmrt::error(errc::protocol_error,
                          {.message = "cannot read the layer " + blob_.string() + ": " +
                                      sanitise_name(archive_error_string(archive_.get())
                                                        ? archive_error_string(archive_.get())
                                                        : "unknown error"),
                           .field = "layer_blob"});
}

layer_summary layer_applier::run() {
    open_archive();
    for (;;) {
        archive_entry* entry = nullptr;
        int r = archive_read_next_header(archive_.get(), &entry);
        while (r == ARCHIVE_RETRY) r = archive_read_next_header(archive_.get(), &entry);
        if (r == ARCHIVE_EOF) break;
        if (r < ARCHIVE_WARN) {
            // ARCHIVE_FAILED (an unreadable entry) refuses the layer too: applying the rest would
            // give a rootfs that silently lacks a file.
            const char* why = archive_error_string(archive_.get());
            throw vmrt::error(errc::protocol_error, {.message = "malformed layer " + blob_.string() + ": " +
                                                                sanitise_name(why ? why : "unreadable entry"),
                                                     .field = "layer_blob"});
        }
        const char* name = archive_entry_pathname(entry);
        if (!name) name = archive_entry_pathname_utf8(entry);
        if (!name) refuse_entry("", "a name libarchive cannot decode");
        const std::string raw = name;
        try {
            apply_entry(entry, raw);
        } catch (const vmrt::error&) {
            throw;
        } catch (const boost::system::system_error& e) {
            throw vmrt::error(e.code(), {.message = "layer " + blob_.string() + ", entry \"" +
                                                    sanitise_name(raw) + "\": " + e.what(),
                                         .field = sanitise_name(raw)});
        }
    }
    finish_directories();
    return summary_;
}

void layer_applier::apply_entry(archive_entry* entry, const std::string& raw) {
    const auto parts = normalize_entry_path(raw);
    if (!parts.empty()) {
        for (std::size_t i = 0; i + 1 < parts.size(); ++i)
            if (classify_whiteout(parts[i]) != whiteout_kind::none) {
                skip(raw, "inside a whiteout name");
                return;
            }
        switch (classify_whiteout(parts.back())) {
        case whiteout_kind::remove:
            apply_whiteout(parts, raw);
            return;
        case whiteout_kind::opaque:
            apply_opaque(parts, raw);
            return;
        case whiteout_kind::meta:
            skip(raw, "aufs whiteout metadata");
            return;
        case whiteout_kind::none:
            break;
        }
    }
    apply_regular(entry, parts, raw);
}

void layer_applier::remember_written(const std::vector<std::string>& parts) {
    std::string rel;
    for (const auto& p : parts) {
        if (!rel.empty()) rel.push_back('/');
        rel += p;
        written_.insert(rel);
    }
}

void layer_applier::apply_whiteout(const std::vector<std::string>& parts, const std::string& raw) {
    const std::string target = whiteout_target(parts.back(), raw);
    const std::string dir_rel = join_path(parts, parts.size() - 1);
    int err = 0;
    const auto dir = open_dir_below(root_fd_, dir_rel, resolve_mode::no_symlinks, err);
    if (!dir) {
        if (err == ENOENT) {  // nothing below to hide
            ++summary_.whiteouts_applied;
            return;
        }
        if (err == ELOOP || err == EXDEV || err == ENOTDIR) {
            skip(raw, "its directory is a symlink or not a directory (whiteouts never follow symlinks)");
            return;
        }
        fail_entry(raw, "cannot open the whiteout's directory", err);
    }
    const std::string target_rel = dir_rel.empty() ? target : dir_rel + "/" + target;
    if (!written_by_this_layer(target_rel)) {
        remove_tree(dir.get(), target);
    } else {
        // This layer wrote the entry: only what lower layers left below a directory goes.
        struct stat st {};
        if (::fstatat(dir.get(), target.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode)) {
            unique_fd sub(
                ::openat(dir.get(), target.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
            if (!sub) fail_entry(raw, "cannot open the whited-out directory", errno);
            prune_tree(sub.get(), target_rel,
                       [this](const std::string& rel) { return written_by_this_layer(rel); });
        }
    }
    ++summary_.whiteouts_applied;
}

void layer_applier::apply_opaque(const std::vector<std::string>& parts, const std::string& raw) {
    const std::string dir_rel = join_path(parts, parts.size() - 1);
    int err = 0;
    const auto dir = open_dir_below(root_fd_, dir_rel, resolve_mode::no_symlinks, err);
    if (!dir) {
        if (err == ENOENT) {
            ++summary_.opaque_dirs;
            return;
        }
        if (err == ELOOP || err == EXDEV || err == ENOTDIR) {
            skip(raw, "opaque marker in a symlink or a non-directory (whiteouts never follow symlinks)");
            return;
        }
        fail_entry(raw, "cannot open the opaque directory", err);
    }
    prune_tree(dir.get(), dir_rel, [this](const std::string& rel) { return written_by_this_layer(rel); });
    ++summary_.opaque_dirs;
}

void layer_applier::finish_directories() {
    // Modes and times of directories are set last: creating their children would change the
    // times, and a read-only mode would stop the children from being created by a non-root caller.
    for (const auto& d : directories_) {
        unique_fd fd;
        if (d.parts.empty()) {
            fd.reset(::openat(root_fd_, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        } else {
            int err = 0;
            const auto parent =
                open_dir_below(root_fd_, join_path(d.parts, d.parts.size() - 1), resolve_mode::in_root, err);
            // A later entry of the layer removed or replaced the directory: nothing to finish.
            if (!parent) continue;
            fd.reset(::openat(parent.get(), d.parts.back().c_str(),
                              O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        }
        if (!fd) continue;
        const std::string raw = join_path(d.parts);
        if (::fchmod(fd.get(), d.mode) != 0) fail_entry(raw, "cannot set the mode of", errno);
        if (::futimens(fd.get(), d.times) != 0) fail_entry(raw, "cannot set the times of", errno);
    }
}

void layer_applier::skip(const std::string& raw, const std::string& reason) {
    ++summary_.skipped_count;
    if (summary_.skipped.size() < max_skipped_listed)
        summary_.skipped.push_back({sanitise_name(raw), reason});
}

void layer_applier::fail_entry(const std::string& raw, const std::string& what, int err) const {
    throw vmrt::error(error_code(err, boost::system::system_category()),
                      {.message = "layer " + blob_.string() + ", entry \"" + sanitise_name(raw) +
                                  "\": " + what + ": " + std::strerror(err),
                       .field = sanitise_name(raw)});
}

}  // namespace vmrt::image::detail
