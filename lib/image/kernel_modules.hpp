// Kernel module bookkeeping for the initramfs, sans I/O: names, modules.dep parsing and the
// dependency closure of the modules a guest wants, in an order that loads cleanly.
#pragma once

#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace vmrt::image {

/// The canonical name of a module given as a name or a path: directory and .ko[.xz|.zst|.gz]
/// suffix removed, '-' replaced by '_' (the kernel treats both alike: virtio-rng == virtio_rng).
std::string module_name(std::string_view name_or_path);

struct module_closure {
    /// Paths as written in modules.dep (relative to lib/modules/<kver>/), dependencies before
    /// the modules that need them: loading them in this order never misses a symbol.
    std::vector<std::string> paths;
    /// Wanted names that modules.dep does not know (built into the kernel, or absent).
    std::vector<std::string> missing;
};

/// The wanted modules and everything they depend on, from the text of a modules.dep
/// ("path: dep-path dep-path..."). Deterministic: wanted order, then modules.dep order.
/// Throws vmrt::error(errc::protocol_error) for a malformed line or a dependency cycle.
module_closure resolve_module_closure(std::string_view modules_dep, const std::vector<std::string>& wanted);

/// Names of the modules built into the kernel, from the text of modules.builtin (one path per line).
std::set<std::string> builtin_module_names(std::string_view modules_builtin);

}  // namespace vmrt::image
