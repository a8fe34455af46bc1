// Sparse raw disks: created and resized with ftruncate(2), so no block is allocated until the
// guest writes it.
#include "image/disk_extents.hpp"
#include "image/disk_files.hpp"

#include <vmrt/image/disk.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace vmrt::image {

namespace fs = std::filesystem;
using detail::fail_at;
using detail::last_error;

void create_raw_disk(const fs::path& path, std::uint64_t size_bytes, bool overwrite) {
    detail::check_disk_size(size_bytes, "size_bytes");
    detail::check_target(path, overwrite, "path");
    detail::pending_file disk(path, "raw", "path");
    if (::ftruncate(disk.fd(), static_cast<off_t>(size_bytes)) != 0)
        fail_at(last_error(), "cannot size", disk.path(), "path");
    disk.commit(0644, overwrite);
}

void resize_raw_disk(const fs::path& path, std::uint64_t new_size_bytes, bool allow_shrink) {
    detail::check_disk_size(new_size_bytes, "new_size_bytes");
    // No O_CREAT: resizing a disk that is not there is a mistake, not a request to make one.
    detail::unique_fd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd) fail_at(last_error(), "cannot open", path, "path");
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) fail_at(last_error(), "cannot inspect", path, "path");
    if (!S_ISREG(st.st_mode)) detail::bad_argument("path", path.string() + " is not a regular file");
    const auto old_size = static_cast<std::uint64_t>(st.st_size);
    if (new_size_bytes < old_size && !allow_shrink)
        detail::bad_argument("new_size_bytes", "shrinking " + path.string() + " from " +
                                                   std::to_string(old_size) + " to " +
                                                   std::to_string(new_size_bytes) +
                                                   " bytes would destroy data (allow_shrink to force it)");
    if (new_size_bytes == old_size) return;
    if (::ftruncate(fd.get(), static_cast<off_t>(new_size_bytes)) != 0)
        fail_at(last_error(), "cannot resize", path, "path");
    if (::fsync(fd.get()) != 0) fail_at(last_error(), "cannot sync", path, "path");
    if (auto ec = fd.close()) fail_at(ec, "cannot write", path, "path");
}

disk_usage query_disk_usage(const fs::path& file) {
    detail::unique_fd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) fail_at(last_error(), "cannot open", file, "path");
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) fail_at(last_error(), "cannot inspect", file, "path");
    disk_usage usage;
    usage.logical_size = static_cast<std::uint64_t>(st.st_size);
    usage.allocated_bytes = static_cast<std::uint64_t>(st.st_blocks) * 512;
    if (S_ISREG(st.st_mode)) usage.shared_bytes = detail::shared_extent_bytes(fd.get(), usage.logical_size);
    return usage;
}

}  // namespace vmrt::image
