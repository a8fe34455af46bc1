#include "image/disk_extents.hpp"

#include "image/disk_files.hpp"

#include <linux/fiemap.h>
#include <linux/fs.h>
#include <sys/ioctl.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

namespace vmrt::image::detail {

std::optional<std::uint64_t> shared_extent_bytes(int fd, std::uint64_t size) {
    constexpr std::size_t batch = 256;
    // struct fiemap ends in a flexible array of extents: allocate room for `batch` of them.
    std::vector<std::uint64_t> storage((sizeof(fiemap) + batch * sizeof(fiemap_extent)) / 8 + 1);
    auto* map = reinterpret_cast<fiemap*>(storage.data());

    std::uint64_t shared = 0, start = 0;
    std::uint32_t flags = FIEMAP_FLAG_SYNC;
    while (start < size) {
        // Zero the header only (a `fiemap{}` temporary would name the kernel's zero-length
        // fm_extents[0], which -Wpedantic rejects under clang).
        std::memset(map, 0, sizeof(fiemap));
        map->fm_start = start;
        map->fm_length = size - start;
        map->fm_flags = flags;
        map->fm_extent_count = batch;
        if (::ioctl(fd, FS_IOC_FIEMAP, map) != 0) {
            if (errno == EOPNOTSUPP || errno == ENOTTY) return std::nullopt;
            throw error(last_error(), {.message = "FIEMAP failed: " + last_error().message()});
        }
        flags = 0;  // synced once is enough
        if (map->fm_mapped_extents == 0) break;
        bool last = false;
        for (std::uint32_t i = 0; i < map->fm_mapped_extents; ++i) {
            const fiemap_extent& e = map->fm_extents[i];
            const std::uint64_t begin = std::max<std::uint64_t>(e.fe_logical, start);
            const std::uint64_t end = std::min<std::uint64_t>(e.fe_logical + e.fe_length, size);
            if ((e.fe_flags & FIEMAP_EXTENT_SHARED) && end > begin) shared += end - begin;
            start = std::max<std::uint64_t>(start, e.fe_logical + e.fe_length);
            last = last || (e.fe_flags & FIEMAP_EXTENT_LAST);
        }
        if (last) break;
    }
    return shared;
}

}  // namespace vmrt::image::detail
