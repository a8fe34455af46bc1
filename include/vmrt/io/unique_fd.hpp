// An owned file descriptor, closed when its owner goes away: the child's ends of socketpairs,
// pidfds, inotify instances, files being written. One type for the whole library.
#pragma once

#include <unistd.h>

#include <cerrno>
#include <system_error>
#include <utility>

namespace vmrt::io {

class unique_fd {
public:
    unique_fd() = default;
    explicit unique_fd(int fd) noexcept : fd_(fd) {}
    unique_fd(unique_fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    unique_fd& operator=(unique_fd&& o) noexcept {
        if (this != &o) reset(std::exchange(o.fd_, -1));
        return *this;
    }
    unique_fd(const unique_fd&) = delete;
    unique_fd& operator=(const unique_fd&) = delete;
    ~unique_fd() { reset(); }

    int get() const noexcept { return fd_; }
    /// Gives up ownership (the caller closes it, or hands it on).
    int release() noexcept { return std::exchange(fd_, -1); }
    explicit operator bool() const noexcept { return fd_ >= 0; }
    void reset(int fd = -1) noexcept {
        if (fd_ >= 0) ::close(fd_);
        fd_ = fd;
    }
    /// Closes now and reports close(2)'s error (a write-back error can surface here). The
    /// descriptor is released even then: close is never retried.
    std::error_code close() noexcept {
        if (fd_ < 0) return {};
        if (::close(std::exchange(fd_, -1)) != 0 && errno != EINTR) return {errno, std::generic_category()};
        return {};
    }

private:
    int fd_ = -1;
};

}  // namespace vmrt::io
