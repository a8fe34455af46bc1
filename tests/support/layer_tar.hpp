// Image layers written by tests: a list of tar entries (files, directories, links, nodes,
// whiteouts) turned into a tar, tar+gzip or tar+zstd file with libarchive. Names are written as
// given, hostile ones ("../x", "/etc/x") included: libarchive's writer does not sanitise them.
#pragma once

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>

#include <ctime>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace vmrt::test {

struct tar_entry {
    enum kind_t { file, dir, symlink, hardlink, fifo, chardev, blockdev } kind = file;
    std::string path;
    std::string data;  ///< file contents, or the target of a symlink / hard link
    mode_t mode = 0644;
    long uid = 0, gid = 0;
    std::time_t mtime = 1700000000;
    unsigned major = 0, minor = 0;
    std::vector<std::pair<std::string, std::string>> xattrs;
};

inline tar_entry tar_file(std::string path, std::string data, mode_t mode = 0644) {
    return {tar_entry::file, std::move(path), std::move(data), mode};
}
inline tar_entry tar_dir(std::string path, mode_t mode = 0755) {
    return {tar_entry::dir, std::move(path), {}, mode};
}
inline tar_entry tar_symlink(std::string path, std::string target) {
    return {tar_entry::symlink, std::move(path), std::move(target), 0777};
}
inline tar_entry tar_hardlink(std::string path, std::string target) {
    return {tar_entry::hardlink, std::move(path), std::move(target), 0644};
}
/// ".wh.<name>" beside <name>: `path` is the entry to delete ("etc/a" -> "etc/.wh.a").
inline tar_entry tar_whiteout(const std::string& path) {
    const auto slash = path.rfind('/');
    const std::string dir = slash == std::string::npos ? "" : path.substr(0, slash + 1);
    const std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
    return tar_file(dir + ".wh." + name, "");
}
/// The opaque marker of directory `dir` ("" for the root).
inline tar_entry tar_opaque(const std::string& dir) {
    return tar_file(dir.empty() ? ".wh..wh..opq" : dir + "/.wh..wh..opq", "");
}

enum class tar_compression { none, gzip, zstd };

inline void write_tar(const std::filesystem::path& out, const std::vector<tar_entry>& entries,
                      tar_compression compression = tar_compression::none) {
    struct archive* a = archive_write_new();
    auto check = [&](int r, const char* what) {
        if (r < ARCHIVE_WARN) {
            const std::string msg = std::string(what) + ": " + archive_error_string(a);
            archive_write_free(a);
            throw std::runtime_error(msg);
        }
    };
    check(archive_write_set_format_pax_restricted(a), "format");
    if (compression == tar_compression::gzip) check(archive_write_add_filter_gzip(a), "gzip");
    if (compression == tar_compression::zstd) check(archive_write_add_filter_zstd(a), "zstd");
    check(archive_write_open_filename(a, out.c_str()), "open");
    for (const auto& e : entries) {
        archive_entry* entry = archive_entry_new();
        archive_entry_set_pathname(entry, e.path.c_str());
        archive_entry_set_perm(entry, e.mode);
        archive_entry_set_uid(entry, e.uid);
        archive_entry_set_gid(entry, e.gid);
        archive_entry_set_mtime(entry, e.mtime, 0);
        switch (e.kind) {
        case tar_entry::file:
            archive_entry_set_filetype(entry, AE_IFREG);
            archive_entry_set_size(entry, static_cast<la_int64_t>(e.data.size()));
            break;
        case tar_entry::dir:
            archive_entry_set_filetype(entry, AE_IFDIR);
            break;
        case tar_entry::symlink:
            archive_entry_set_filetype(entry, AE_IFLNK);
            archive_entry_set_symlink(entry, e.data.c_str());
            break;
        case tar_entry::hardlink:
            archive_entry_set_filetype(entry, AE_IFREG);
            archive_entry_set_hardlink(entry, e.data.c_str());
            archive_entry_set_size(entry, 0);
            break;
        case tar_entry::fifo:
            archive_entry_set_filetype(entry, AE_IFIFO);
            break;
        case tar_entry::chardev:
        case tar_entry::blockdev:
            archive_entry_set_filetype(entry, e.kind == tar_entry::chardev ? AE_IFCHR : AE_IFBLK);
            archive_entry_set_rdevmajor(entry, e.major);
            archive_entry_set_rdevminor(entry, e.minor);
            break;
        }
        for (const auto& [key, value] : e.xattrs)
            archive_entry_xattr_add_entry(entry, key.c_str(), value.data(), value.size());
        const int r = archive_write_header(a, entry);
        archive_entry_free(entry);
        check(r, "header");
        if (e.kind == tar_entry::file && !e.data.empty() &&
            archive_write_data(a, e.data.data(), e.data.size()) != static_cast<la_ssize_t>(e.data.size()))
            check(ARCHIVE_FATAL, "data");
    }
    check(archive_write_close(a), "close");
    archive_write_free(a);
}

}  // namespace vmrt::test
