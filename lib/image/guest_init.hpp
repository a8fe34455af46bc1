// The programs of the default guest's initramfs: /init and the ACPI power-button handler
// (busybox sh scripts), and what they rely on. Their text is part of the image's cache key.
#pragma once

#include <string_view>
#include <vector>

namespace vmrt::image {

/// /init: PID 1 of the default guest (see include/vmrt/image/guest_image.hpp for its contract).
std::string_view guest_init_script();

/// /etc/acpi/PWRF/00000080: run by busybox acpid when the power button is pressed.
std::string_view guest_powerbutton_script();

/// Where the power-button handler lives in the initramfs (busybox acpid -c /etc/acpi runs
/// <confdir>/PWRF/00000080 for the power button's event).
inline constexpr std::string_view guest_powerbutton_path = "etc/acpi/PWRF/00000080";

/// The file /init reads the modules to load from, one name per line, in load order.
inline constexpr std::string_view guest_module_list_path = "etc/vmrs-modules";

/// busybox applets the scripts (and a person on the console) need; the build checks that the
/// busybox binary provides them all.
const std::vector<std::string_view>& guest_required_applets();

}  // namespace vmrt::image
