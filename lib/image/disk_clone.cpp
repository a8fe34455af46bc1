// clone_disk(): FICLONE, else a copy of the source's data ranges that leaves its holes as holes.
//
// The clone is assembled in a pending_file beside dst and renamed into place, so a failure (or a
// crash) never leaves a partial disk at dst. What the result reports is measured, not assumed:
// bytes_shared comes from FIEMAP on the finished clone, because copy_file_range silently shares
// extents on XFS and Btrfs.
#include "image/disk_extents.hpp"
#include "image/disk_files.hpp"

#include <vmrt/image/disk.hpp>

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <vector>

namespace vmrt::image {
namespace {

namespace fs = std::filesystem;
using detail::fail_at;
using detail::last_error;

/// Errors of FICLONE that mean "these files cannot share extents", not "something broke".
bool reflink_unsupported(int err) {
    return err == EXDEV || err == EOPNOTSUPP || err == EINVAL || err == ENOTTY || err == ENOSYS;
}

/// Errors of copy_file_range that mean "use read/write instead".
bool kernel_copy_unsupported(int err) {
    return err == EXDEV || err == ENOSYS || err == EOPNOTSUPP || err == EINVAL;
}

class range_copier {
public:
    range_copier(int src, int dst, const fs::path& src_path, const fs::path& dst_path, bool kernel_copy)
        : src_(src), dst_(dst), src_path_(src_path), dst_path_(dst_path), kernel_copy_(kernel_copy) {}

    /// Copies [offset, offset + length) of src to the same offset of dst.
    void copy(std::uint64_t offset, std::uint64_t length) {
        while (length > 0 && kernel_copy_) {
            auto in = static_cast<off_t>(offset), out = static_cast<off_t>(offset);
            const ssize_t n =
                ::copy_file_range(src_, &in, dst_, &out, std::min<std::uint64_t>(length, 1 << 30), 0);
            if (n < 0) {
                if (errno == EINTR) continue;
                if (!kernel_copy_unsupported(errno))
                    fail_at(last_error(), "cannot copy into", dst_path_, "dst");
                kernel_copy_ = false;  // for this and every later range
                break;
            }
            if (n == 0) source_shrank();
            advance(offset, length, static_cast<std::uint64_t>(n));
        }
        while (length > 0) {
            if (buffer_.empty()) buffer_.resize(1 << 20);
            const ssize_t n = ::pread(src_, buffer_.data(), std::min<std::uint64_t>(length, buffer_.size()),
                                      static_cast<off_t>(offset));
            if (n < 0) {
                if (errno == EINTR) continue;
                fail_at(last_error(), "cannot read", src_path_, "src");
            }
            if (n == 0) source_shrank();
            write_all(buffer_.data(), static_cast<std::size_t>(n), offset);
            advance(offset, length, static_cast<std::uint64_t>(n));
        }
    }

    std::uint64_t copied() const noexcept { return copied_; }

private:
    void advance(std::uint64_t& offset, std::uint64_t& length, std::uint64_t n) {
        offset += n;
        length -= n;
        copied_ += n;
    }

    void write_all(const char* data, std::size_t size, std::uint64_t offset) {
        while (size > 0) {
            const ssize_t n = ::pwrite(dst_, data, size, static_cast<off_t>(offset));
            if (n < 0) {
                if (errno == EINTR) continue;
                fail_at(last_error(), "cannot write", dst_path_, "dst");
            }
            data += n;
            size -= static_cast<std::size_t>(n);
            offset += static_cast<std::uint64_t>(n);
        }
    }

    [[noreturn]] void source_shrank() {
        fail_at(make_error_code(boost::system::errc::io_error),
                "the source changed during the copy:", src_path_, "src");
    }

    int src_, dst_;
    const fs::path &src_path_, &dst_path_;
    bool kernel_copy_;
    std::uint64_t copied_ = 0;
    std::vector<char> buffer_;
};

/// Copies the data ranges of src (SEEK_DATA/SEEK_HOLE); the ranges in between stay holes.
std::uint64_t sparse_copy(int src, int dst, std::uint64_t size, const fs::path& src_path,
                          const fs::path& dst_path, bool kernel_copy) {
    range_copier copier(src, dst, src_path, dst_path, kernel_copy);
    std::uint64_t pos = 0;
    while (pos < size) {
        off_t data = ::lseek(src, static_cast<off_t>(pos), SEEK_DATA);
        off_t hole = static_cast<off_t>(size);
        if (data < 0) {
            if (errno == ENXIO) break;  // nothing but a hole up to the end
            if (errno != EINVAL && errno != EOPNOTSUPP)
                fail_at(last_error(), "cannot seek in", src_path, "src");
            data = static_cast<off_t>(pos);  // no hole support: everything is data
        } else {
            hole = ::lseek(src, data, SEEK_HOLE);
            if (hole < 0) fail_at(last_error(), "cannot seek in", src_path, "src");
        }
        const auto begin = static_cast<std::uint64_t>(data);
        const auto end = std::min<std::uint64_t>(static_cast<std::uint64_t>(hole), size);
        if (begin >= end) break;
        copier.copy(begin, end - begin);
        pos = end;
    }
    // The size, including a trailing hole; the data ranges alone may end earlier.
    if (::ftruncate(dst, static_cast<off_t>(size)) != 0)
        fail_at(last_error(), "cannot resize", dst_path, "dst");
    return copier.copied();
}

}  // namespace

std::string_view to_string(clone_method m) noexcept {
    switch (m) {
    case clone_method::reflink:
        return "reflink";
    case clone_method::sparse_copy:
        return "sparse_copy";
    }
    return "unknown";
}

clone_result clone_disk(const fs::path& src, const fs::path& dst, const clone_options& options) {
    if (src.empty()) detail::bad_argument("src", "empty path");
    detail::unique_fd in(::open(src.c_str(), O_RDONLY | O_CLOEXEC));
    if (!in) fail_at(last_error(), "cannot open", src, "src");
    struct stat st {};
    if (::fstat(in.get(), &st) != 0) fail_at(last_error(), "cannot inspect", src, "src");
    if (!S_ISREG(st.st_mode)) detail::bad_argument("src", src.string() + " is not a regular file");
    detail::check_target(dst, options.overwrite, "dst");

    detail::pending_file out(dst, "clone", "dst");
    clone_result result;
    result.logical_size = static_cast<std::uint64_t>(st.st_size);

    bool cloned = false;
    if (options.strategy != clone_strategy::copy_only) {
        if (::ioctl(out.fd(), FICLONE, in.get()) == 0) {
            cloned = true;
        } else if (!reflink_unsupported(errno)) {
            fail_at(last_error(), "cannot clone into", dst, "dst");
        } else if (options.strategy == clone_strategy::reflink_only) {
            throw error(make_error_code(errc::unsupported),
                        {.message = "cannot reflink " + src.string() + " to " + dst.string() + ": " +
                                    last_error().message() +
                                    " (different file systems, or one without reflink)",
                         .field = "dst"});
        }
    }
    if (cloned) {
        result.method = clone_method::reflink;
    } else {
        result.method = clone_method::sparse_copy;
        result.bytes_copied =
            sparse_copy(in.get(), out.fd(), result.logical_size, src, dst, options.kernel_copy);
    }
    result.bytes_shared = detail::shared_extent_bytes(out.fd(), result.logical_size).value_or(0);
    out.commit(st.st_mode & 0777, options.overwrite);
    return result;
}

}  // namespace vmrt::image
