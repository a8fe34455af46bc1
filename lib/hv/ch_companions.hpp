// What serves a Cloud Hypervisor VM's devices besides CH: a virtiofsd per shared directory and a
// TAP device per NIC. Each is a ch_companion owned by the VM's instance.
#pragma once

#include "hv/ch_instance.hpp"

#include <vmrt/vm_spec.hpp>

#include <boost/asio/any_io_executor.hpp>

#include <filesystem>
#include <functional>
#include <memory>
#include <string>

namespace vmrt::hv {

/// Starts virtiofsd for `dir` on a socket at `socket` (bound before the daemon starts); it is
/// restarted whenever it exits while the VM lives (it serves one connection, and CH reconnects
/// after every guest reboot, §8). Throws errc::vmm_start_failed.
std::unique_ptr<ch_companion> start_virtiofsd(boost::asio::any_io_executor ex, const shared_dir_spec& dir,
                                              const std::filesystem::path& socket,
                                              const std::filesystem::path& binary,
                                              const std::filesystem::path& log_file,
                                              std::function<void(std::string)> note);

/// Opens (creating if needed) the TAP device of a tap NIC in `netns` (nullopt: vmrt's own).
/// `fd` receives the open TAP fd, owned by the returned companion. A TAP vmrt created vanishes
/// when the last fd (ours and CH's) closes; one that existed before is left alone.
std::unique_ptr<ch_companion> open_tap(const nic_spec& nic, const std::optional<std::string>& netns, int& fd);

}  // namespace vmrt::hv
