// UEFI firmware for QEMU: which OVMF build to use and where its variable store comes from.
//
// OVMF comes as two flash images: the code (read-only, shared by every VM) and a variable store
// (writable, one per VM) that starts as a copy of the template shipped next to the code. A spec
// that names a store keeps it across boots; without one, each boot gets a fresh copy in the VM's
// run directory, as a machine with a freshly flashed NVRAM would.
#pragma once

#include <filesystem>
#include <optional>

namespace vmrt::hv {

/// The firmware QEMU uses when a uefi spec names none: Debian's OVMF (package `ovmf`), the 4 MiB
/// build first. Nothing when none is installed.
std::optional<std::filesystem::path> default_ovmf_code();

/// The variable-store template that belongs to an OVMF code image: OVMF_CODE_4M.fd ->
/// OVMF_VARS_4M.fd in the same directory (secure-boot builds: OVMF_CODE_4M.secboot.fd ->
/// OVMF_VARS_4M.fd). Nothing when there is no such file.
std::optional<std::filesystem::path> ovmf_vars_template(const std::filesystem::path& code);

struct uefi_flash {
    std::filesystem::path code;
    std::filesystem::path vars;
    bool vars_created = false;  ///< the store was copied from the template for this boot
};

/// Resolves the firmware and makes sure a variable store exists: the spec's store if it exists,
/// else a copy of the template at the spec's path (kept) or in `run_dir` (fresh per boot).
/// Throws vmrt::error(errc::invalid_spec) naming "firmware" or "efi_variable_store" when one
/// cannot be found or created.
uefi_flash prepare_uefi_flash(const std::optional<std::filesystem::path>& firmware,
                              const std::optional<std::filesystem::path>& variable_store,
                              const std::filesystem::path& run_dir);

}  // namespace vmrt::hv
