// The per-digest cache of rootfs disks: one builder at a time per digest (flock, polled on a
// timer so that waiting never blocks the executor), temporary file renamed into place.
#include <vmrt/image/rootfs_disk.hpp>
#include <vmrt/io/atomic_file.hpp>
#include <vmrt/io/sha256.hpp>
#include <vmrt/io/unique_fd.hpp>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>

namespace vmrt::image {

namespace asio = boost::asio;
namespace fs = std::filesystem;

namespace {

[[noreturn]] void fail(int err, const std::string& what, const fs::path& path) {
    throw vmrt::error(
        error_code(err, boost::system::system_category()),
        {.message = what + " " + path.string() + ": " + std::strerror(err), .field = "cache_dir"});
}

std::string digest_hex(const std::string& digest) {
    constexpr std::string_view prefix = "sha256:";
    if (!digest.starts_with(prefix) || !io::is_sha256_hex(std::string_view(digest).substr(prefix.size())))
        throw vmrt::error(
            boost::system::errc::make_error_code(boost::system::errc::invalid_argument),
            {.message = "not an image digest (\"sha256:<64 hex digits>\"): \"" + digest.substr(0, 80) + "\"",
             .field = "image_digest"});
    return io::normalize_hex(std::string_view(digest).substr(prefix.size()));
}

bool disk_file_exists(const fs::path& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

/// The build's temporary file: removed unless it became the cached disk.
struct temp_disk {
    fs::path path;
    bool committed = false;
    ~temp_disk() {
        if (!committed) ::unlink(path.c_str());
    }
};

/// Removes what a crashed builder of this digest left ("<prefix>*"); only the lock holder calls it.
void remove_stale_builds(const fs::path& cache_dir, const std::string& prefix) {
    std::error_code ec;
    for (fs::directory_iterator it(cache_dir, ec), end; !ec && it != end; it.increment(ec))
        if (it->path().filename().native().starts_with(prefix)) ::unlink(it->path().c_str());
}

}  // namespace

fs::path rootfs_disk_cache_path(const fs::path& cache_dir, const std::string& image_digest) {
    return cache_dir / ("sha256-" + digest_hex(image_digest) + ".ext4");
}

asio::awaitable<cached_disk> cached_rootfs_disk(fs::path cache_dir, std::string image_digest,
                                                rootfs_disk_builder make) {
    const fs::path disk = rootfs_disk_cache_path(cache_dir, image_digest);
    if (disk_file_exists(disk)) co_return cached_disk{disk, false};

    std::error_code ec;
    fs::create_directories(cache_dir, ec);
    if (ec) fail(ec.value(), "cannot create the cache directory", cache_dir);
    const fs::path lock_path = cache_dir / ("sha256-" + digest_hex(image_digest) + ".lock");
    io::unique_fd lock(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
    if (!lock) fail(errno, "cannot open the lock file", lock_path);
    // flock would block the executor's thread: poll it, backing off up to 250 ms.
    asio::steady_timer timer(co_await asio::this_coro::executor);
    auto pause = std::chrono::milliseconds(10);
    while (::flock(lock.get(), LOCK_EX | LOCK_NB) != 0) {
        if (errno != EWOULDBLOCK && errno != EINTR) fail(errno, "cannot lock", lock_path);
        timer.expires_after(pause);
        co_await timer.async_wait(asio::use_awaitable);
        pause = std::min(pause * 2, std::chrono::milliseconds(250));
    }
    // Another process may have finished while this one waited.
    if (disk_file_exists(disk)) co_return cached_disk{disk, false};

    const std::string temp_prefix = "." + disk.filename().string() + ".build-";
    remove_stale_builds(cache_dir, temp_prefix);
    static std::atomic<unsigned> counter{0};
    temp_disk temp{cache_dir / (temp_prefix + std::to_string(::getpid()) + "-" + std::to_string(++counter))};
    auto build = make(temp.path);
    co_await std::move(build);

    io::unique_fd built(::open(temp.path.c_str(), O_RDONLY | O_CLOEXEC));
    struct stat st {};
    if (!built || ::fstat(built.get(), &st) != 0 || !S_ISREG(st.st_mode))
        throw vmrt::error(
            errc::internal,
            {.message = "the disk builder made no file at " + temp.path.string(), .field = "make"});
    if (::fsync(built.get()) != 0) fail(errno, "cannot sync", temp.path);
    if (::rename(temp.path.c_str(), disk.c_str()) != 0) fail(errno, "cannot rename the disk to", disk);
    temp.committed = true;
    if (auto sync_ec = io::sync_directory(cache_dir)) fail(sync_ec.value(), "cannot sync", cache_dir);
    co_return cached_disk{disk, true};
}

}  // namespace vmrt::image
