// build_default_guest(): kernel package -> unpacked kernel and modules -> initramfs -> cache.
//
// Layout of the data dir:
//   guest/<kver>-<inputs hash>/{vmlinuz, initramfs.cpio.gz, manifest.json}   one dir per image
//   guest/.lock                                                              serialises builds
//   guest/.work-*/                                 scratch of one call (logs, unpacked package)
//   cache/packages/linux-image-*.deb               downloaded packages (package_cache)
// An image directory is assembled in the scratch dir and renamed into place in one step, so it
// is either complete or absent; manifest.json records the inputs and the sha256 of both files,
// which a cache hit re-checks.
//
// The steps live beside this file: guest_packages.cpp (the kernel package), guest_busybox.cpp,
// guest_inputs.cpp (inputs, cache key, manifest), guest_modules.cpp, guest_assemble.cpp (the
// initramfs and the image directory); guest_support.cpp and guest_tools.cpp serve them all.
#include "image/guest_assemble.hpp"
#include "image/guest_inputs.hpp"
#include "image/guest_packages.hpp"
#include "image/guest_support.hpp"

#include <vmrt/image/guest_image.hpp>

#include <unistd.h>

#include <cstdlib>

namespace vmrt::image {
namespace {

namespace fs = std::filesystem;
using namespace guest_build;

}  // namespace

// ---- public API --------------------------------------------------------------------------------

fs::path default_data_dir() {
    if (const char* dir = std::getenv("VMRT_DATA_DIR"); dir && *dir) return dir;
    if (::geteuid() == 0 || ::access("/var/lib/vmrt", W_OK) == 0) return "/var/lib/vmrt";
    if (const char* xdg = std::getenv("XDG_DATA_HOME"); xdg && *xdg == '/') return fs::path(xdg) / "vmrt";
    if (const char* home = std::getenv("HOME"); home && *home) return fs::path(home) / ".local/share/vmrt";
    return fs::temp_directory_path() / ("vmrt-" + std::to_string(::geteuid()));
}

const std::vector<std::string>& default_guest_modules() {
    static const std::vector<std::string> modules = [] {
        std::vector<std::string> m;
        for (const char* name : {"virtio",
                                 "virtio_ring",
                                 "virtio_pci",
                                 "virtio_pci_legacy_dev",
                                 "virtio_pci_modern_dev",
                                 "virtio_mmio",
                                 "virtio_net",
                                 "net_failover",
                                 "failover",
                                 "virtio_blk",
                                 "virtio_console",
                                 "virtio-rng",
                                 "virtio_balloon",
                                 "fuse",
                                 "virtiofs",
                                 "vsock",
                                 "vmw_vsock_virtio_transport_common",
                                 "vmw_vsock_virtio_transport",
                                 "button",
                                 "evdev",
                                 "cdrom",
                                 "isofs"})
            m.emplace_back(name);
        return m;
    }();
    return modules;
}

namespace {

guest_image build_or_reuse(const guest_build_options& options) {
    const fs::path data_dir = options.data_dir.empty() ? default_data_dir() : options.data_dir;
    const fs::path guest_root = data_dir / "guest";
    const fs::path cache =
        options.package_cache.empty() ? data_dir / "cache/packages" : options.package_cache;
    fs::create_directories(guest_root);
    fs::create_directories(cache);
    scratch_dir work(guest_root);

    std::string package = choose_kernel_package(options, cache, work);
    fs::path deb;
    try {
        deb = ensure_package(options, package, cache, work);
    } catch (const error& e) {
        // Offline with a newer kernel in apt's index: an older cached kernel still makes a guest.
        auto cached = options.kernel_package.empty() ? newest_cached_kernel(cache) : std::nullopt;
        if (!cached) throw;
        say(options, std::string("download failed (") + e.what() + "); using the cached " + *cached);
        package = *cached;
        deb = ensure_package(options, package, cache, work);
    }
    const build_inputs in = collect_inputs(options, package, std::move(deb));
    const fs::path target = image_dir(guest_root, in);

    if (!options.force) {
        if (auto img = load_cached(target, in)) {
            say(options, "cached: " + target.string());
            return *img;
        }
    }
    file_lock lock(guest_root / ".lock");
    // Another process may have finished the same image while we waited for the lock.
    if (!options.force) {
        if (auto img = load_cached(target, in)) {
            say(options, "cached: " + target.string());
            return *img;
        }
    }
    remove_stale_scratch(guest_root, ".work-");
    say(options, "building the default guest in " + target.string());
    auto img = build(options, in, target, work);
    say(options, "done: " + target.string());
    return img;
}

}  // namespace

guest_image build_default_guest(const guest_build_options& options) {
    // One error type at the API edge: file system and internal failures become vmrt::error too.
    try {
        return build_or_reuse(options);
    } catch (const error&) {
        throw;
    } catch (const fs::filesystem_error& e) {
        const auto& cat = e.code().category();
        error_code ec = (cat == std::system_category() || cat == std::generic_category())
                            ? error_code(e.code().value(), boost::system::system_category())
                            : make_error_code(boost::system::errc::io_error);
        fail(ec, e.what());
    } catch (const std::exception& e) {
        fail(errc::internal, std::string("building the default guest: ") + e.what());
    }
}

}  // namespace vmrt::image
