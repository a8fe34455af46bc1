#include <vmrt/image/layer_apply.hpp>
#include <vmrt/image/oci_disk.hpp>
#include <vmrt/image/oci_manifest.hpp>
#include <vmrt/image/rootfs_disk.hpp>

#include <unistd.h>

namespace vmrt::image {

namespace asio = boost::asio;
namespace fs = std::filesystem;

asio::awaitable<image_disk_result> image_disk(const oci_store& store, std::string manifest_digest,
                                              fs::path cache_dir, fs::path out) {
    const auto document = parse_manifest(store.read_small_blob(manifest_digest, max_manifest_bytes));
    const auto* manifest = std::get_if<image_manifest>(&document);
    if (!manifest)
        throw error(make_error_code(errc::invalid_spec),
                    {.message = manifest_digest + " is an index, not an image manifest: pull one platform"});
    check_pullable(*manifest);
    std::vector<layer> layers;
    for (const auto& d : manifest->layers) {
        if (!store.has_blob(d.digest))
            throw error(make_error_code(errc::not_found),
                        {.message = "layer " + d.digest + " of " + manifest_digest +
                                    " is not in the store: pull it first"});
        layer_options o;
        o.compression = compression_for_media_type(d.media_type);
        o.allow_setid = true;  // a bootable root needs su, passwd, ping as the image has them
        layers.push_back({store.blob_path(d.digest), o});
    }
    fs::create_directories(cache_dir);
    auto cached =
        co_await cached_rootfs_disk(cache_dir, manifest_digest, [&](fs::path image) -> asio::awaitable<void> {
            // The rootfs is private to this build (pid in its name) and removed whatever happens.
            const fs::path rootfs =
                cache_dir / (".rootfs-" + manifest_digest.substr(7, 16) + "." + std::to_string(::getpid()));
            struct remove_on_exit {
                fs::path p;
                ~remove_on_exit() {
                    std::error_code ec;
                    fs::remove_all(p, ec);
                }
            } cleanup{rootfs};
            apply_layers(rootfs, layers);
            rootfs_disk_options d;
            d.rootfs = rootfs;
            d.image = image;
            d.overwrite = true;
            co_await make_ext4_from_rootfs(d);
        });
    image_disk_result result;
    result.cached = cached.path;
    result.built = cached.built;
    result.clone = clone_disk(cached.path, out);
    co_return result;
}

}  // namespace vmrt::image
