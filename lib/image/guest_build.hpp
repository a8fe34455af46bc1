// Pieces of build_default_guest() that are worth testing on their own (no I/O).
#pragma once

#include <vmrt/io/sha256.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace vmrt::image {

/// The newest linux-image-6.1.0-N-cloud-amd64 (largest N) named at the start of a line of
/// `apt-cache search` output (or of any list of package names); nothing if none.
std::optional<std::string> pick_newest_kernel_package(std::string_view package_list);

/// "linux-image-6.1.0-56-cloud-amd64[-unsigned]" -> "6.1.0-56-cloud-amd64"; empty if the name
/// is not a linux-image package.
std::string kernel_version_of_package(std::string_view package);

/// True if `binary` is an x86-64 ELF executable without a program interpreter (PT_INTERP), i.e.
/// one that runs in an initramfs that has no dynamic loader and no libc.
bool is_static_x86_64_elf(std::string_view binary);

/// True if `kernel` is an x86 bzImage (boot protocol header "HdrS" at offset 0x202).
bool is_bzimage(std::string_view kernel);

using io::sha256_hex;  ///< lowercase hex SHA-256

}  // namespace vmrt::image
