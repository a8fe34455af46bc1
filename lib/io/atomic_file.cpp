#include <vmrt/io/atomic_file.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <random>
#include <string>

namespace vmrt::io {
namespace {

error_code last_error() { return {errno, boost::system::system_category()}; }

// Writes all of `data`, retrying short writes and EINTR.
error_code write_all(int fd, std::string_view data) {
    while (!data.empty()) {
        ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            return last_error();
        }
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    return {};
}

std::string temp_name_for(const std::filesystem::path& target) {
    // Unique per attempt; the leading dot keeps it out of casual listings.
    static thread_local std::mt19937_64 rng{std::random_device{}()};
    return "." + target.filename().string() + ".tmp." + std::to_string(::getpid()) + "." +
           std::to_string(rng() & 0xffffff);
}

}  // namespace

error_code sync_directory(const std::filesystem::path& dir) noexcept {
    int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return last_error();
    error_code ec;
    if (::fsync(fd) != 0) ec = last_error();
    ::close(fd);
    return ec;
}

void write_file_atomically(const std::filesystem::path& target, std::string_view contents,
                           std::filesystem::perms perms, error_code& ec) noexcept {
    ec.clear();
    const auto dir = target.parent_path();
    std::filesystem::path temp;
    int fd = -1;
    for (int attempt = 0; attempt < 16 && fd < 0; ++attempt) {
        temp = dir / temp_name_for(target);
        fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, static_cast<mode_t>(perms));
        if (fd < 0 && errno != EEXIST) break;
    }
    if (fd < 0) {
        ec = last_error();
        return;
    }
    ec = write_all(fd, contents);
    // fchmod: the umask may have narrowed the mode given to open().
    if (!ec && ::fchmod(fd, static_cast<mode_t>(perms)) != 0) ec = last_error();
    if (!ec && ::fsync(fd) != 0) ec = last_error();
    if (::close(fd) != 0 && !ec) ec = last_error();
    if (!ec && ::rename(temp.c_str(), target.c_str()) != 0) ec = last_error();
    if (ec) {
        ::unlink(temp.c_str());
        return;
    }
    ec = sync_directory(dir);
}

void write_file_atomically(const std::filesystem::path& target, std::string_view contents,
                           std::filesystem::perms perms) {
    error_code ec;
    write_file_atomically(target, contents, perms, ec);
    if (ec) throw boost::system::system_error(ec, "atomic write of " + target.string());
}

}  // namespace vmrt::io
