#include "image/disk_files.hpp"

#include <vmrt/io/atomic_file.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <random>

namespace vmrt::image::detail {

namespace fs = std::filesystem;

error_code last_error() noexcept { return {errno, boost::system::system_category()}; }

void fail_at(error_code ec, const std::string& what, const fs::path& path, const std::string& field) {
    // system_error::what() appends ": <reason>" itself.
    throw error(ec, {.message = what + " " + path.string(), .field = field});
}

void bad_argument(const std::string& field, const std::string& message) {
    throw error(make_error_code(boost::system::errc::invalid_argument),
                {.message = field + ": " + message, .field = field});
}

void check_disk_size(std::uint64_t size_bytes, const std::string& field) {
    if (size_bytes == 0 || size_bytes % 512 != 0)
        bad_argument(field, std::to_string(size_bytes) + " is not a positive multiple of 512 bytes");
    if (size_bytes > static_cast<std::uint64_t>(INT64_MAX))
        bad_argument(field, std::to_string(size_bytes) + " is too large for a file");
}

void check_target(const fs::path& target, bool overwrite, const std::string& field) {
    if (target.empty()) bad_argument(field, "empty path");
    struct stat st {};
    if (::lstat(target.c_str(), &st) == 0) {
        if (!overwrite)
            fail_at(make_error_code(boost::system::errc::file_exists), "refusing to replace", target, field);
        if (S_ISDIR(st.st_mode))
            fail_at(make_error_code(boost::system::errc::is_a_directory), "cannot replace", target, field);
    } else if (errno != ENOENT) {
        fail_at(last_error(), "cannot inspect", target, field);
    }
}

namespace {

fs::path directory_of(const fs::path& target) {
    return target.has_parent_path() ? target.parent_path() : fs::path(".");
}

std::string temp_name(const fs::path& target, const std::string& purpose) {
    static thread_local std::mt19937_64 rng{std::random_device{}()};
    return "." + target.filename().string() + "." + purpose + "-" + std::to_string(::getpid()) + "-" +
           std::to_string(rng() & 0xffffff);
}

}  // namespace

pending_file::pending_file(const fs::path& target, const std::string& purpose, const std::string& field)
    : target_(target), field_(field) {
    const fs::path dir = directory_of(target);
    for (int attempt = 0; attempt < 16 && !fd_; ++attempt) {
        temp_ = dir / temp_name(target, purpose);
        fd_.reset(::open(temp_.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
        if (!fd_ && errno != EEXIST) break;
    }
    if (!fd_) fail_at(last_error(), "cannot create a file in", dir, field);
}

pending_file::~pending_file() {
    fd_.reset();
    if (!committed_) ::unlink(temp_.c_str());
}

void pending_file::close() {
    if (auto ec = fd_.close()) fail_at(ec, "cannot write", temp_, field_);
}

void pending_file::commit(mode_t mode, bool overwrite) {
    if (!fd_) {
        // A tool wrote the file by name: reopen it to flush what it wrote.
        fd_.reset(::open(temp_.c_str(), O_RDONLY | O_CLOEXEC));
        if (!fd_) fail_at(last_error(), "cannot reopen", temp_, field_);
    }
    if (::fchmod(fd_.get(), mode) != 0) fail_at(last_error(), "cannot chmod", temp_, field_);
    if (::fsync(fd_.get()) != 0) fail_at(last_error(), "cannot write", temp_, field_);
    if (auto ec = fd_.close()) fail_at(ec, "cannot write", temp_, field_);

    if (overwrite) {
        if (::rename(temp_.c_str(), target_.c_str()) != 0)
            fail_at(last_error(), "cannot create", target_, field_);
    } else if (::renameat2(AT_FDCWD, temp_.c_str(), AT_FDCWD, target_.c_str(), RENAME_NOREPLACE) != 0) {
        if (errno != EINVAL) fail_at(last_error(), "cannot create", target_, field_);
        // A file system without RENAME_NOREPLACE: link(2) refuses an existing target just as well.
        if (::link(temp_.c_str(), target_.c_str()) != 0)
            fail_at(last_error(), "cannot create", target_, field_);
        ::unlink(temp_.c_str());
    }
    committed_ = true;
    if (auto ec = io::sync_directory(directory_of(target_)))
        fail_at(ec, "cannot sync", directory_of(target_), field_);
}

}  // namespace vmrt::image::detail
