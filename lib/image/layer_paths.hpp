// Sans-I/O rules for the names inside an image layer: normalising an entry's path (refusing ".."),
// recognising whiteouts, and sanitising names for error messages.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace vmrt::image::detail {

/// Deepest entry path accepted (components); deeper ones refuse the layer.
inline constexpr std::size_t max_entry_depth = 256;

/// The components of an entry name, as Docker reads them: leading "/" and "./" are stripped,
/// empty and "." components dropped. An empty result is the rootfs itself. Throws
/// vmrt::error(protocol_error) naming the entry for a ".." component, a NUL byte, an empty name
/// or a path deeper than max_entry_depth.
std::vector<std::string> normalize_entry_path(std::string_view raw);

/// The first `count` components joined with "/".
std::string join_path(const std::vector<std::string>& parts, std::size_t count);
inline std::string join_path(const std::vector<std::string>& parts) { return join_path(parts, parts.size()); }

enum class whiteout_kind {
    none,    ///< an ordinary name
    remove,  ///< ".wh.<name>": <name> is deleted from lower layers
    opaque,  ///< ".wh..wh..opq": the directory's lower contents are deleted
    meta,    ///< ".wh..wh.<other>": aufs bookkeeping (".wh..wh.plnk", ...), ignored like Docker does
};

/// Classifies a last path component.
whiteout_kind classify_whiteout(std::string_view name) noexcept;

/// The name a ".wh.<name>" whiteout removes. Throws protocol_error (naming `raw_entry`) if it is
/// empty, "." or "..".
std::string whiteout_target(std::string_view name, std::string_view raw_entry);

/// `raw` made safe to print: control and non-ASCII bytes as \xNN, cut to 200 bytes with "...".
std::string sanitise_name(std::string_view raw);

/// Throws vmrt::error(protocol_error): "layer entry \"<sanitised>\": <reason>".
[[noreturn]] void refuse_entry(std::string_view raw_entry, const std::string& reason);

}  // namespace vmrt::image::detail
