// The per-blob lock: flock(2) on locks/<hex>.lock. The holder unlinks the file before releasing,
// so locks/ holds only the locks in use; the inode check below makes that unlink safe.
#include "image/oci_store_detail.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

namespace vmrt::image::store_detail {

io::unique_fd try_lock_blob(const std::filesystem::path& lock_path) {
    for (;;) {
        io::unique_fd fd(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
        if (!fd) fail_errno(errno, "cannot open lock " + lock_path.string());
        if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
            if (errno == EWOULDBLOCK || errno == EINTR) return {};
            fail_errno(errno, "flock " + lock_path.string());
        }
        // We may have locked an inode that its previous holder unlinked just before releasing it
        // (we opened the old file, it was unlinked, we won the lock): a newcomer would create and
        // lock a fresh file at the same path, and we would both "hold" the lock. Only a lock on
        // the inode the path names now counts.
        struct stat held {
        }, named{};
        if (::fstat(fd.get(), &held) != 0) fail_errno(errno, "fstat " + lock_path.string());
        if (::stat(lock_path.c_str(), &named) != 0) {
            if (errno != ENOENT) fail_errno(errno, "stat " + lock_path.string());
        } else if (named.st_ino == held.st_ino && named.st_dev == held.st_dev) {
            return fd;
        }
    }
}

void unlock_blob(io::unique_fd& lock, const std::filesystem::path& lock_path) noexcept {
    if (!lock) return;
    ::unlink(lock_path.c_str());
    lock.reset();
}

}  // namespace vmrt::image::store_detail
