// Parser for `qemu-img info --output=json` (sans-I/O, unit-tested on its own).
#pragma once

#include <vmrt/image/disk.hpp>

#include <string_view>

namespace vmrt::image::detail {

/// The image described by qemu-img's JSON. Text before the JSON object (warnings on stderr, which
/// share the log) and after it is ignored. Throws vmrt::error(errc::protocol_error) naming the
/// problem if there is no well-formed object or a required member ("format", "virtual-size") is
/// missing or of the wrong type.
disk_info parse_qemu_img_info(std::string_view output);

}  // namespace vmrt::image::detail
