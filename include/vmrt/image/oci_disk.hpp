// A pulled image as a bootable disk: its layers applied in order into a rootfs (layer_apply:
// whiteouts resolved inside it, escapes refused), made into an ext4 image with mkfs.ext4 -d,
// cached per manifest digest, and handed to each VM as a copy-on-write clone.
//
//   auto disk = co_await image::image_disk(store, pulled.manifest_digest, cache_dir, run_dir / "root.img");
#pragma once

#include <vmrt/image/disk.hpp>
#include <vmrt/image/oci_store.hpp>

#include <boost/asio/awaitable.hpp>

#include <filesystem>
#include <string>

namespace vmrt::image {

struct image_disk_result {
    std::filesystem::path cached;  ///< the shared ext4 image in the cache (never written by VMs)
    bool built = false;            ///< this call built it (false: it was in the cache)
    clone_result clone;            ///< how `out` was made from it (reflink or sparse copy)
};

/// The ext4 disk of the image manifest `manifest_digest` (in `store`, with its layers), built once
/// into `cache_dir`, then cloned to `out` (which must not exist). Layers must be in the store.
boost::asio::awaitable<image_disk_result> image_disk(const oci_store& store, std::string manifest_digest,
                                                     std::filesystem::path cache_dir,
                                                     std::filesystem::path out);

}  // namespace vmrt::image
