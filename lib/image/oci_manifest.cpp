// Manifest, index and config parsing; layer types; the checks on received content.
#include "image/oci_text.hpp"
#include "strict_json.hpp"

#include <vmrt/error.hpp>
#include <vmrt/image/oci_manifest.hpp>

#include <boost/json.hpp>

#include <algorithm>

namespace vmrt::image {

namespace json = boost::json;

namespace {

[[noreturn]] void malformed(const std::string& what, const std::string& path, const std::string& why) {
    detail::fail(errc::protocol_error, what + ": " + (path.empty() ? "" : path + " ") + why, path);
}

/// Typed access to one JSON document, with the path of every value for error messages.
class doc_reader {
public:
    explicit doc_reader(std::string what) : what_(std::move(what)) {}

    json::value parse(std::string_view bytes, std::size_t limit) const {
        if (bytes.size() > limit)
            detail::fail(errc::protocol_error, what_ + " is " + std::to_string(bytes.size()) +
                                                   " bytes, over the limit of " + std::to_string(limit) +
                                                   " bytes");
        auto parsed = vmrt::detail::parse_json_strictly(bytes);
        if (!parsed) malformed(what_, "", parsed.error());
        if (const auto dup = vmrt::detail::first_duplicate_key(bytes))
            malformed(what_, *dup, "occurs twice (repeated keys are refused)");
        if (!parsed->is_object()) malformed(what_, "", "is not a JSON object");
        return std::move(*parsed);
    }

    [[noreturn]] void bad(const std::string& path, const std::string& why) const {
        malformed(what_, path, why);
    }

    const json::value* find(const json::object& o, std::string_view key) const {
        const auto* v = o.if_contains(key);
        return v == nullptr || v->is_null() ? nullptr : v;
    }

    std::string str(const json::object& o, std::string_view key, const std::string& path,
                    bool required = false) const {
        const auto* v = find(o, key);
        if (v == nullptr) {
            if (required) bad(vmrt::detail::child_path(path, key), "is missing");
            return {};
        }
        if (!v->is_string()) bad(vmrt::detail::child_path(path, key), "is not a string");
        return std::string(v->get_string());
    }

    const json::object* obj(const json::object& o, std::string_view key, const std::string& path) const {
        const auto* v = find(o, key);
        if (v == nullptr) return nullptr;
        if (!v->is_object()) bad(vmrt::detail::child_path(path, key), "is not an object");
        return &v->get_object();
    }

    const json::array* arr(const json::object& o, std::string_view key, const std::string& path) const {
        const auto* v = find(o, key);
        if (v == nullptr) return nullptr;
        if (!v->is_array()) bad(vmrt::detail::child_path(path, key), "is not an array");
        return &v->get_array();
    }

    std::vector<std::string> strings(const json::object& o, std::string_view key,
                                     const std::string& path) const {
        std::vector<std::string> out;
        const auto* a = arr(o, key, path);
        if (a == nullptr) return out;
        const auto here = vmrt::detail::child_path(path, key);
        for (std::size_t i = 0; i < a->size(); ++i) {
            if (!(*a)[i].is_string()) bad(vmrt::detail::element_path(here, i), "is not a string");
            out.emplace_back((*a)[i].get_string());
        }
        return out;
    }

    std::map<std::string, std::string> string_map(const json::object& o, std::string_view key,
                                                  const std::string& path) const {
        std::map<std::string, std::string> out;
        const auto* m = obj(o, key, path);
        if (m == nullptr) return out;
        for (const auto& [k, v] : *m) {
            if (!v.is_string())
                bad(vmrt::detail::child_path(vmrt::detail::child_path(path, key), k), "is not a string");
            out.emplace(std::string(k), std::string(v.get_string()));
        }
        return out;
    }

    std::uint64_t size(const json::object& o, const std::string& path) const {
        const auto* v = find(o, "size");
        const auto here = vmrt::detail::child_path(path, "size");
        if (v == nullptr) bad(here, "is missing");
        std::uint64_t n = 0;
        if (v->is_uint64())
            n = v->get_uint64();
        else if (v->is_int64() && v->get_int64() >= 0)
            n = static_cast<std::uint64_t>(v->get_int64());
        else
            bad(here, "is not a non-negative integer");
        if (n > max_descriptor_size) bad(here, "is larger than 2^53");
        return n;
    }

    image::platform platform(const json::object& o, const std::string& path) const {
        image::platform p;
        p.os = str(o, "os", path, true);
        p.architecture = str(o, "architecture", path, true);
        p.variant = str(o, "variant", path);
        p.os_version = str(o, "os.version", path);
        p.os_features = strings(o, "os.features", path);
        p.features = strings(o, "features", path);
        return p;
    }

    descriptor desc(const json::value& v, const std::string& path) const {
        if (!v.is_object()) bad(path, "is not an object");
        const auto& o = v.get_object();
        descriptor d;
        d.media_type = str(o, "mediaType", path, true);
        if (d.media_type.empty() || d.media_type.find('/') == std::string::npos)
            bad(vmrt::detail::child_path(path, "mediaType"), "is not a media type");
        d.digest = str(o, "digest", path, true);
        try {
            check_digest(d.digest, what_ + ": " + vmrt::detail::child_path(path, "digest"));
        } catch (const error& e) {
            // A well-formed digest of another algorithm is kept: an index may list entries vmrt
            // never fetches. verify_digest() and check_pullable() refuse it when it is used.
            if (e.code() != errc::unsupported)
                malformed(what_, vmrt::detail::child_path(path, "digest"),
                          "is not a valid digest: " + e.diag().message);
        }
        d.size = size(o, path);
        d.urls = strings(o, "urls", path);
        if (const auto* p = obj(o, "platform", path))
            d.platform = platform(*p, vmrt::detail::child_path(path, "platform"));
        d.annotations = string_map(o, "annotations", path);
        d.artifact_type = str(o, "artifactType", path);
        return d;
    }

    std::vector<descriptor> descs(const json::object& o, std::string_view key) const {
        std::vector<descriptor> out;
        const auto* a = arr(o, key, "");
        if (a == nullptr) bad(std::string(key), "is missing");
        for (std::size_t i = 0; i < a->size(); ++i)
            out.push_back(desc((*a)[i], vmrt::detail::element_path(std::string(key), i)));
        return out;
    }

private:
    std::string what_;
};

bool is_manifest_type(std::string_view t) {
    return t == media_type::docker_manifest || t == media_type::oci_manifest;
}
bool is_index_type(std::string_view t) {
    return t == media_type::docker_manifest_list || t == media_type::oci_index;
}

/// The media type of a Content-Type header value: parameters dropped, trimmed, lowercase.
std::string bare_media_type(std::string_view content_type) {
    content_type = content_type.substr(0, content_type.find(';'));
    while (!content_type.empty() && (content_type.front() == ' ' || content_type.front() == '\t'))
        content_type.remove_prefix(1);
    while (!content_type.empty() && (content_type.back() == ' ' || content_type.back() == '\t'))
        content_type.remove_suffix(1);
    return detail::ascii_lowercase(content_type);
}

void refuse_unsupported_type(const std::string& type, const std::string& from) {
    if (type.starts_with("application/vnd.docker.distribution.manifest.v1"))
        detail::fail(errc::unsupported, "manifest: Docker schema 1 (" + from + " " + detail::quoted(type) +
                                            ") is not supported; the registry must serve schema 2 or OCI");
    detail::fail(errc::unsupported, "manifest: " + from + " " + detail::quoted(type) +
                                        " is not an image manifest or index vmrt can use");
}

std::string arch_of(std::string a) {
    a = detail::ascii_lowercase(a);
    if (a == "x86_64" || a == "x86-64") return "amd64";
    if (a == "aarch64") return "arm64";
    if (a == "armhf" || a == "armel") return "arm";
    if (a == "i386" || a == "i686") return "386";
    return a;
}

std::string describe(const descriptor& d) {
    return (d.platform ? d.platform->str() : std::string("(no platform)")) + " " + d.digest;
}

bool is_attestation(const descriptor& d) {
    const auto it = d.annotations.find("vnd.docker.reference.type");
    return it != d.annotations.end() && it->second == "attestation-manifest";
}

}  // namespace

std::string platform::str() const { return os + "/" + architecture + (variant.empty() ? "" : "/" + variant); }

manifest_document parse_manifest(std::string_view bytes, std::string_view content_type) {
    const doc_reader r("manifest");
    const json::value doc = r.parse(bytes, max_manifest_bytes);
    const auto& o = doc.get_object();

    // schemaVersion first: a schema 1 document must be called that, not "malformed".
    const auto* version = r.find(o, "schemaVersion");
    if (version == nullptr) r.bad("schemaVersion", "is missing");
    if (!version->is_int64() && !version->is_uint64()) r.bad("schemaVersion", "is not an integer");
    if (version->is_int64() && version->get_int64() == 1)
        detail::fail(errc::unsupported,
                     "manifest: Docker schema 1 is not supported; the registry must serve schema 2 or OCI");
    if (!(version->is_int64() && version->get_int64() == 2) &&
        !(version->is_uint64() && version->get_uint64() == 2))
        r.bad("schemaVersion", "is not 2");

    const std::string declared = r.str(o, "mediaType", "");
    const std::string header = bare_media_type(content_type);
    const bool header_is_manifest = is_manifest_type(header) || is_index_type(header);
    const bool has_manifests = r.find(o, "manifests") != nullptr;
    const bool has_image_parts = r.find(o, "config") != nullptr || r.find(o, "layers") != nullptr;

    std::string type;
    if (!declared.empty()) {
        if (!is_manifest_type(declared) && !is_index_type(declared))
            refuse_unsupported_type(declared, "mediaType");
        if (header_is_manifest && header != declared)
            detail::fail(errc::protocol_error, "manifest: Content-Type " + detail::quoted(header) +
                                                   " does not match the document's mediaType " +
                                                   detail::quoted(declared));
        type = declared;
    } else if (header_is_manifest) {
        type = header;
    } else if (header.starts_with("application/vnd.docker.distribution.manifest.v1")) {
        refuse_unsupported_type(header, "Content-Type");
    } else {
        if (has_manifests == has_image_parts)
            r.bad("", has_manifests
                          ? "has both \"manifests\" and \"config\"/\"layers\": neither index nor manifest"
                          : "has no mediaType, no \"manifests\" and no \"config\"/\"layers\"");
        type = std::string(has_manifests ? media_type::oci_index : media_type::oci_manifest);
    }
    // Docker's schema 2 formats require the field; only OCI documents may leave it out.
    if (declared.empty() && (type == media_type::docker_manifest || type == media_type::docker_manifest_list))
        r.bad("mediaType", "is missing (required in Docker schema 2 documents)");

    if (is_index_type(type)) {
        if (has_image_parts) r.bad("", "is typed " + type + " but has \"config\"/\"layers\"");
        image_index index;
        index.media_type = type;
        index.manifests = r.descs(o, "manifests");
        index.annotations = r.string_map(o, "annotations", "");
        return index;
    }
    if (has_manifests) r.bad("", "is typed " + type + " but has \"manifests\"");
    image_manifest m;
    m.media_type = type;
    const auto* config = r.find(o, "config");
    if (config == nullptr) r.bad("config", "is missing");
    m.config = r.desc(*config, "config");
    m.layers = r.descs(o, "layers");
    if (const auto* subject = r.find(o, "subject")) m.subject = r.desc(*subject, "subject");
    m.annotations = r.string_map(o, "annotations", "");
    return m;
}

layer_compression layer_compression_of(const descriptor& layer) {
    const std::string& t = layer.media_type;
    if (t == "application/vnd.oci.image.layer.v1.tar" || t == "application/vnd.docker.image.rootfs.diff.tar")
        return layer_compression::none;
    if (t == "application/vnd.oci.image.layer.v1.tar+gzip" ||
        t == "application/vnd.docker.image.rootfs.diff.tar.gzip")
        return layer_compression::gzip;
    if (t == "application/vnd.oci.image.layer.v1.tar+zstd" ||
        t == "application/vnd.docker.image.rootfs.diff.tar.zstd")
        return layer_compression::zstd;
    const std::string what = "layer " + layer.digest + " has media type " + detail::quoted(t);
    if (t.starts_with("application/vnd.docker.image.rootfs.foreign.") ||
        t.starts_with("application/vnd.oci.image.layer.nondistributable."))
        detail::fail(errc::unsupported, what +
                                            ": a foreign (non-distributable) layer, served from outside the "
                                            "registry (Windows base layers); vmrt pulls Linux images only");
    if (t.find("+encrypted") != std::string::npos)
        detail::fail(errc::unsupported, what + ": encrypted layers (ocicrypt) are not supported");
    detail::fail(errc::unsupported,
                 what + ", which is not a layer type vmrt can unpack (tar, tar+gzip, tar+zstd)");
}

void check_pullable(const image_manifest& manifest) {
    if (manifest.config.media_type != media_type::docker_config &&
        manifest.config.media_type != media_type::oci_config)
        detail::fail(errc::unsupported, "manifest: config media type " +
                                            detail::quoted(manifest.config.media_type) +
                                            " is not a container image config (an artifact, not an image)");
    check_digest(manifest.config.digest, "manifest: config.digest");
    for (std::size_t i = 0; i < manifest.layers.size(); ++i) {
        try {
            check_digest(manifest.layers[i].digest, "digest");
            (void)layer_compression_of(manifest.layers[i]);
        } catch (const error& e) {
            detail::fail(errc::unsupported,
                         "manifest: layers[" + std::to_string(i) + "]: " + e.diag().message,
                         "layers[" + std::to_string(i) + "]");
        }
    }
}

platform_spec parse_platform_spec(std::string_view text) {
    std::vector<std::string> parts;
    std::size_t start = 0;
    while (true) {
        const auto slash = text.find('/', start);
        parts.emplace_back(text.substr(start, slash == std::string_view::npos ? text.npos : slash - start));
        if (slash == std::string_view::npos) break;
        start = slash + 1;
    }
    for (const auto& p : parts)
        if (p.empty() || p.size() > 64 || !std::all_of(p.begin(), p.end(), [](char c) {
                return detail::is_alnum(c) || c == '_' || c == '-' || c == '.';
            }))
            parts.clear();
    platform_spec spec;
    if (parts.size() == 1) {
        spec.architecture = parts[0];
    } else if (parts.size() == 2 || parts.size() == 3) {
        spec.os = parts[0];
        spec.architecture = parts[1];
        if (parts.size() == 3) spec.variant = parts[2];
    } else {
        detail::fail(errc::invalid_spec,
                     "invalid platform " + detail::quoted(text) +
                         ": expected os/architecture[/variant] or architecture",
                     "platform");
    }
    return spec;
}

platform_spec host_platform() {
    platform_spec p;
#if defined(__x86_64__)
    p.architecture = "amd64";
#elif defined(__aarch64__)
    p.architecture = "arm64";
#elif defined(__arm__)
    p.architecture = "arm";
#elif defined(__i386__)
    p.architecture = "386";
#elif defined(__riscv) && __riscv_xlen == 64
    p.architecture = "riscv64";
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    p.architecture = "ppc64le";
#elif defined(__s390x__)
    p.architecture = "s390x";
#else
#error "host_platform(): unknown architecture"
#endif
    return normalize_platform(p);
}

platform_spec normalize_platform(platform_spec p) {
    const std::string raw_arch = detail::ascii_lowercase(p.architecture);
    p.os = detail::ascii_lowercase(p.os);
    p.architecture = arch_of(raw_arch);
    p.variant = detail::ascii_lowercase(p.variant);
    if (p.architecture == "amd64") {
        if (p.variant == "v1") p.variant.clear();
    } else if (p.architecture == "arm64") {
        if (p.variant.empty() || p.variant == "8") p.variant = "v8";
    } else if (p.architecture == "arm") {
        if (p.variant.empty())
            p.variant = raw_arch == "armel" ? "v6" : "v7";
        else if (p.variant.size() == 1 && detail::is_digit(p.variant[0]))
            p.variant = "v" + p.variant;
    }
    return p;
}

const descriptor& select_platform(const image_index& index, const platform_spec& wanted_raw) {
    const platform_spec wanted = normalize_platform(wanted_raw);
    const std::string wanted_text =
        wanted.os + "/" + wanted.architecture + (wanted.variant.empty() ? "" : "/" + wanted.variant);
    std::vector<const descriptor*> matches;
    std::string available;
    for (const auto& d : index.manifests) {
        if (!d.platform || is_attestation(d) || d.platform->os == "unknown" ||
            d.platform->architecture == "unknown")
            continue;
        available += (available.empty() ? "" : ", ") + d.platform->str();
        const auto have = normalize_platform({d.platform->os, d.platform->architecture, d.platform->variant});
        if (have.os != wanted.os || have.architecture != wanted.architecture ||
            have.variant != wanted.variant)
            continue;
        if (std::none_of(matches.begin(), matches.end(),
                         [&](const descriptor* m) { return m->digest == d.digest; }))
            matches.push_back(&d);
    }
    if (matches.empty())
        detail::fail(errc::not_found,
                     "the image index has no manifest for " + wanted_text +
                         " (available: " + (available.empty() ? std::string("none") : available) + ")",
                     "platform");
    if (matches.size() > 1) {
        std::string list;
        for (const auto* m : matches) list += (list.empty() ? "" : "; ") + describe(*m);
        detail::fail(errc::invalid_spec,
                     "the image index is ambiguous for " + wanted_text + ": " +
                         std::to_string(matches.size()) + " manifests match (" + list +
                         "); pin one by digest",
                     "platform");
    }
    return *matches.front();
}

image_config parse_image_config(std::string_view bytes) {
    const doc_reader r("image config");
    const json::value doc = r.parse(bytes, max_config_bytes);
    const auto& o = doc.get_object();
    image_config c;
    c.architecture = r.str(o, "architecture", "");
    c.os = r.str(o, "os", "");
    c.variant = r.str(o, "variant", "");
    const auto* rootfs = r.obj(o, "rootfs", "");
    if (rootfs == nullptr) r.bad("rootfs", "is missing");
    const std::string type = r.str(*rootfs, "type", "rootfs", true);
    if (type != "layers") r.bad("rootfs.type", "is " + detail::quoted(type) + ", not \"layers\"");
    const auto* diff_ids = r.arr(*rootfs, "diff_ids", "rootfs");
    if (diff_ids == nullptr) r.bad("rootfs.diff_ids", "is missing");
    c.diff_ids = r.strings(*rootfs, "diff_ids", "rootfs");
    for (std::size_t i = 0; i < c.diff_ids.size(); ++i)
        check_digest(c.diff_ids[i], "image config: rootfs.diff_ids[" + std::to_string(i) + "]");
    if (const auto* config = r.obj(o, "config", "")) {
        c.env = r.strings(*config, "Env", "config");
        c.cmd = r.strings(*config, "Cmd", "config");
        c.entrypoint = r.strings(*config, "Entrypoint", "config");
        c.working_dir = r.str(*config, "WorkingDir", "config");
        c.user = r.str(*config, "User", "config");
    }
    return c;
}

void check_config_matches(const image_manifest& manifest, const image_config& config) {
    if (manifest.layers.size() != config.diff_ids.size())
        detail::fail(errc::digest_mismatch, "the manifest has " + std::to_string(manifest.layers.size()) +
                                                " layers but its config lists " +
                                                std::to_string(config.diff_ids.size()) + " diff_ids");
}

void check_size(const descriptor& expected, std::uint64_t actual_size) {
    if (actual_size != expected.size)
        detail::fail(errc::digest_mismatch,
                     "content " + expected.digest + " is " + std::to_string(actual_size) +
                         " bytes, but its descriptor says " + std::to_string(expected.size));
}

void check_manifest_size(std::uint64_t size) {
    if (size > max_manifest_bytes)
        detail::fail(errc::protocol_error, "a manifest of " + std::to_string(size) +
                                               " bytes is over the limit of " +
                                               std::to_string(max_manifest_bytes) + " bytes");
}

}  // namespace vmrt::image
