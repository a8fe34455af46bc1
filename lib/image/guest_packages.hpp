// The kernel package of the default guest: which one (apt-cache search, else the newest cached)
// and its .deb in the package cache (apt-get download).
#pragma once

#include "image/guest_support.hpp"

#include <vmrt/image/guest_image.hpp>

#include <filesystem>
#include <optional>
#include <string>

namespace vmrt::image::guest_build {

/// The newest kernel package already in the cache, for hosts where apt cannot answer.
std::optional<std::string> newest_cached_kernel(const fs::path& cache);

/// options.kernel_package, or the newest linux-image-6.1.0-*-cloud-amd64 that apt knows (after an
/// apt-get update if need be), or the newest cached one.
std::string choose_kernel_package(const guest_build_options& options, const fs::path& cache,
                                  const scratch_dir& work);

/// The package's .deb in the cache, downloaded first if missing. The download goes to a
/// private directory and is renamed into the cache, so the cache never holds a partial file.
fs::path ensure_package(const guest_build_options& options, const std::string& package, const fs::path& cache,
                        const scratch_dir& work);

}  // namespace vmrt::image::guest_build
