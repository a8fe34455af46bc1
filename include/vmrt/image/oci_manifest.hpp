// Image manifests, indexes and config blobs, sans-I/O: Docker v2 schema 2 manifests and manifest
// lists, OCI image manifests and indexes (with or without the optional top-level mediaType),
// platform selection, layer media types, and the checks a puller makes on what it received
// (digest of the exact bytes, size against the descriptor, document size limits).
//
// Untrusted input throughout: every document is strict JSON (no repeated keys: two parsers must
// never read different values from digest-verified bytes) and every refusal is a vmrt::error
// naming the field: errc::protocol_error for a malformed document, errc::unsupported for a valid
// one vmrt cannot use (schema 1, foreign layers, encrypted layers), errc::not_found when no
// platform matches, errc::digest_mismatch when content does not match its descriptor.
#pragma once

#include <vmrt/image/oci_digest.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace vmrt::image {

namespace media_type {
inline constexpr std::string_view docker_manifest = "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr std::string_view docker_manifest_list =
    "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr std::string_view oci_manifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view oci_index = "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view docker_config = "application/vnd.docker.container.image.v1+json";
inline constexpr std::string_view oci_config = "application/vnd.oci.image.config.v1+json";
/// The Accept header value a puller sends for manifests (all four types above).
inline constexpr std::string_view manifest_accept =
    "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.docker.distribution.manifest.v2+json";
}  // namespace media_type

/// Documents larger than these are refused before parsing (containerd uses 4 MiB for manifests).
inline constexpr std::size_t max_manifest_bytes = 4 * 1024 * 1024;
inline constexpr std::size_t max_config_bytes = 8 * 1024 * 1024;
/// Largest size a descriptor may state: JSON numbers are exact up to 2^53.
inline constexpr std::uint64_t max_descriptor_size = std::uint64_t(1) << 53;

struct platform {
    std::string os;                        ///< "linux"
    std::string architecture;              ///< "amd64", "arm64", "arm", ... as written
    std::string variant;                   ///< "v8", "v7", ... or empty
    std::string os_version;                ///< "os.version"
    std::vector<std::string> os_features;  ///< "os.features"
    std::vector<std::string> features;     ///< "features"

    /// "linux/arm64/v8" (variant only when set).
    std::string str() const;
    friend bool operator==(const platform&, const platform&) = default;
};

struct descriptor {
    std::string media_type;
    std::string digest;  ///< well-formed; sha256 (64 lowercase hex) or another algorithm, refused when used
    std::uint64_t size = 0;
    std::vector<std::string> urls;
    std::optional<image::platform> platform;
    std::map<std::string, std::string> annotations;
    std::string artifact_type;  ///< "artifactType", when present

    friend bool operator==(const descriptor&, const descriptor&) = default;
};

struct image_manifest {
    std::string media_type;  ///< the effective type (docker_manifest or oci_manifest)
    descriptor config;
    std::vector<descriptor> layers;
    std::optional<descriptor> subject;
    std::map<std::string, std::string> annotations;
    friend bool operator==(const image_manifest&, const image_manifest&) = default;
};

struct image_index {
    std::string media_type;  ///< the effective type (docker_manifest_list or oci_index)
    std::vector<descriptor> manifests;
    std::map<std::string, std::string> annotations;
    friend bool operator==(const image_index&, const image_index&) = default;
};

using manifest_document = std::variant<image_manifest, image_index>;

/// Parses a manifest or an index. `content_type` is the HTTP Content-Type of the reply (may be
/// empty; parameters such as "; charset=utf-8" are ignored). The kind is decided by the
/// top-level mediaType, else by a manifest Content-Type, else by shape ("manifests" → OCI index,
/// "config" + "layers" → OCI manifest); a mediaType and a Content-Type naming different manifest
/// types, or a shape that contradicts the type, are refused. schemaVersion must be 2.
manifest_document parse_manifest(std::string_view bytes, std::string_view content_type = {});

/// How a layer blob is compressed.
enum class layer_compression { none, gzip, zstd };

/// The compression of a layer from its media type: OCI tar, tar+gzip, tar+zstd and Docker's
/// rootfs.diff.tar[.gzip|.zstd]. Throws vmrt::error(errc::unsupported) with the reason for
/// foreign / non-distributable layers (Windows base layers served from elsewhere), encrypted
/// layers and unknown types.
layer_compression layer_compression_of(const descriptor& layer);

/// Checks that vmrt can pull and unpack the image: a known config media type, sha256 digests and
/// supported layers (layer_compression_of). Throws errc::unsupported naming the layer index and reason.
void check_pullable(const image_manifest& manifest);

/// A platform wanted: os/architecture[/variant].
struct platform_spec {
    std::string os = "linux";
    std::string architecture;
    std::string variant;  ///< empty: the architecture's default (arm64: v8, arm: v7)
};

/// Parses "linux/arm64", "linux/arm/v7", "arm64" (os linux). Throws errc::invalid_spec.
platform_spec parse_platform_spec(std::string_view text);

/// The platform of the running host (linux/amd64, linux/arm64, ...).
platform_spec host_platform();

/// Normalised (os, architecture, variant): os lowercase; x86_64/x86-64 → amd64 (variant v1 →
/// none); aarch64 → arm64 (variant "8" → v8, none → v8); armhf → arm/v7, armel → arm/v6, arm
/// without variant → v7, "7" → v7; i386/i686 → 386.
platform_spec normalize_platform(platform_spec p);

/// The manifest of `index` for `wanted`: entries whose normalised os/architecture/variant equal
/// the wanted ones (so "linux/arm64" matches "arm64/v8" and "arm64" without variant). Entries
/// without platform, "unknown/unknown" entries and attestation manifests
/// (annotation vnd.docker.reference.type) are skipped. Throws vmrt::error: errc::not_found listing
/// the platforms available; errc::invalid_spec ("ambiguous") listing the candidates when
/// several entries with different digests match.
const descriptor& select_platform(const image_index& index, const platform_spec& wanted);

/// The image config blob (only what vmrt uses).
struct image_config {
    std::string architecture;
    std::string os;
    std::string variant;
    std::vector<std::string> diff_ids;    ///< rootfs.diff_ids: digests of the uncompressed layers
    std::vector<std::string> env;         ///< config.Env ("K=V")
    std::vector<std::string> cmd;         ///< config.Cmd
    std::vector<std::string> entrypoint;  ///< config.Entrypoint
    std::string working_dir;              ///< config.WorkingDir
    std::string user;                     ///< config.User
};

/// Parses a config blob (max_config_bytes at most). rootfs.type must be "layers".
image_config parse_image_config(std::string_view bytes);

/// Throws errc::digest_mismatch unless the config lists one diff_id per layer of the manifest.
void check_config_matches(const image_manifest& manifest, const image_config& config);

/// Throws errc::digest_mismatch unless `actual_size` equals the descriptor's size (the puller
/// calls this on every blob and manifest it fetched by descriptor).
void check_size(const descriptor& expected, std::uint64_t actual_size);

/// Throws errc::protocol_error if a manifest or index of `size` bytes is over max_manifest_bytes
/// (use before downloading one whose descriptor or Content-Length states its size).
void check_manifest_size(std::uint64_t size);

}  // namespace vmrt::image
