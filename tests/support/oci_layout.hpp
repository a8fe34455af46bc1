// Test images built by the test: OCI image layout directories (oci-layout, index.json,
// blobs/sha256/<hex>) written in C++ with libarchive, with every descriptor (size, sha256 digest)
// and every diff_id (sha256 of the uncompressed tar) computed here, so a test knows exactly what a
// registry must serve back. Then pushed to a registry_server with `skopeo copy` (digests kept).
//
//   oci_image_builder img;
//   img.layer({file("etc/hello", "hi\n"), dir("var/x"), symlink_to("lib/a", "b")})
//      .layer({whiteout("etc/old"), opaque("var/cache")}, layer_compression::zstd)
//      .config_field("Cmd", boost::json::array{"/bin/sh"});
//   oci_image written = img.write(layout, "v1");   // written.manifest.digest == "sha256:..."
//   push_image(layout, "v1", registry, "demo/app:v1");
//
// Tar entries are deterministic (mtime 0, uid/gid 0 unless given): the same builder gives the same
// digests on every run.
#pragma once

#include "support/registry_env.hpp"

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace vmrt::test {

inline constexpr const char* oci_manifest_media_type = "application/vnd.oci.image.manifest.v1+json";
inline constexpr const char* oci_index_media_type = "application/vnd.oci.image.index.v1+json";
inline constexpr const char* oci_config_media_type = "application/vnd.oci.image.config.v1+json";
inline constexpr const char* oci_layer_tar_media_type = "application/vnd.oci.image.layer.v1.tar";
inline constexpr const char* oci_layer_gzip_media_type = "application/vnd.oci.image.layer.v1.tar+gzip";
inline constexpr const char* oci_layer_zstd_media_type = "application/vnd.oci.image.layer.v1.tar+zstd";

/// One tar entry of a layer. Build them with the functions below.
struct layer_entry {
    enum class kind { file, directory, symlink, hardlink, random_file };
    kind type = kind::file;
    std::string path;        ///< as written in the tar (relative, e.g. "etc/hello")
    std::string contents;    ///< file: its bytes; symlink/hardlink: the target
    std::uint64_t size = 0;  ///< random_file: how many bytes
    std::uint64_t seed = 0;  ///< random_file: the generator's seed
    unsigned mode = 0644;    ///< permission bits
    unsigned uid = 0, gid = 0;
};

layer_entry file(std::string path, std::string contents, unsigned mode = 0644);
layer_entry dir(std::string path, unsigned mode = 0755);
/// (Not "symlink": that would collide with ::symlink of <unistd.h> in unqualified calls.)
layer_entry symlink_to(std::string path, std::string target);
/// A hard link `path` to the earlier entry `target` of the same layer.
layer_entry hardlink(std::string path, std::string target);
/// The whiteout of `path`: an empty file "<parent>/.wh.<name>".
layer_entry whiteout(const std::string& path);
/// Marks directory `path` opaque: an empty file "<path>/.wh..wh..opq".
layer_entry opaque(const std::string& path);
/// `size` incompressible bytes generated from `seed` (fast, streamed: never held in memory).
layer_entry random_file(std::string path, std::uint64_t size, std::uint64_t seed);

enum class layer_compression { gzip, zstd, none };

struct oci_platform {
    std::string os = "linux";
    std::string architecture = "amd64";
    std::string variant;  ///< empty: none ("v8" for arm64)
};

struct oci_descriptor {
    std::string media_type;
    std::string digest;  ///< "sha256:<64 hex>"
    std::uint64_t size = 0;
    std::optional<oci_platform> platform;
    std::map<std::string, std::string> annotations;
    boost::json::object to_json() const;
};

/// What write()/write_blobs() produced.
struct oci_image {
    oci_descriptor manifest;  ///< the image manifest (its platform set from the config)
    oci_descriptor config;
    std::vector<oci_descriptor> layers;
    std::vector<std::string> diff_ids;  ///< "sha256:..." of each uncompressed layer tar
    std::uint64_t total_layer_bytes() const;
};

class oci_image_builder {
public:
    /// Adds a layer with these entries (in this order). Parent directories are not added
    /// implicitly: a layer is exactly the tar a test wants (hostile layers included).
    oci_image_builder& layer(std::vector<layer_entry> entries, layer_compression c = layer_compression::gzip);
    /// The platform written into the config (and onto the manifest's descriptor in an index).
    oci_image_builder& platform(oci_platform p);
    /// Sets a field of the config's "config" object (Cmd, Env, Entrypoint, WorkingDir, Labels...).
    oci_image_builder& config_field(const std::string& name, boost::json::value v);
    /// gzip/zstd level for the layers (1: fast; the default, 6, is what image builders use).
    oci_image_builder& compression_level(int level);

    /// Writes the layer blobs, the config and the manifest into `layout_dir` (creating the
    /// layout if needed) without tagging it.
    oci_image write_blobs(const std::filesystem::path& layout_dir) const;
    /// write_blobs, then tags the manifest as `tag` in the layout's index.json (replacing an
    /// earlier entry with that tag).
    oci_image write(const std::filesystem::path& layout_dir, const std::string& tag) const;

private:
    struct pending_layer {
        std::vector<layer_entry> entries;
        layer_compression compression;
    };
    std::vector<pending_layer> layers_;
    oci_platform platform_;
    boost::json::object config_;
    int level_ = 6;
};

/// A multi-platform index: linux/amd64 and linux/arm64/v8, each its own manifest (different
/// layers: the file etc/arch says which), plus an attestation manifest (platform unknown/unknown,
/// an in-toto layer, annotations naming the amd64 manifest) as BuildKit writes them.
struct oci_multi_platform {
    oci_descriptor index;  ///< the index blob, tagged in the layout
    oci_image amd64;
    oci_image arm64;
    oci_descriptor attestation;  ///< the attestation manifest's descriptor (as listed in the index)
};
oci_multi_platform write_multi_platform_index(const std::filesystem::path& layout_dir,
                                              const std::string& tag);

/// An image of `layers` gzip layers holding `total_bytes` of incompressible data in all (plus a
/// small first layer), for pull benchmarks. Compression level 1: generation stays fast.
oci_image write_big_image(const std::filesystem::path& layout_dir, const std::string& tag,
                          std::uint64_t total_bytes = 100ull << 20, unsigned layers = 4);

/// Writes `json` (serialised compactly) as a blob; returns its digest and size.
oci_descriptor write_json_blob(const std::filesystem::path& layout_dir, const boost::json::value& json,
                               const std::string& media_type);
/// Tags `desc` as `tag` in the layout's index.json.
void tag_in_layout(const std::filesystem::path& layout_dir, const oci_descriptor& desc,
                   const std::string& tag);
/// The path of a blob of the layout.
std::filesystem::path blob_path(const std::filesystem::path& layout_dir, const std::string& digest);

/// `skopeo copy --preserve-digests [--all] oci:<layout>:<tag> docker://HOST:PORT/<repo_tag>`,
/// with the registry's cert dir and credentials. `all`: copy every image of an index.
void push_image(const std::filesystem::path& layout_dir, const std::string& tag, const registry_server& reg,
                const std::string& repo_tag, bool all = false);

}  // namespace vmrt::test
