#include "image/guest_assemble.hpp"

#include "image/cpio_writer.hpp"
#include "image/deb_unpack.hpp"
#include "image/guest_build.hpp"
#include "image/guest_busybox.hpp"
#include "image/guest_init.hpp"
#include "image/guest_modules.hpp"

#include <vmrt/io/atomic_file.hpp>

namespace vmrt::image {
namespace guest_build {
namespace {

/// Which members of the kernel package to unpack, and where: the kernel as boot/vmlinuz, and
/// the modules with the files depmod reads (modules.order, modules.builtin*) under
/// lib/modules/<kver>/. Newer packages keep modules in usr/lib/modules: both are accepted.
deb_member_map kernel_member_map(const std::string& kver) {
    return [kver](std::string_view member) -> std::optional<std::string> {
        if (member == "boot/vmlinuz-" + kver) return std::string("boot/vmlinuz");
        if (member.starts_with("usr/")) member.remove_prefix(4);
        const std::string dir = "lib/modules/" + kver + "/";
        if (!member.starts_with(dir)) return std::nullopt;
        auto rest = member.substr(dir.size());
        const bool wanted =
            (rest.starts_with("kernel/") &&
             (rest.ends_with(".ko") || rest.ends_with(".ko.xz") || rest.ends_with(".ko.zst"))) ||
            rest == "modules.order" || rest == "modules.builtin" || rest == "modules.builtin.modinfo";
        if (!wanted) return std::nullopt;
        return std::string(member);
    };
}

cpio_archive assemble_initramfs(const build_inputs& in, const std::vector<std::string>& applets,
                                const fs::path& staged, const module_set& modules) {
    cpio_archive cpio;
    for (const char* dir : {"dev", "proc", "sys", "run", "mnt", "etc"}) cpio.add_directory(dir, 0755);
    cpio.add_directory("tmp", 01777);
    cpio.add_directory("root", 0700);
    // The kernel opens /dev/console for PID 1 before /init can mount devtmpfs.
    cpio.add_char_device("dev/console", 5, 1, 0600);

    cpio.add_file("bin/busybox", in.busybox.binary, 0755);
    for (const auto& path : applets) cpio.add_symlink(path, "/bin/busybox");

    cpio.add_file("init", std::string(guest_init_script()), 0755);
    cpio.add_file(guest_powerbutton_path, std::string(guest_powerbutton_script()), 0755);
    std::string load;
    for (const auto& name : modules.load_order) load += name + "\n";
    cpio.add_file(guest_module_list_path, load, 0644);

    const std::string moddir = "lib/modules/" + in.kernel_version;
    cpio.add_directory(moddir, 0755);
    for (const auto& p : modules.paths) cpio.add_file(moddir + "/" + p, read_file(staged / moddir / p), 0644);
    // What busybox modprobe reads (modules.dep, aliases and symbols for names it does not know).
    for (const char* index :
         {"modules.dep", "modules.alias", "modules.symbols", "modules.builtin", "modules.order"}) {
        const fs::path file = staged / moddir / index;
        if (fs::exists(file)) cpio.add_file(moddir + "/" + index, read_file(file), 0644);
    }
    return cpio;
}
}  // namespace

guest_image build(const guest_build_options& options, const build_inputs& in, const fs::path& target,
                  const scratch_dir& work) {
    const fs::path unpacked = work.path() / "package";
    fs::create_directories(unpacked);
    say(options, "unpacking " + in.deb.filename().string());
    unpack_deb(in.deb, unpacked, kernel_member_map(in.kernel_version));
    const std::string kernel = read_optional(unpacked / "boot/vmlinuz");
    if (kernel.empty())
        fail(errc::protocol_error, in.deb.string() + " has no boot/vmlinuz-" + in.kernel_version);
    if (!is_bzimage(kernel))
        fail(errc::protocol_error, "the kernel in " + in.deb.string() + " is not a bzImage");

    say(options, "resolving module dependencies (depmod)");
    const module_set modules = resolve_modules(unpacked, in, work);
    const fs::path staged = stage_initramfs_modules(unpacked, in, modules, work);
    const auto applets = busybox_applet_paths(options.busybox, work);

    say(options, "writing the initramfs");
    const std::string initramfs = assemble_initramfs(in, applets, staged, modules).write(true);

    guest_image img;
    img.kernel_version = in.kernel_version;
    img.kernel_package = in.package;
    img.kernel_sha256 = sha256_hex(kernel);
    img.initramfs_sha256 = sha256_hex(initramfs);
    img.modules = modules.load_order;

    const fs::path out = work.path() / "out";
    fs::create_directories(out);
    io::write_file_atomically(out / "vmlinuz", kernel);
    io::write_file_atomically(out / "initramfs.cpio.gz", initramfs);
    io::write_file_atomically(out / "manifest.json", manifest_text(in, img));

    // Swap the finished directory in: the old one (stale or forced out) leaves with the scratch dir.
    std::error_code ec;
    if (fs::exists(target, ec)) fs::rename(target, work.path() / "replaced");
    fs::rename(out, target);
    io::sync_directory(target.parent_path());

    img.directory = target;
    img.kernel = target / "vmlinuz";
    img.initramfs = target / "initramfs.cpio.gz";
    return img;
}

}  // namespace guest_build

bool is_bzimage(std::string_view kernel) {
    return kernel.size() > 0x206 && kernel.substr(0x202, 4) == "HdrS";
}

}  // namespace vmrt::image
