// Writing one non-whiteout layer entry. The parent directory is resolved inside the rootfs; the
// entry's own name is never followed: whatever is there is removed, and the new entry is created
// with calls that fail rather than follow a symlink (O_EXCL|O_NOFOLLOW, mkdirat, symlinkat,
// linkat without AT_SYMLINK_FOLLOW, mknodat).
#include "image/layer_applier.hpp"
#include "image/layer_paths.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace vmrt::image::detail {

namespace {

void entry_times(archive_entry* entry, struct timespec (&times)[2]) {
    times[1] = {static_cast<time_t>(archive_entry_mtime(entry)), archive_entry_mtime_nsec(entry)};
    times[0] = archive_entry_atime_is_set(entry) ? timespec{static_cast<time_t>(archive_entry_atime(entry)),
                                                            archive_entry_atime_nsec(entry)}
                                                 : times[1];
}

}  // namespace

void layer_applier::apply_regular(archive_entry* entry, const std::vector<std::string>& parts,
                                  const std::string& raw) {
    const char* hardlink = archive_entry_hardlink(entry);
    if (!hardlink) hardlink = archive_entry_hardlink_utf8(entry);
    const mode_t type = archive_entry_filetype(entry);
    if (parts.empty()) {
        // "./": the rootfs itself. Only its metadata can change.
        if (hardlink || type != AE_IFDIR) refuse_entry(raw, "a non-directory entry for the rootfs itself");
        pending_directory d{{}, permissions(entry, false), {}};
        entry_times(entry, d.times);
        directories_.push_back(std::move(d));
        if (as_root_ && options_.preserve_ownership &&
            ::fchown(root_fd_, static_cast<uid_t>(archive_entry_uid(entry)),
                     static_cast<gid_t>(archive_entry_gid(entry))) != 0)
            fail_entry(raw, "cannot set the owner of", errno);
        ++summary_.entries_applied;
        return;
    }
    if (!hardlink) {
        if ((type == AE_IFCHR || type == AE_IFBLK) && !(options_.allow_device_nodes && as_root_)) {
            skip(raw,
                 as_root_ ? "device node (not allowed by the options)" : "device node (not running as root)");
            return;
        }
        if (type == AE_IFSOCK) {
            skip(raw, "socket");
            return;
        }
        if (type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK && type != AE_IFIFO &&
            type != AE_IFCHR && type != AE_IFBLK)
            refuse_entry(raw, "unknown entry type");
    }
    remember_written(parts);
    const auto dir = open_parent(parts, raw);
    const std::string& name = parts.back();
    if (hardlink) {
        make_hardlink(entry, dir.get(), name, raw);
    } else if (type == AE_IFREG) {
        make_file(entry, dir.get(), name, raw);
    } else if (type == AE_IFDIR) {
        make_directory(entry, dir.get(), parts, raw);
    } else if (type == AE_IFLNK) {
        make_symlink(entry, dir.get(), name, raw);
    } else {
        make_node(entry, dir.get(), name, raw);
    }
    ++summary_.entries_applied;
}

unique_fd layer_applier::open_parent(const std::vector<std::string>& parts, const std::string& raw) {
    int err = 0;
    auto dir = open_dir_below(root_fd_, join_path(parts, parts.size() - 1), resolve_mode::in_root, err);
    if (dir) return dir;
    if (err != ENOENT) fail_entry(raw, "cannot open its directory", err);
    // Some directory is missing: walk down, creating each missing one inside the directory its
    // prefix resolves to (mkdirat of a single name never follows anything).
    unique_fd current(::openat(root_fd_, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!current) fail_entry(raw, "cannot open the rootfs", errno);
    for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
        const std::string prefix = join_path(parts, i + 1);
        auto next = open_dir_below(root_fd_, prefix, resolve_mode::in_root, err);
        if (!next && err == ENOENT) {
            const bool created = ::mkdirat(current.get(), parts[i].c_str(), 0755) == 0;
            if (!created && errno != EEXIST)
                fail_entry(raw, "cannot create the directory \"" + sanitise_name(prefix) + "\"", errno);
            next = open_dir_below(root_fd_, prefix, resolve_mode::in_root, err);
            // 0755 whatever the caller's umask: an implied directory of a rootfs is world-readable.
            if (created && next && ::fchmod(next.get(), 0755) != 0)
                fail_entry(raw, "cannot set the mode of", errno);
            // Still missing: the name is a symlink whose target does not exist in the rootfs.
            if (!next && err == ENOENT)
                refuse_entry(raw, "\"" + sanitise_name(prefix) + "\" is a dangling symlink");
        }
        if (!next) fail_entry(raw, "cannot open the directory \"" + sanitise_name(prefix) + "\"", err);
        current = std::move(next);
    }
    return current;
}

bool layer_applier::prepare_slot(int dir_fd, const std::string& name, bool new_is_dir) {
    struct stat st {};
    if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return false;
    if (new_is_dir && S_ISDIR(st.st_mode)) return true;
    remove_tree(dir_fd, name);
    return false;
}

mode_t layer_applier::permissions(archive_entry* entry, bool may_clear_setid) {
    mode_t mode = archive_entry_perm(entry) & 07777;
    if (may_clear_setid && !options_.allow_setid && (mode & (S_ISUID | S_ISGID))) {
        mode &= ~static_cast<mode_t>(S_ISUID | S_ISGID);
        ++summary_.setid_cleared;
    }
    return mode;
}

void layer_applier::set_owner(int dir_fd, const std::string& name, archive_entry* entry,
                              const std::string& raw) {
    if (!as_root_ || !options_.preserve_ownership) return;
    if (::fchownat(dir_fd, name.c_str(), static_cast<uid_t>(archive_entry_uid(entry)),
                   static_cast<gid_t>(archive_entry_gid(entry)), AT_SYMLINK_NOFOLLOW) != 0)
        fail_entry(raw, "cannot set the owner of", errno);
}

void layer_applier::set_xattrs(int fd, archive_entry* entry, const std::string& raw) {
    if (!options_.xattrs || archive_entry_xattr_reset(entry) == 0) return;
    const char* key = nullptr;
    const void* value = nullptr;
    size_t size = 0;
    bool dropped = false;
    while (archive_entry_xattr_next(entry, &key, &value, &size) == ARCHIVE_OK) {
        if (!key) continue;
        const std::string_view k = key;
        if (k == "security.capability" && !options_.allow_setid) {
            dropped = true;
            continue;
        }
        if (::fsetxattr(fd, key, value, size, 0) != 0)
            skip(raw, "extended attribute " + sanitise_name(k) + ": " + std::strerror(errno));
    }
    if (dropped) ++summary_.setid_cleared;
}

void layer_applier::make_file(archive_entry* entry, int dir_fd, const std::string& name,
                              const std::string& raw) {
    prepare_slot(dir_fd, name, false);
    unique_fd fd(::openat(dir_fd, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!fd) fail_entry(raw, "cannot create the file", errno);
    // Blocks come with their offsets: the gaps of a sparse entry stay holes.
    const void* block = nullptr;
    size_t size = 0;
    la_int64_t offset = 0;
    for (;;) {
        const int r = archive_read_data_block(archive_.get(), &block, &size, &offset);
        if (r == ARCHIVE_EOF) break;
        if (r < ARCHIVE_WARN) {
            const char* why = archive_error_string(archive_.get());
            refuse_entry(raw, "unreadable data: " + sanitise_name(why ? why : "unknown error"));
        }
        const auto* bytes = static_cast<const char*>(block);
        while (size > 0) {
            const ssize_t n = ::pwrite(fd.get(), bytes, size, static_cast<off_t>(offset));
            if (n < 0) {
                if (errno == EINTR) continue;
                fail_entry(raw, "cannot write the file", errno);
            }
            bytes += n;
            size -= static_cast<size_t>(n);
            offset += n;
            summary_.bytes_written += static_cast<std::uint64_t>(n);
        }
    }
    if (archive_entry_size_is_set(entry) &&
        ::ftruncate(fd.get(), static_cast<off_t>(archive_entry_size(entry))) != 0)
        fail_entry(raw, "cannot size the file", errno);
    // Owner before mode (chown clears setuid bits), capabilities after chown (it drops them too).
    if (as_root_ && options_.preserve_ownership &&
        ::fchown(fd.get(), static_cast<uid_t>(archive_entry_uid(entry)),
                 static_cast<gid_t>(archive_entry_gid(entry))) != 0)
        fail_entry(raw, "cannot set the owner of", errno);
    if (::fchmod(fd.get(), permissions(entry, true)) != 0) fail_entry(raw, "cannot set the mode of", errno);
    set_xattrs(fd.get(), entry, raw);
    struct timespec times[2];
    entry_times(entry, times);
    if (::futimens(fd.get(), times) != 0) fail_entry(raw, "cannot set the times of", errno);
}

void layer_applier::make_directory(archive_entry* entry, int dir_fd, const std::vector<std::string>& parts,
                                   const std::string& raw) {
    const std::string& name = parts.back();
    if (!prepare_slot(dir_fd, name, true) && ::mkdirat(dir_fd, name.c_str(), 0700) != 0)
        fail_entry(raw, "cannot create the directory", errno);
    unique_fd fd(::openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd) fail_entry(raw, "cannot open the directory", errno);
    if (as_root_ && options_.preserve_ownership &&
        ::fchown(fd.get(), static_cast<uid_t>(archive_entry_uid(entry)),
                 static_cast<gid_t>(archive_entry_gid(entry))) != 0)
        fail_entry(raw, "cannot set the owner of", errno);
    set_xattrs(fd.get(), entry, raw);
    // setgid on a directory only makes new files inherit its group: it is kept.
    pending_directory d{parts, permissions(entry, false), {}};
    entry_times(entry, d.times);
    directories_.push_back(std::move(d));
}

void layer_applier::make_symlink(archive_entry* entry, int dir_fd, const std::string& name,
                                 const std::string& raw) {
    const char* target = archive_entry_symlink(entry);
    if (!target) target = archive_entry_symlink_utf8(entry);
    if (!target || !*target) refuse_entry(raw, "symlink without a target");
    // The target is stored as it is: it is only ever resolved inside the rootfs (here, and by the
    // guest that boots it), so "/" or "../.." cannot reach the host.
    prepare_slot(dir_fd, name, false);
    if (::symlinkat(target, dir_fd, name.c_str()) != 0) fail_entry(raw, "cannot create the symlink", errno);
    set_owner(dir_fd, name, entry, raw);
    struct timespec times[2];
    entry_times(entry, times);
    if (::utimensat(dir_fd, name.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0)
        fail_entry(raw, "cannot set the times of", errno);
}

void layer_applier::make_hardlink(archive_entry* entry, int dir_fd, const std::string& name,
                                  const std::string& raw) {
    const char* link = archive_entry_hardlink(entry);
    if (!link) link = archive_entry_hardlink_utf8(entry);
    // The target is an archive path like any entry name: ".." refuses the layer, "/x" is <rootfs>/x.
    std::vector<std::string> target;
    try {
        target = normalize_entry_path(link);
    } catch (const vmrt::error& e) {
        refuse_entry(raw, "hard link target: " + e.diag().message);
    }
    if (target.empty()) refuse_entry(raw, "hard link to the rootfs itself");
    int err = 0;
    const auto target_dir =
        open_dir_below(root_fd_, join_path(target, target.size() - 1), resolve_mode::in_root, err);
    if (!target_dir) refuse_entry(raw, "hard link to \"" + sanitise_name(link) + "\", which does not exist");
    struct stat st {};
    if (::fstatat(target_dir.get(), target.back().c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
        refuse_entry(raw, "hard link to \"" + sanitise_name(link) + "\", which does not exist");
    if (S_ISDIR(st.st_mode)) refuse_entry(raw, "hard link to a directory");
    struct stat self {};
    if (::fstatat(dir_fd, name.c_str(), &self, AT_SYMLINK_NOFOLLOW) == 0 && self.st_dev == st.st_dev &&
        self.st_ino == st.st_ino)
        return;  // already the same file (a link to itself, or a repeated entry)
    prepare_slot(dir_fd, name, false);
    // flags 0: a symlink target is linked as the symlink itself, never followed.
    if (::linkat(target_dir.get(), target.back().c_str(), dir_fd, name.c_str(), 0) != 0)
        fail_entry(raw, "cannot create the hard link", errno);
}

void layer_applier::make_node(archive_entry* entry, int dir_fd, const std::string& name,
                              const std::string& raw) {
    prepare_slot(dir_fd, name, false);
    const mode_t type = archive_entry_filetype(entry) == AE_IFIFO   ? S_IFIFO
                        : archive_entry_filetype(entry) == AE_IFCHR ? S_IFCHR
                                                                    : S_IFBLK;
    const dev_t dev = type == S_IFIFO ? 0
                                      : makedev(static_cast<unsigned>(archive_entry_rdevmajor(entry)),
                                                static_cast<unsigned>(archive_entry_rdevminor(entry)));
    if (::mknodat(dir_fd, name.c_str(), type | 0600, dev) != 0)
        fail_entry(raw, "cannot create the node", errno);
    set_owner(dir_fd, name, entry, raw);
    // The node was just created by this call, in a directory only this process writes: fchmodat
    // (which cannot refuse symlinks) meets the node itself.
    if (::fchmodat(dir_fd, name.c_str(), permissions(entry, true), 0) != 0)
        fail_entry(raw, "cannot set the mode of", errno);
    struct timespec times[2];
    entry_times(entry, times);
    if (::utimensat(dir_fd, name.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0)
        fail_entry(raw, "cannot set the times of", errno);
}

}  // namespace vmrt::image::detail
