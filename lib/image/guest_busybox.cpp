#include "image/guest_busybox.hpp"

#include "image/cpio_writer.hpp"
#include "image/guest_build.hpp"
#include "image/guest_init.hpp"
#include "image/guest_tools.hpp"

#include <elf.h>

#include <chrono>
#include <cstring>
#include <set>
#include <sstream>

namespace vmrt::image {
namespace guest_build {

using namespace std::chrono_literals;

busybox_info load_busybox(const fs::path& path) {
    busybox_info info{read_file(path), {}};
    if (!is_static_x86_64_elf(info.binary))
        fail(errc::unsupported, path.string() + " is not a static x86-64 executable; the initramfs has no "
                                                "dynamic loader (install busybox-static)");
    info.sha256 = sha256_hex(info.binary);
    return info;
}

std::vector<std::string> busybox_applet_paths(const fs::path& busybox, const scratch_dir& work) {
    auto r = run_tool(busybox, {"--list-full"}, work.log("busybox-list"), 30s);
    if (!r.status.success()) tool_failed(busybox.string() + " --list-full", r);
    std::vector<std::string> paths;
    std::set<std::string> names;
    std::istringstream lines(r.output);
    for (std::string line; std::getline(lines, line);) {
        auto path = safe_relative_path(line);
        // No top-level links (linuxrc) and no sbin/init: /init is ours, and a busybox init
        // without an inittab in its place would only confuse.
        if (!path || path->find('/') == std::string::npos || *path == "sbin/init" || *path == "bin/busybox")
            continue;
        names.insert(path->substr(path->rfind('/') + 1));
        paths.push_back(*path);
    }
    for (auto applet : guest_required_applets())
        if (!names.contains(std::string(applet)))
            fail(errc::unsupported, busybox.string() + " lacks the applet " + std::string(applet));
    return paths;
}

}  // namespace guest_build

bool is_static_x86_64_elf(std::string_view binary) {
    Elf64_Ehdr header;
    if (binary.size() < sizeof header) return false;
    std::memcpy(&header, binary.data(), sizeof header);
    if (std::memcmp(header.e_ident, ELFMAG, SELFMAG) != 0 || header.e_ident[EI_CLASS] != ELFCLASS64 ||
        header.e_ident[EI_DATA] != ELFDATA2LSB || header.e_machine != EM_X86_64 ||
        (header.e_type != ET_EXEC && header.e_type != ET_DYN) || header.e_phentsize != sizeof(Elf64_Phdr))
        return false;
    for (unsigned i = 0; i < header.e_phnum; ++i) {
        const std::uint64_t offset = header.e_phoff + std::uint64_t{i} * sizeof(Elf64_Phdr);
        if (offset + sizeof(Elf64_Phdr) > binary.size()) return false;
        Elf64_Phdr ph;
        std::memcpy(&ph, binary.data() + offset, sizeof ph);
        if (ph.p_type == PT_INTERP) return false;
    }
    return true;
}

}  // namespace vmrt::image
