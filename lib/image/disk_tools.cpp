// The disks that need a tool: ext4 data disks (mkfs.ext4) and qcow2 overlays (qemu-img). Each
// tool writes into a pending_file beside the target, which is renamed into place only once the
// tool has succeeded; a failed, timed-out or cancelled tool leaves nothing behind.
#include "image/disk_files.hpp"
#include "image/disk_tool.hpp"
#include "image/qemu_img_info.hpp"

#include <vmrt/image/disk.hpp>

#include <sys/stat.h>
#include <unistd.h>

namespace vmrt::image {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using detail::fail_at;
using detail::last_error;

namespace {

// The argument lists are built outside the coroutines: GCC 12 rejects braced lists of string
// literals inside coroutine bodies.

std::vector<std::string> mkfs_ext4_args(const ext4_disk_options& options, const fs::path& file) {
    std::vector<std::string> args{"-F", "-q"};  // -F: it is a file, not a block device
    if (!options.label.empty()) args.insert(args.end(), {"-L", options.label});
    if (options.inode_count) args.insert(args.end(), {"-N", std::to_string(*options.inode_count)});
    if (!options.populate_from.empty()) args.insert(args.end(), {"-d", options.populate_from.string()});
    args.push_back(file.string());
    return args;
}

std::vector<std::string> info_args(const fs::path& path, const std::string& format) {
    std::vector<std::string> args{"info", "-U", "--output=json"};
    if (!format.empty()) args.insert(args.end(), {"-f", format});
    args.push_back(path.string());
    return args;
}

std::vector<std::string> overlay_args(const fs::path& base, const std::string& base_format,
                                      const fs::path& file, std::optional<std::uint64_t> size) {
    std::vector<std::string> args{"create",    "-q", "-f",          "qcow2",      "-F",
                                  base_format, "-b", base.string(), file.string()};
    if (size) args.push_back(std::to_string(*size));
    return args;
}

}  // namespace

asio::awaitable<void> create_ext4_disk(ext4_disk_options options) {
    detail::check_disk_size(options.size_bytes, "size_bytes");
    if (options.size_bytes < (1 << 20))
        detail::bad_argument("size_bytes", "an ext4 disk needs at least 1 MiB");
    if (options.label.size() > 16)
        detail::bad_argument("label", "\"" + options.label + "\" is longer than 16 bytes");
    if (!options.populate_from.empty()) {
        struct stat st {};
        if (::stat(options.populate_from.c_str(), &st) != 0)
            fail_at(last_error(), "cannot read", options.populate_from, "populate_from");
        if (!S_ISDIR(st.st_mode))
            detail::bad_argument("populate_from", options.populate_from.string() + " is not a directory");
    }
    detail::check_target(options.path, options.overwrite, "path");

    detail::pending_file disk(options.path, "ext4", "path");
    if (::ftruncate(disk.fd(), static_cast<off_t>(options.size_bytes)) != 0)
        fail_at(last_error(), "cannot size", disk.path(), "path");
    disk.close();

    auto args = mkfs_ext4_args(options, disk.path());
    // The awaitable is made in its own statement: GCC 12 mishandles temporaries (here the
    // strings) that live across the suspension of a co_await expression.
    auto mkfs = detail::run_tool("mkfs.ext4", "e2fsprogs", std::move(args), options.timeout);
    const auto run = co_await std::move(mkfs);
    detail::require_success(run, "making an ext4 file system in " + options.path.string());
    disk.commit(0644, options.overwrite);
}

asio::awaitable<disk_info> query_disk_info(fs::path path, std::string format,
                                           std::chrono::steady_clock::duration timeout) {
    if (path.empty()) detail::bad_argument("path", "empty path");
    // qemu-img would report a missing file too, but less clearly.
    if (::access(path.c_str(), R_OK) != 0) fail_at(last_error(), "cannot read", path, "path");
    auto args = info_args(path, format);
    auto info = detail::run_tool("qemu-img", "qemu-utils", std::move(args), timeout);
    const auto run = co_await std::move(info);
    detail::require_success(run, "qemu-img info " + path.string());
    co_return detail::parse_qemu_img_info(run.output);
}

asio::awaitable<disk_info> create_qcow2_overlay(qcow2_overlay_options options) {
    if (options.base.empty()) detail::bad_argument("base", "empty path");
    if (options.size_bytes) detail::check_disk_size(*options.size_bytes, "size_bytes");
    std::error_code fs_ec;
    // Absolute: qemu-img resolves a relative backing path against the overlay's directory, and
    // the overlay is written under a temporary name first.
    const fs::path base = fs::canonical(options.base, fs_ec);
    if (fs_ec)
        fail_at(error_code(fs_ec.value(), boost::system::system_category()), "cannot find", options.base,
                "base");
    detail::check_target(options.overlay, options.overwrite, "overlay");

    std::string base_format = options.base_format;
    if (base_format.empty() || options.size_bytes) {
        auto probe = query_disk_info(base, base_format, options.timeout);
        const disk_info base_info = co_await std::move(probe);
        base_format = base_info.format;
        // qemu-img accepts a smaller overlay, which silently cuts off the end of the base.
        if (options.size_bytes && *options.size_bytes < base_info.virtual_size)
            detail::bad_argument("size_bytes", std::to_string(*options.size_bytes) +
                                                   " is smaller than the base (" +
                                                   std::to_string(base_info.virtual_size) + " bytes)");
    }

    detail::pending_file overlay(options.overlay, "qcow2", "overlay");
    overlay.close();
    auto args = overlay_args(base, base_format, overlay.path(), options.size_bytes);
    auto create = detail::run_tool("qemu-img", "qemu-utils", std::move(args), options.timeout);
    const auto run = co_await std::move(create);
    detail::require_success(run, "creating the qcow2 overlay " + options.overlay.string() + " on " +
                                     base.string());
    overlay.commit(0644, options.overwrite);
    auto info = query_disk_info(options.overlay, "qcow2", options.timeout);
    co_return co_await std::move(info);
}

}  // namespace vmrt::image
