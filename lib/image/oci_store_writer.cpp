// Writing blobs: the lock wait, the resumable partial file, commit.
#include "image/oci_store_detail.hpp"

#include <vmrt/image/oci_store.hpp>
#include <vmrt/io/atomic_file.hpp>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>

namespace vmrt::image {
namespace fs = std::filesystem;
using namespace store_detail;

namespace {

void write_all(int fd, const char* p, std::size_t size, const fs::path& file) {
    while (size > 0) {
        ssize_t n = ::write(fd, p, size);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) fail_errno(errno, "write to " + file.string());
        p += n;
        size -= static_cast<std::size_t>(n);
    }
}

// Re-hashes the first `size` bytes of the partial file left by an earlier attempt: OpenSSL's
// hash state cannot be saved with the file, so resuming costs one read of the prefix.
void hash_prefix(int fd, std::uint64_t size, io::sha256& hash, const fs::path& file) {
    std::vector<char> buf(1 << 20);
    std::uint64_t done = 0;
    while (done < size) {
        auto want = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), size - done));
        ssize_t n = ::pread(fd, buf.data(), want, static_cast<off_t>(done));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) fail_errno(errno, "read " + file.string());
        if (n == 0) break;
        hash.update(buf.data(), static_cast<std::size_t>(n));
        done += static_cast<std::uint64_t>(n);
    }
}

}  // namespace

blob_writer::blob_writer(blob_writer&& o) noexcept { *this = std::move(o); }

blob_writer& blob_writer::operator=(blob_writer&& o) noexcept {
    if (this == &o) return *this;
    release();
    digest_ = std::move(o.digest_);
    expected_size_ = o.expected_size_;
    offset_ = o.offset_;
    present_ = o.present_;
    resumed_ = o.resumed_;
    broken_ = o.broken_;
    partial_ = std::move(o.partial_);
    final_ = std::move(o.final_);
    file_ = std::move(o.file_);
    lock_ = std::move(o.lock_);
    lock_path_ = std::move(o.lock_path_);
    hash_ = std::move(o.hash_);
    o.partial_.clear();
    o.lock_path_.clear();
    return *this;
}

blob_writer::~blob_writer() { release(); }

void blob_writer::release() noexcept {
    if (file_) {
        file_.reset();
        // Keep a partial worth resuming; an empty one or one whose content is known bad is noise.
        if (broken_ || offset_ == 0) ::unlink(partial_.c_str());
    }
    unlock_blob(lock_, lock_path_);
}

void blob_writer::discard() noexcept {
    if (file_) {
        file_.reset();
        ::unlink(partial_.c_str());
    }
    unlock_blob(lock_, lock_path_);
}

void blob_writer::write(const void* data, std::size_t size) {
    if (present_) return;
    if (!file_) fail(errc::invalid_state, "blob writer for " + digest_ + " is no longer active");
    if (size > expected_size_ - offset_) {
        broken_ = true;
        auto got = offset_ + size;
        discard();
        fail(errc::protocol_error, "blob " + digest_ +
                                       " is longer than its descriptor says: " + std::to_string(got) +
                                       " bytes or more, expected " + std::to_string(expected_size_));
    }
    try {
        write_all(file_.get(), static_cast<const char*>(data), size, partial_);
    } catch (...) {
        broken_ = true;  // what reached the file is unknown: not resumable
        throw;
    }
    // Start writing these bytes to the disk now (no wait), so that commit()'s fsync finds little
    // left to do instead of a whole layer: the writeback overlaps the rest of the download. Best
    // effort: fsync at commit is what makes the blob durable.
    (void)::sync_file_range(file_.get(), static_cast<off_t>(offset_), static_cast<off_t>(size),
                            SYNC_FILE_RANGE_WRITE);
    hash_.update(data, size);
    offset_ += size;
}

void blob_writer::restart() {
    if (present_) return;
    if (!file_) fail(errc::invalid_state, "blob writer for " + digest_ + " is no longer active");
    if (::ftruncate(file_.get(), 0) != 0 || ::lseek(file_.get(), 0, SEEK_SET) != 0) {
        broken_ = true;
        fail_errno(errno, "truncate " + partial_.string());
    }
    hash_.reset();
    offset_ = 0;
}

fs::path blob_writer::commit() {
    if (present_) return final_;
    if (!file_) fail(errc::invalid_state, "blob writer for " + digest_ + " is no longer active");
    if (offset_ != expected_size_) {
        auto got = offset_;
        discard();
        fail(errc::incomplete_body, "blob " + digest_ +
                                        " is shorter than its descriptor says: " + std::to_string(got) +
                                        " bytes, expected " + std::to_string(expected_size_));
    }
    auto actual = "sha256:" + hash_.hex_digest();
    if (actual != digest_) {
        discard();
        fail(errc::digest_mismatch,
             "blob does not match its digest: expected " + digest_ + ", got " + actual);
    }
    try {
        // Read-only: blobs are immutable, a stray writer must not be able to change one in place.
        if (::fchmod(file_.get(), 0444) != 0) fail_errno(errno, "chmod " + partial_.string());
        if (::fsync(file_.get()) != 0) fail_errno(errno, "fsync " + partial_.string());
        if (auto ec = file_.close()) fail_errno(ec.value(), "close " + partial_.string());
        if (::rename(partial_.c_str(), final_.c_str()) != 0)
            fail_errno(errno, "rename " + partial_.string() + " to " + final_.string());
    } catch (...) {
        broken_ = true;
        discard();
        throw;
    }
    auto blobs_ec = io::sync_directory(final_.parent_path());
    io::sync_directory(partial_.parent_path());  // the partial's disappearance: best effort
    unlock_blob(lock_, lock_path_);
    present_ = true;
    if (blobs_ec) fail_errno(blobs_ec.value(), "fsync " + final_.parent_path().string());
    return final_;
}

std::optional<blob_writer> oci_store::try_begin_blob(std::string_view digest,
                                                     std::uint64_t expected_size) const {
    const auto hex = hex_of(digest);
    blob_writer w;
    w.digest_ = std::string(digest);
    w.expected_size_ = expected_size;
    w.final_ = blobs_dir(root_) / hex;
    auto present = [&] {
        if (::access(w.final_.c_str(), F_OK) != 0) return false;
        // Restart gc's grace period: the caller is about to reference this blob from a new tag.
        ::utimensat(AT_FDCWD, w.final_.c_str(), nullptr, 0);
        w.present_ = true;
        w.offset_ = expected_size;
        return true;
    };
    if (present()) return w;
    w.lock_path_ = locks_dir(root_) / (hex + ".lock");
    w.lock_ = try_lock_blob(w.lock_path_);
    if (!w.lock_) return std::nullopt;
    if (present()) {  // the previous holder committed it
        unlock_blob(w.lock_, w.lock_path_);
        return w;
    }
    w.partial_ = tmp_dir(root_) / (hex + ".partial");
    w.file_ = io::unique_fd(::open(w.partial_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    if (!w.file_) fail_errno(errno, "cannot open " + w.partial_.string());
    struct stat st {};
    if (::fstat(w.file_.get(), &st) != 0) fail_errno(errno, "fstat " + w.partial_.string());
    auto size = static_cast<std::uint64_t>(st.st_size);
    if (size > expected_size) {
        // Not a prefix of this blob (a descriptor with another size, or garbage): start over.
        if (::ftruncate(w.file_.get(), 0) != 0) fail_errno(errno, "truncate " + w.partial_.string());
        size = 0;
    }
    if (size > 0) {
        hash_prefix(w.file_.get(), size, w.hash_, w.partial_);
        w.resumed_ = true;
    }
    if (::lseek(w.file_.get(), static_cast<off_t>(size), SEEK_SET) < 0)
        fail_errno(errno, "seek " + w.partial_.string());
    w.offset_ = size;
    return w;
}

boost::asio::awaitable<blob_writer> oci_store::begin_blob(std::string digest,
                                                          std::uint64_t expected_size) const {
    hex_of(digest);
    boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor);
    auto delay = std::chrono::milliseconds(5);
    for (;;) {
        auto w = try_begin_blob(digest, expected_size);
        if (w) co_return std::move(*w);
        timer.expires_after(delay);
        co_await timer.async_wait(boost::asio::use_awaitable);
        delay = std::min<std::chrono::milliseconds>(delay * 2, std::chrono::milliseconds(100));
    }
}

}  // namespace vmrt::image
