// The QEMU/KVM backend (Linux): QEMU as the VMM, QMP over an inherited socketpair as its control
// channel, virtiofsd sidecars for shared directories. It is also how vmrt boots real guests on
// machines without hardware virtualisation (TCG).
#pragma once

#include <vmrt/driver.hpp>

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

namespace vmrt::hv {

struct qemu_options {
    std::filesystem::path qemu_binary;  ///< empty: qemu-system-x86_64 from PATH
    std::filesystem::path virtiofsd_binary = "/usr/lib/qemu/virtiofsd";
    std::string accelerator;  ///< empty: choose_accelerator()
    std::chrono::steady_clock::duration startup_timeout = std::chrono::seconds(20);  ///< spawn → QMP ready
};

/// qemu-system-x86_64 in PATH, if any.
std::optional<std::filesystem::path> find_qemu();

std::shared_ptr<driver> make_qemu_driver(qemu_options opts = {});

}  // namespace vmrt::hv
