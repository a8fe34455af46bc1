// How much of a file's data shares its blocks with other files, from FIEMAP.
#pragma once

#include <cstdint>
#include <optional>

namespace vmrt::image::detail {

/// Sum of the lengths of the extents of `fd` (within [0, size)) flagged FIEMAP_EXTENT_SHARED.
/// Flushes delayed allocation first (FIEMAP_FLAG_SYNC). nullopt if the file system has no FIEMAP.
/// Throws vmrt::error on other failures.
std::optional<std::uint64_t> shared_extent_bytes(int fd, std::uint64_t size);

}  // namespace vmrt::image::detail
