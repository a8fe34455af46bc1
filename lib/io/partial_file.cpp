#include "io/partial_file.hpp"

#include <vmrt/io/atomic_file.hpp>

#include <boost/system/system_error.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <random>
#include <string>

namespace vmrt::io::detail {
namespace {

[[noreturn]] void throw_errno(int e, const std::string& what) {
    throw boost::system::system_error({e, boost::system::system_category()}, what);
}

}  // namespace

partial_file::partial_file(const std::filesystem::path& final_path) {
    static thread_local std::mt19937_64 rng{std::random_device{}()};
    const auto dir = final_path.parent_path();
    for (int attempt = 0; attempt < 16 && fd_ < 0; ++attempt) {
        path_ = dir / ("." + final_path.filename().string() + ".partial." + std::to_string(::getpid()) + "." +
                       std::to_string(rng() & 0xffffffff));
        fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd_ < 0 && errno != EEXIST) break;
    }
    if (fd_ < 0)
        throw_errno(errno,
                    "cannot create a temporary file in " + (dir.empty() ? std::string(".") : dir.string()));
}

partial_file::~partial_file() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(path_.c_str());
}

void partial_file::write(const void* data, std::size_t size) {
    const char* p = static_cast<const char*>(data);
    while (size > 0) {
        ssize_t n = ::write(fd_, p, size);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw_errno(errno, "write to " + path_.string());
        p += n;
        size -= static_cast<std::size_t>(n);
        size_ += static_cast<std::uint64_t>(n);
    }
}

void partial_file::truncate() {
    if (::ftruncate(fd_, 0) != 0) throw_errno(errno, "truncate " + path_.string());
    if (::lseek(fd_, 0, SEEK_SET) != 0) throw_errno(errno, "seek in " + path_.string());
    size_ = 0;
}

void partial_file::commit(const std::filesystem::path& final_path, std::filesystem::perms perms) {
    // fchmod rather than the mode given to open(): the umask must not narrow an asset's mode.
    if (::fchmod(fd_, static_cast<mode_t>(perms)) != 0) throw_errno(errno, "chmod " + path_.string());
    if (::fsync(fd_) != 0) throw_errno(errno, "fsync " + path_.string());
    int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) throw_errno(errno, "close " + path_.string());
    if (::rename(path_.c_str(), final_path.c_str()) != 0)
        throw_errno(errno, "rename " + path_.string() + " to " + final_path.string());
    committed_ = true;
    if (auto ec = sync_directory(final_path.parent_path()))
        throw boost::system::system_error(ec, "fsync of the directory of " + final_path.string());
}

}  // namespace vmrt::io::detail
