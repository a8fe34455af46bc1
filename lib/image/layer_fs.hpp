// Descriptor-based file operations that cannot leave a root directory: resolving a directory
// inside it with openat2, and removing or pruning trees without following any symlink.
#pragma once

#include <vmrt/io/unique_fd.hpp>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace vmrt::image::detail {

using io::unique_fd;

/// How a path below the root is resolved.
enum class resolve_mode {
    in_root,      ///< RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS: symlinks followed as if root were "/"
    no_symlinks,  ///< RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS
};

/// openat2(root_fd, rel, O_RDONLY|O_DIRECTORY|O_CLOEXEC) with `mode`; "" is the root itself. On
/// failure returns an empty descriptor and sets `err` to the errno (ENOENT, ENOTDIR, ELOOP for a
/// symlink under no_symlinks, EXDEV for an escape attempt, ENOSYS without openat2).
unique_fd open_dir_below(int root_fd, const std::string& rel, resolve_mode mode, int& err) noexcept;

/// Removes the entry `name` of `dir_fd` and, for a directory, everything below it. Symlinks are
/// removed, never followed. Returns false if there was nothing to remove. Throws
/// boost::system::system_error (errno) on failure.
bool remove_tree(int dir_fd, const std::string& name);

/// Removes every entry below the directory `dir_fd` (whose path below the root is `rel`) for which
/// `keep(path below the root)` is false; kept directories are pruned recursively in turn.
void prune_tree(int dir_fd, const std::string& rel, const std::function<bool(const std::string&)>& keep);

/// Opens a directory path as the rootfs (following symlinks in the caller's own path). Throws
/// vmrt::error naming it.
unique_fd open_root(const std::filesystem::path& rootfs);

}  // namespace vmrt::image::detail
