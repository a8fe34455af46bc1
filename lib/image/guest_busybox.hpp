// The busybox of the default guest: checked to be a static x86-64 executable, and asked where its
// applet links go.
#pragma once

#include "image/guest_support.hpp"

#include <filesystem>
#include <string>
#include <vector>

namespace vmrt::image::guest_build {

struct busybox_info {
    std::string binary;
    std::string sha256;
};

/// `path`'s contents and sha256; unsupported unless it is a static x86-64 executable.
busybox_info load_busybox(const fs::path& path);

/// Where busybox wants its applet links ("bin/sh", "sbin/modprobe", ...), from --list-full.
std::vector<std::string> busybox_applet_paths(const fs::path& busybox, const scratch_dir& work);

}  // namespace vmrt::image::guest_build
