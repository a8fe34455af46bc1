#include "image/guest_support.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <fstream>
#include <random>
#include <sstream>
#include <string_view>

namespace vmrt::image::guest_build {
namespace {

error_code last_error() { return {errno, boost::system::system_category()}; }

}  // namespace

[[noreturn]] void fail(error_code ec, std::string message) {
    throw error(ec, {.message = std::move(message)});
}

[[noreturn]] void fail(errc e, std::string message) { fail(make_error_code(e), std::move(message)); }

void say(const guest_build_options& options, std::string line) {
    if (options.progress) options.progress(std::move(line));
}

std::string read_file(const fs::path& file) {
    std::ifstream in(file, std::ios::binary);
    if (!in) fail(last_error(), "cannot read " + file.string());
    std::ostringstream out;
    out << in.rdbuf();
    if (in.bad()) fail(make_error_code(boost::system::errc::io_error), "cannot read " + file.string());
    return std::move(out).str();
}

std::string random_suffix() {
    static thread_local std::mt19937_64 rng{std::random_device{}()};
    return std::to_string(::getpid()) + "-" + std::to_string(rng() & 0xffffff);
}

void remove_stale_scratch(const fs::path& dir, const std::string& prefix) {
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
        const std::string name = entry.path().filename().string();
        if (!name.starts_with(prefix)) continue;
        int pid = 0;
        auto digits = std::string_view(name).substr(prefix.size());
        auto [end, parse_ec] = std::from_chars(digits.data(), digits.data() + digits.size(), pid);
        if (parse_ec != std::errc() || pid <= 0 || end == digits.data() + digits.size() || *end != '-')
            continue;
        if (::kill(pid, 0) != 0 && errno == ESRCH) fs::remove_all(entry.path(), ec);
    }
}

file_lock::file_lock(const fs::path& file) : fd_(::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644)) {
    if (fd_ < 0) fail(last_error(), "cannot open the lock file " + file.string());
    while (::flock(fd_, LOCK_EX) != 0) {
        if (errno == EINTR) continue;
        auto ec = last_error();
        ::close(fd_);
        fail(ec, "cannot lock " + file.string());
    }
}

file_lock::~file_lock() { ::close(fd_); }

std::string read_optional(const fs::path& file) {
    std::error_code ec;
    return fs::exists(file, ec) ? read_file(file) : std::string();
}

}  // namespace vmrt::image::guest_build
