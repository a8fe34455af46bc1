// The kernel modules of the default guest: the wanted ones and their dependencies, and the
// initramfs's own lib/modules/<kver> with a modules.dep for just them.
#pragma once

#include "image/guest_inputs.hpp"
#include "image/guest_support.hpp"

#include <filesystem>
#include <string>
#include <vector>

namespace vmrt::image::guest_build {

struct module_set {
    std::vector<std::string> paths;       // relative to lib/modules/<kver>/, load order
    std::vector<std::string> load_order;  // canonical names, same order
};

/// The wanted modules and their dependencies, resolved with depmod on the whole unpacked
/// package (only depmod knows the real symbol dependencies).
module_set resolve_modules(const fs::path& unpacked, const build_inputs& in, const scratch_dir& work);

/// The initramfs's own lib/modules/<kver>: the chosen modules, then depmod run on just them,
/// so that modprobe in the guest finds a modules.dep that describes what is there.
fs::path stage_initramfs_modules(const fs::path& unpacked, const build_inputs& in, const module_set& modules,
                                 const scratch_dir& work);

}  // namespace vmrt::image::guest_build
