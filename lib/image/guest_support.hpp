// Small utilities shared by the default-guest build (lib/image/guest_*.cpp): errors, progress
// lines, whole-file reads, the scratch directory of one call and the lock that serialises builds.
#pragma once

#include <vmrt/error.hpp>
#include <vmrt/image/guest_image.hpp>

#include <filesystem>
#include <string>

namespace vmrt::image::guest_build {

namespace fs = std::filesystem;

[[noreturn]] void fail(error_code ec, std::string message);
[[noreturn]] void fail(errc e, std::string message);

/// Passes a progress line to options.progress, if set.
void say(const guest_build_options& options, std::string line);

std::string read_file(const fs::path& file);
/// read_file(), or nothing if the file does not exist.
std::string read_optional(const fs::path& file);

/// "<pid>-<random>": a name part for scratch files (see remove_stale_scratch).
std::string random_suffix();

// A private scratch directory, removed with everything in it when the call ends.
class scratch_dir {
public:
    explicit scratch_dir(const fs::path& parent) : path_(parent / (".work-" + random_suffix())) {
        fs::create_directories(path_ / "logs");
    }
    scratch_dir(const scratch_dir&) = delete;
    scratch_dir& operator=(const scratch_dir&) = delete;
    ~scratch_dir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    const fs::path& path() const noexcept { return path_; }
    fs::path log(const std::string& step) const { return path_ / "logs" / (step + ".log"); }

private:
    fs::path path_;
};

/// Removes scratch directories ("<prefix><pid>-<n>") left behind by calls that died: their
/// process no longer exists. Directories of live processes are theirs to remove.
void remove_stale_scratch(const fs::path& dir, const std::string& prefix);

// An exclusive flock(2) on a file, held until destruction (or until the process dies).
class file_lock {
public:
    explicit file_lock(const fs::path& file);
    file_lock(const file_lock&) = delete;
    file_lock& operator=(const file_lock&) = delete;
    ~file_lock();

private:
    int fd_;
};

}  // namespace vmrt::image::guest_build
