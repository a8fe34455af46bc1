// What shapes a default-guest image (the inputs and their hash, which names the image directory)
// and the manifest.json that records them: written with the image, checked on a cache hit.
#pragma once

#include "image/guest_busybox.hpp"
#include "image/guest_support.hpp"

#include <vmrt/image/guest_image.hpp>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace vmrt::image::guest_build {

struct build_inputs {
    std::string package, kernel_version;
    fs::path deb;
    std::string deb_sha256;
    busybox_info busybox;
    std::vector<std::string> modules;  // wanted names (defaults + extras)
    std::string hash;                  // sha256 of everything above that shapes the image
};

build_inputs collect_inputs(const guest_build_options& options, std::string package, fs::path deb);

/// guest/<kver>-<inputs hash>: the directory of the image built from `in`.
fs::path image_dir(const fs::path& guest_root, const build_inputs& in);

std::string manifest_text(const build_inputs& in, const guest_image& img);

/// The image in `dir` if its manifest matches `in` and both files still have their recorded
/// sha256; nothing otherwise (missing, stale, damaged: the caller rebuilds).
std::optional<guest_image> load_cached(const fs::path& dir, const build_inputs& in);

}  // namespace vmrt::image::guest_build
