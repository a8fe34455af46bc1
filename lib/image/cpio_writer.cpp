#include "image/cpio_writer.hpp"

#include "image/archive_handles.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <memory>
#include <stdexcept>

namespace vmrt::image {
namespace {

[[noreturn]] void fail(struct archive* a, const std::string& what) {
    const char* why = archive_error_string(a);
    throw std::runtime_error("writing the cpio archive: " + what + ": " + (why ? why : "unknown error"));
}

void check(struct archive* a, int rc, const char* what) {
    if (rc != ARCHIVE_OK) fail(a, what);
}

// libarchive's output callback: collect everything in a string.
la_ssize_t append_to_string(struct archive*, void* client, const void* buffer, size_t length) {
    static_cast<std::string*>(client)->append(static_cast<const char*>(buffer), length);
    return static_cast<la_ssize_t>(length);
}

}  // namespace

std::optional<std::string> safe_relative_path(std::string_view path) {
    if (path.starts_with("./")) path.remove_prefix(2);
    if (path.empty() || path.front() == '/' || path.back() == '/') return std::nullopt;
    std::string_view rest = path;
    while (true) {
        auto slash = rest.find('/');
        auto part = rest.substr(0, slash);
        if (part.empty() || part == "." || part == ".." || part.find('\0') != std::string_view::npos)
            return std::nullopt;
        if (slash == std::string_view::npos) break;
        rest.remove_prefix(slash + 1);
    }
    return std::string(path);
}

void cpio_archive::add(std::string_view raw_path, entry e) {
    auto path = safe_relative_path(raw_path);
    if (!path) throw std::invalid_argument("unsafe path in the initramfs: \"" + std::string(raw_path) + "\"");
    // Parents first; each must be (or become) a directory.
    for (auto slash = path->find('/'); slash != std::string::npos; slash = path->find('/', slash + 1)) {
        auto parent = path->substr(0, slash);
        auto it = entries_.find(parent);
        if (it == entries_.end())
            entries_.emplace(parent, entry{kind::directory, 0755, {}, 0});
        else if (it->second.type != kind::directory)
            throw std::invalid_argument("initramfs: \"" + parent + "\" is not a directory");
    }
    auto [it, inserted] = entries_.try_emplace(*path, e);
    if (inserted || it->second == e) return;
    // A directory may be declared again (after being created as a parent): the last mode wins.
    if (it->second.type == kind::directory && e.type == kind::directory) {
        it->second.mode = e.mode;
        return;
    }
    throw std::invalid_argument("initramfs: \"" + *path + "\" added twice with different contents");
}

void cpio_archive::add_directory(std::string_view path, mode_t mode) {
    add(path, entry{kind::directory, mode & 07777, {}, 0});
}

void cpio_archive::add_file(std::string_view path, std::string contents, mode_t mode) {
    add(path, entry{kind::file, mode & 07777, std::move(contents), 0});
}

void cpio_archive::add_symlink(std::string_view path, std::string_view target) {
    if (target.empty() || target.find('\0') != std::string_view::npos)
        throw std::invalid_argument("initramfs: bad symlink target for \"" + std::string(path) + "\"");
    add(path, entry{kind::symlink, 0777, std::string(target), 0});
}

void cpio_archive::add_char_device(std::string_view path, unsigned major, unsigned minor, mode_t mode) {
    add(path, entry{kind::char_device, mode & 07777, {}, makedev(major, minor)});
}

bool cpio_archive::contains(std::string_view path) const { return entries_.find(path) != entries_.end(); }

std::string cpio_archive::write(bool gzip) const {
    archive_writer_ptr owner(archive_write_new());
    struct archive* a = owner.get();
    if (!a) throw std::runtime_error("archive_write_new failed");
    check(a, archive_write_set_format_cpio_newc(a), "newc format");
    if (gzip) {
        check(a, archive_write_add_filter_gzip(a), "gzip filter");
        // Without this the gzip header carries the current time and no two builds are equal.
        check(a, archive_write_set_filter_option(a, "gzip", "timestamp", nullptr), "gzip timestamp option");
        check(a, archive_write_set_filter_option(a, "gzip", "compression-level", "9"), "gzip level option");
    }
    // No padding of the last block: the kernel does not need it and it only adds bytes.
    check(a, archive_write_set_bytes_in_last_block(a, 1), "block size");

    std::string out;
    check(a, archive_write_open2(a, &out, nullptr, append_to_string, nullptr, nullptr), "open");

    archive_entry_ptr holder(archive_entry_new());
    archive_entry* e = holder.get();
    std::int64_t inode = 0;
    for (const auto& [path, item] : entries_) {
        archive_entry_clear(e);
        archive_entry_set_pathname(e, path.c_str());
        archive_entry_set_uid(e, 0);
        archive_entry_set_gid(e, 0);
        archive_entry_set_mtime(e, 0, 0);
        archive_entry_set_ino(e, ++inode);
        archive_entry_set_nlink(e, item.type == kind::directory ? 2 : 1);
        archive_entry_set_perm(e, item.mode);
        archive_entry_set_size(e, 0);  // libarchive wants a size on every entry
        switch (item.type) {
        case kind::directory:
            archive_entry_set_filetype(e, AE_IFDIR);
            break;
        case kind::file:
            archive_entry_set_filetype(e, AE_IFREG);
            archive_entry_set_size(e, static_cast<la_int64_t>(item.data.size()));
            break;
        case kind::symlink:
            archive_entry_set_filetype(e, AE_IFLNK);
            archive_entry_set_symlink(e, item.data.c_str());
            break;
        case kind::char_device:
            archive_entry_set_filetype(e, AE_IFCHR);
            archive_entry_set_rdev(e, item.rdev);
            break;
        }
        if (archive_write_header(a, e) != ARCHIVE_OK) fail(a, path);
        if (item.type == kind::file && !item.data.empty() &&
            archive_write_data(a, item.data.data(), item.data.size()) !=
                static_cast<la_ssize_t>(item.data.size()))
            fail(a, path);
    }
    check(a, archive_write_close(a), "close");
    return out;
}

}  // namespace vmrt::image
