#include "image/guest_modules.hpp"

#include "image/guest_tools.hpp"
#include "image/kernel_modules.hpp"

#include <vmrt/io/atomic_file.hpp>

#include <chrono>

namespace vmrt::image::guest_build {
namespace {

using namespace std::chrono_literals;

void run_depmod(const fs::path& root, const std::string& kver, const scratch_dir& work,
                const std::string& step) {
    const fs::path depmod = require_program("depmod", "kmod");
    auto r = run_tool(depmod, {"-b", root.string(), kver}, work.log(step), 300s);
    if (!r.status.success()) tool_failed("depmod -b " + root.string() + " " + kver, r);
}

}  // namespace

module_set resolve_modules(const fs::path& unpacked, const build_inputs& in, const scratch_dir& work) {
    const fs::path moddir = unpacked / "lib/modules" / in.kernel_version;
    run_depmod(unpacked, in.kernel_version, work, "depmod-package");
    auto closure = resolve_module_closure(read_file(moddir / "modules.dep"), in.modules);
    auto builtin = builtin_module_names(read_optional(moddir / "modules.builtin"));
    for (const auto& name : closure.missing)
        if (!builtin.contains(module_name(name)))
            fail(errc::unsupported, "module " + name + " is not in " + in.package);
    module_set set;
    set.paths = std::move(closure.paths);
    for (const auto& p : set.paths) set.load_order.push_back(module_name(p));
    return set;
}

fs::path stage_initramfs_modules(const fs::path& unpacked, const build_inputs& in, const module_set& modules,
                                 const scratch_dir& work) {
    const fs::path root = work.path() / "initramfs";
    const fs::path from = unpacked / "lib/modules" / in.kernel_version;
    const fs::path to = root / "lib/modules" / in.kernel_version;
    std::string order;
    for (const auto& p : modules.paths) {
        fs::create_directories((to / p).parent_path());
        fs::copy_file(from / p, to / p);
        order += p + "\n";
    }
    io::write_file_atomically(to / "modules.order", order);
    if (fs::exists(from / "modules.builtin")) fs::copy_file(from / "modules.builtin", to / "modules.builtin");
    run_depmod(root, in.kernel_version, work, "depmod-initramfs");
    return root;
}

}  // namespace vmrt::image::guest_build
