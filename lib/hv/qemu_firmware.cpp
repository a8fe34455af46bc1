#include "hv/qemu_firmware.hpp"

#include <vmrt/error.hpp>

namespace vmrt::hv {
namespace fs = std::filesystem;

std::optional<fs::path> default_ovmf_code() {
    for (const char* candidate :
         {"/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_CODE.fd", "/usr/share/qemu/OVMF.fd"}) {
        std::error_code ec;
        if (fs::is_regular_file(candidate, ec)) return fs::path(candidate);
    }
    return std::nullopt;
}

std::optional<fs::path> ovmf_vars_template(const fs::path& code) {
    std::string name = code.filename().string();
    const auto at = name.find("CODE");
    if (at == std::string::npos) return std::nullopt;
    name.replace(at, 4, "VARS");
    // Secure-boot code images share the plain template (the .ms one would enrol Microsoft's keys).
    for (const char* suffix : {".secboot.fd", ".ms.fd", ".snakeoil.fd"})
        if (name.size() > std::char_traits<char>::length(suffix) &&
            name.compare(name.size() - std::char_traits<char>::length(suffix), std::string::npos, suffix) ==
                0)
            name = name.substr(0, name.size() - std::char_traits<char>::length(suffix)) + ".fd";
    const fs::path vars = code.parent_path() / name;
    std::error_code ec;
    if (fs::is_regular_file(vars, ec)) return vars;
    return std::nullopt;
}

uefi_flash prepare_uefi_flash(const std::optional<fs::path>& firmware,
                              const std::optional<fs::path>& variable_store, const fs::path& run_dir) {
    uefi_flash flash;
    if (firmware) {
        flash.code = *firmware;
    } else if (auto found = default_ovmf_code()) {
        flash.code = *found;
    } else {
        throw error(make_error_code(errc::invalid_spec),
                    {.message = "uefi boot needs a firmware, and none is installed (apt-get install ovmf) "
                                "or named in the spec",
                     .field = "firmware"});
    }
    std::error_code ec;
    if (variable_store && fs::exists(*variable_store, ec)) {
        flash.vars = *variable_store;
        return flash;
    }
    auto tmpl = ovmf_vars_template(flash.code);
    if (!tmpl)
        throw error(make_error_code(errc::invalid_spec),
                    {.message = "no variable-store template next to " + flash.code.string() +
                                " (expected its OVMF_VARS file); name an existing efi_variable_store",
                     .field = "efi_variable_store"});
    flash.vars = variable_store ? *variable_store : run_dir / "efi-vars.fd";
    fs::copy_file(*tmpl, flash.vars, fs::copy_options::overwrite_existing, ec);
    if (!ec) fs::permissions(flash.vars, fs::perms::owner_read | fs::perms::owner_write, ec);
    if (ec)
        throw error(
            make_error_code(errc::invalid_spec),
            {.message = "cannot create the variable store " + flash.vars.string() + ": " + ec.message(),
             .field = "efi_variable_store"});
    flash.vars_created = true;
    return flash;
}

}  // namespace vmrt::hv
