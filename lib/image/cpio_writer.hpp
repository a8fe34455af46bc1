// An initramfs in memory: a set of entries (directories, files, symlinks, device nodes) written
// as a newc cpio archive, optionally gzip-compressed, with libarchive.
//
// The output is reproducible: entries are written sorted by path (so parents precede their
// children, which the kernel's unpacker needs), with mtime 0, owner root:root, inode numbers in
// write order, and no timestamp in the gzip header.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace vmrt::image {

/// A path that is safe inside an archive: relative, components separated by single slashes,
/// no "." or ".." component, no NUL, no trailing slash. A leading "./" is accepted and removed.
/// Returns the normalized path, or nothing if `path` is unsafe.
std::optional<std::string> safe_relative_path(std::string_view path);

class cpio_archive {
public:
    /// Adds a directory. Missing parent directories of any entry are added with mode 0755.
    /// All add functions throw std::invalid_argument for an unsafe path (safe_relative_path) or a
    /// path that already holds a different entry.
    void add_directory(std::string_view path, mode_t mode = 0755);
    void add_file(std::string_view path, std::string contents, mode_t mode = 0644);
    void add_symlink(std::string_view path, std::string_view target);
    void add_char_device(std::string_view path, unsigned major, unsigned minor, mode_t mode = 0600);

    bool contains(std::string_view path) const;
    std::size_t size() const noexcept { return entries_.size(); }

    /// The archive: newc cpio, gzip-compressed if `gzip`. Throws std::runtime_error if
    /// libarchive fails.
    std::string write(bool gzip = true) const;

private:
    enum class kind { directory, file, symlink, char_device };
    struct entry {
        kind type;
        mode_t mode;       ///< permission bits only
        std::string data;  ///< file contents or symlink target
        dev_t rdev = 0;
        bool operator==(const entry&) const = default;
    };
    void add(std::string_view path, entry e);

    std::map<std::string, entry, std::less<>> entries_;  // sorted: a parent sorts before its children
};

}  // namespace vmrt::image
