// `vmrt guest build`: builds (or finds in the cache) the default guest image and prints where it is.
#include "cli.hpp"

#include <vmrt/image/guest_image.hpp>

#include <iostream>

namespace vmrt::cli {
namespace {

int guest_build(const std::vector<std::string>& args) {
    image::guest_build_options options;
    for (std::size_t i = 0; i < args.size(); ++i) {
        if (args[i] == "--force") {
            options.force = true;
        } else if (args[i] == "--data-dir" && i + 1 < args.size()) {
            options.data_dir = args[++i];
        } else {
            std::cerr << "vmrt guest build: unexpected argument " << args[i] << "\n";
            return exit_usage;
        }
    }
    options.progress = [](const std::string& line) {
        std::cerr << "vmrt: " << line << "\n";
    };
    try {
        auto img = image::build_default_guest(options);
        std::cout << "kernel: " << img.kernel.string() << "\n"
                  << "initramfs: " << img.initramfs.string() << "\n"
                  << "kernel version: " << img.kernel_version << " (" << img.kernel_package << ")\n"
                  << "kernel sha256: " << img.kernel_sha256 << "\n"
                  << "initramfs sha256: " << img.initramfs_sha256 << "\n"
                  << "cmdline: " << image::default_guest_cmdline << "\n";
        return exit_ok;
    } catch (const error& e) {
        std::cerr << "vmrt guest build: " << e.what() << "\n";
        return exit_vm_failed;
    }
}

}  // namespace

int guest_command(const std::vector<std::string>& args) {
    if (!args.empty() && args.front() == "build") return guest_build({args.begin() + 1, args.end()});
    std::cerr << "vmrt guest: expected \"build\"\n";
    return exit_usage;
}

}  // namespace vmrt::cli
