// Building one default-guest image from its inputs: the kernel and modules unpacked from the
// package, the initramfs assembled, and the finished image directory swapped in at `target`.
#pragma once

#include "image/guest_inputs.hpp"
#include "image/guest_support.hpp"

#include <vmrt/image/guest_image.hpp>

#include <filesystem>

namespace vmrt::image::guest_build {

guest_image build(const guest_build_options& options, const build_inputs& in, const fs::path& target,
                  const scratch_dir& work);

}  // namespace vmrt::image::guest_build
