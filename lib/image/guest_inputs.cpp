#include "image/guest_inputs.hpp"

#include "image/guest_build.hpp"
#include "image/guest_init.hpp"

#include <vmrt/io/sha256.hpp>

#include <boost/json.hpp>

namespace vmrt::image::guest_build {

build_inputs collect_inputs(const guest_build_options& options, std::string package, fs::path deb) {
    build_inputs in;
    in.package = std::move(package);
    in.kernel_version = kernel_version_of_package(in.package);
    if (in.kernel_version.empty()) fail(errc::unsupported, in.package + " is not a linux-image package");
    in.deb = std::move(deb);
    in.deb_sha256 = io::sha256_of_file(in.deb);
    in.busybox = load_busybox(options.busybox);
    in.modules = default_guest_modules();
    in.modules.insert(in.modules.end(), options.extra_modules.begin(), options.extra_modules.end());

    std::string key = "vmrt default guest, format " + std::to_string(guest_image_format_version) + "\n";
    key += "kernel-package " + in.package + "\nkernel-deb-sha256 " + in.deb_sha256 + "\n";
    key += "busybox-sha256 " + in.busybox.sha256 + "\n";
    key += "init-sha256 " + sha256_hex(guest_init_script()) + "\n";
    key += "powerbutton-sha256 " + sha256_hex(guest_powerbutton_script()) + "\nmodules";
    for (const auto& m : in.modules) key += " " + m;
    in.hash = sha256_hex(key + "\n");
    return in;
}

fs::path image_dir(const fs::path& guest_root, const build_inputs& in) {
    return guest_root / (in.kernel_version + "-" + in.hash.substr(0, 16));
}

std::string manifest_text(const build_inputs& in, const guest_image& img) {
    boost::json::array modules;
    for (const auto& m : img.modules) modules.emplace_back(m);
    boost::json::object m{{"format", guest_image_format_version},     {"inputs_hash", in.hash},
                          {"kernel_version", img.kernel_version},     {"kernel_package", in.package},
                          {"kernel_deb", in.deb.filename().string()}, {"kernel_deb_sha256", in.deb_sha256},
                          {"busybox_sha256", in.busybox.sha256},      {"kernel", "vmlinuz"},
                          {"kernel_sha256", img.kernel_sha256},       {"initramfs", "initramfs.cpio.gz"},
                          {"initramfs_sha256", img.initramfs_sha256}, {"modules", std::move(modules)}};
    return boost::json::serialize(m) + "\n";
}

std::optional<guest_image> load_cached(const fs::path& dir, const build_inputs& in) {
    std::error_code ec;
    if (!fs::is_regular_file(dir / "manifest.json", ec)) return std::nullopt;
    try {
        auto value = boost::json::parse(read_file(dir / "manifest.json"));
        const auto& m = value.as_object();
        if (m.at("format").as_int64() != guest_image_format_version ||
            m.at("inputs_hash").as_string() != in.hash)
            return std::nullopt;
        guest_image img;
        img.directory = dir;
        img.kernel = dir / "vmlinuz";
        img.initramfs = dir / "initramfs.cpio.gz";
        img.kernel_version = m.at("kernel_version").as_string().c_str();
        img.kernel_package = in.package;
        img.kernel_sha256 = m.at("kernel_sha256").as_string().c_str();
        img.initramfs_sha256 = m.at("initramfs_sha256").as_string().c_str();
        for (const auto& module : m.at("modules").as_array())
            img.modules.emplace_back(module.as_string().c_str());
        if (io::sha256_of_file(img.kernel) != img.kernel_sha256 ||
            io::sha256_of_file(img.initramfs) != img.initramfs_sha256)
            return std::nullopt;
        img.reused = true;
        return img;
    } catch (const std::exception&) {
        return std::nullopt;  // unreadable or malformed: rebuild
    }
}

}  // namespace vmrt::image::guest_build
