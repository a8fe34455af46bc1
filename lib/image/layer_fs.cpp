// In-root resolution and symlink-safe tree removal; see layer_fs.hpp.
#include "image/layer_fs.hpp"

#include <vmrt/error.hpp>

#include <boost/system/system_error.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

namespace vmrt::image::detail {

namespace {

[[noreturn]] void throw_errno(const std::string& what) {
    throw boost::system::system_error(error_code(errno, boost::system::system_category()), what);
}

struct dir_closer {
    void operator()(DIR* d) const noexcept { ::closedir(d); }
};

/// The names in a directory (without "." and ".."), read through a duplicate of `dir_fd`.
std::vector<std::string> list_names(int dir_fd) {
    const int dup_fd = ::openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dup_fd < 0) throw_errno("cannot open a directory to list it");
    std::unique_ptr<DIR, dir_closer> dir(::fdopendir(dup_fd));
    if (!dir) {
        ::close(dup_fd);
        throw_errno("cannot list a directory");
    }
    std::vector<std::string> names;
    errno = 0;
    while (const dirent* e = ::readdir(dir.get())) {
        const std::string_view n = e->d_name;
        if (n != "." && n != "..") names.emplace_back(n);
        errno = 0;
    }
    if (errno != 0) throw_errno("cannot list a directory");
    return names;
}

}  // namespace

unique_fd open_dir_below(int root_fd, const std::string& rel, resolve_mode mode, int& err) noexcept {
    open_how how{};
    how.flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC;
    how.resolve = mode == resolve_mode::in_root
                      ? RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS
                      : RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    const char* path = rel.empty() ? "." : rel.c_str();
    // EAGAIN: a concurrent rename or mount elsewhere on the system; the kernel asks for a retry.
    for (int attempt = 0; attempt < 16; ++attempt) {
        const long fd = ::syscall(SYS_openat2, root_fd, path, &how, sizeof how);
        if (fd >= 0) {
            err = 0;
            return unique_fd(static_cast<int>(fd));
        }
        err = errno;
        if (err != EAGAIN && err != EINTR) break;
    }
    return {};
}

bool remove_tree(int dir_fd, const std::string& name) {
    struct stat st {};
    if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) return false;
        throw_errno("cannot inspect an entry to remove it");
    }
    if (S_ISDIR(st.st_mode)) {
        // O_NOFOLLOW: if the directory was swapped for a symlink since fstatat, this fails.
        unique_fd sub(::openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!sub) throw_errno("cannot open a directory to remove it");
        for (const auto& child : list_names(sub.get())) remove_tree(sub.get(), child);
        if (::unlinkat(dir_fd, name.c_str(), AT_REMOVEDIR) != 0) throw_errno("cannot remove a directory");
    } else if (::unlinkat(dir_fd, name.c_str(), 0) != 0 && errno != ENOENT) {
        throw_errno("cannot remove an entry");
    }
    return true;
}

void prune_tree(int dir_fd, const std::string& rel, const std::function<bool(const std::string&)>& keep) {
    for (const auto& name : list_names(dir_fd)) {
        const std::string child = rel.empty() ? name : rel + "/" + name;
        if (!keep(child)) {
            remove_tree(dir_fd, name);
            continue;
        }
        struct stat st {};
        if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
            throw_errno("cannot inspect an entry");
        if (!S_ISDIR(st.st_mode)) continue;
        unique_fd sub(::openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!sub) throw_errno("cannot open a directory to prune it");
        prune_tree(sub.get(), child, keep);
    }
}

unique_fd open_root(const std::filesystem::path& rootfs) {
    unique_fd fd(::open(rootfs.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd) {
        const int err = errno;
        throw vmrt::error(error_code(err, boost::system::system_category()),
                          {.message = "cannot open the rootfs directory " + rootfs.string() + ": " +
                                      std::string(::strerror(err)),
                           .field = "rootfs"});
    }
    return fd;
}

}  // namespace vmrt::image::detail
