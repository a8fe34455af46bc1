#include "support/oci_layout.hpp"

#include "image/archive_handles.hpp"

#include <vmrt/io/sha256.hpp>

#include <boost/json/array.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <archive.h>
#include <archive_entry.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <memory>
#include <stdexcept>

namespace vmrt::test {
namespace fs = std::filesystem;
namespace json = boost::json;

layer_entry file(std::string path, std::string contents, unsigned mode) {
    layer_entry e;
    e.path = std::move(path);
    e.contents = std::move(contents);
    e.mode = mode;
    return e;
}

layer_entry dir(std::string path, unsigned mode) {
    layer_entry e;
    e.type = layer_entry::kind::directory;
    e.path = std::move(path);
    e.mode = mode;
    return e;
}

layer_entry symlink_to(std::string path, std::string target) {
    layer_entry e;
    e.type = layer_entry::kind::symlink;
    e.path = std::move(path);
    e.contents = std::move(target);
    e.mode = 0777;
    return e;
}

layer_entry hardlink(std::string path, std::string target) {
    layer_entry e;
    e.type = layer_entry::kind::hardlink;
    e.path = std::move(path);
    e.contents = std::move(target);
    return e;
}

namespace {

/// "<parent>/<prefix><name>" for whiteouts; the path's trailing slashes are ignored.
std::string with_name_prefix(std::string path, const std::string& prefix) {
    while (!path.empty() && path.back() == '/') path.pop_back();
    const auto slash = path.rfind('/');
    if (slash == std::string::npos) return prefix + path;
    return path.substr(0, slash + 1) + prefix + path.substr(slash + 1);
}

}  // namespace

layer_entry whiteout(const std::string& path) { return file(with_name_prefix(path, ".wh."), ""); }

layer_entry opaque(const std::string& path) {
    std::string p = path;
    while (!p.empty() && p.back() == '/') p.pop_back();
    return file(p.empty() ? ".wh..wh..opq" : p + "/.wh..wh..opq", "");
}

layer_entry random_file(std::string path, std::uint64_t size, std::uint64_t seed) {
    layer_entry e;
    e.type = layer_entry::kind::random_file;
    e.path = std::move(path);
    e.size = size;
    e.seed = seed;
    return e;
}

json::object oci_descriptor::to_json() const {
    json::object o{{"mediaType", media_type}, {"digest", digest}, {"size", size}};
    if (platform) {
        json::object p{{"architecture", platform->architecture}, {"os", platform->os}};
        if (!platform->variant.empty()) p["variant"] = platform->variant;
        o["platform"] = std::move(p);
    }
    if (!annotations.empty()) {
        json::object a;
        for (const auto& [k, v] : annotations) a[k] = v;
        o["annotations"] = std::move(a);
    }
    return o;
}

std::uint64_t oci_image::total_layer_bytes() const {
    std::uint64_t n = 0;
    for (const auto& l : layers) n += l.size;
    return n;
}

fs::path blob_path(const fs::path& layout_dir, const std::string& digest) {
    if (digest.rfind("sha256:", 0) != 0) throw std::invalid_argument("not a sha256 digest: " + digest);
    return layout_dir / "blobs" / "sha256" / digest.substr(7);
}

namespace {

void ensure_layout(const fs::path& layout_dir) {
    fs::create_directories(layout_dir / "blobs" / "sha256");
    if (!fs::exists(layout_dir / "oci-layout"))
        write_file(layout_dir / "oci-layout", R"({"imageLayoutVersion":"1.0.0"})");
    if (!fs::exists(layout_dir / "index.json"))
        write_file(layout_dir / "index.json",
                   json::serialize(json::object{{"schemaVersion", 2}, {"manifests", json::array{}}}));
}

/// A blob being written: bytes go to a private temp file while hashed; commit() names it by digest.
class blob_sink {
public:
    explicit blob_sink(const fs::path& layout_dir) : layout_(layout_dir) {
        static std::atomic<unsigned> counter{0};
        temp_ = layout_dir / "blobs" / "sha256" /
                (".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
        out_.open(temp_, std::ios::binary | std::ios::trunc);
        if (!out_) throw std::runtime_error("cannot create " + temp_.string());
    }
    blob_sink(const blob_sink&) = delete;
    blob_sink& operator=(const blob_sink&) = delete;
    ~blob_sink() {
        if (!committed_) {
            std::error_code ec;
            fs::remove(temp_, ec);
        }
    }
    void write(const void* data, std::size_t n) {
        hash_.update(data, n);
        out_.write(static_cast<const char*>(data), static_cast<std::streamsize>(n));
        size_ += n;
    }
    oci_descriptor commit(std::string media_type) {
        out_.close();
        if (!out_) throw std::runtime_error("writing " + temp_.string() + " failed");
        oci_descriptor d;
        d.media_type = std::move(media_type);
        d.digest = "sha256:" + hash_.hex_digest();
        d.size = size_;
        fs::rename(temp_, blob_path(layout_, d.digest));
        committed_ = true;
        return d;
    }

private:
    fs::path layout_;
    fs::path temp_;
    std::ofstream out_;
    io::sha256 hash_;
    std::uint64_t size_ = 0;
    bool committed_ = false;
};

[[noreturn]] void archive_failure(struct archive* a, const std::string& what) {
    const char* why = archive_error_string(a);
    throw std::runtime_error("building a test layer: " + what + ": " +
                             (why ? why : "unknown libarchive error"));
}

void check(struct archive* a, int rc, const std::string& what) {
    if (rc < ARCHIVE_WARN) archive_failure(a, what);
}

/// The compressing half: libarchive's "raw" format (one stream, no container) through a filter.
struct compressor {
    image::archive_writer_ptr writer{archive_write_new()};
    blob_sink* sink;

    static la_ssize_t to_sink(struct archive*, void* self, const void* buf, size_t n) {
        static_cast<compressor*>(self)->sink->write(buf, n);
        return static_cast<la_ssize_t>(n);
    }

    compressor(blob_sink& s, layer_compression c, int level) : sink(&s) {
        auto* a = writer.get();
        check(a, archive_write_set_format_raw(a), "raw format");
        const std::string lvl = std::to_string(level);
        if (c == layer_compression::gzip) {
            check(a, archive_write_add_filter_gzip(a), "gzip filter");
            check(a, archive_write_set_filter_option(a, "gzip", "compression-level", lvl.c_str()),
                  "gzip level");
            // No timestamp in the gzip header: the same layer gives the same digest on every run.
            archive_write_set_filter_option(a, "gzip", "timestamp", nullptr);
        } else if (c == layer_compression::zstd) {
            check(a, archive_write_add_filter_zstd(a), "zstd filter (libarchive without zstd?)");
            check(a, archive_write_set_filter_option(a, "zstd", "compression-level", lvl.c_str()),
                  "zstd level");
        }
        // No zero padding after the compressed stream: registries and clients hash every byte.
        archive_write_set_bytes_in_last_block(a, 1);
        check(a, archive_write_open(a, this, nullptr, &compressor::to_sink, nullptr), "open");
        image::archive_entry_ptr e{archive_entry_new()};
        archive_entry_set_pathname(e.get(), "layer.tar");
        archive_entry_set_filetype(e.get(), AE_IFREG);
        archive_entry_set_perm(e.get(), 0644);
        check(a, archive_write_header(a, e.get()), "raw header");
    }
    void write(const void* buf, size_t n) {
        if (archive_write_data(writer.get(), buf, n) < 0) archive_failure(writer.get(), "compressing");
    }
    void finish() { check(writer.get(), archive_write_close(writer.get()), "closing the compressor"); }
};

/// The tar half: hashes the uncompressed stream (the diff_id) and hands it to the compressor.
struct tar_writer {
    image::archive_writer_ptr writer{archive_write_new()};
    compressor* out;
    io::sha256 diff_hash;

    static la_ssize_t to_compressor(struct archive*, void* self, const void* buf, size_t n) {
        auto* t = static_cast<tar_writer*>(self);
        t->diff_hash.update(buf, n);
        t->out->write(buf, n);
        return static_cast<la_ssize_t>(n);
    }

    explicit tar_writer(compressor& c) : out(&c) {
        auto* a = writer.get();
        check(a, archive_write_set_format_pax_restricted(a), "tar format");
        check(a, archive_write_open(a, this, nullptr, &tar_writer::to_compressor, nullptr), "open");
    }

    void add(const layer_entry& le) {
        auto* a = writer.get();
        image::archive_entry_ptr e{archive_entry_new()};
        archive_entry_set_pathname(e.get(), le.path.c_str());
        archive_entry_set_uid(e.get(), le.uid);
        archive_entry_set_gid(e.get(), le.gid);
        archive_entry_set_mtime(e.get(), 0, 0);
        archive_entry_set_perm(e.get(), le.mode & 07777);
        std::uint64_t size = 0;
        switch (le.type) {
        case layer_entry::kind::file:
            archive_entry_set_filetype(e.get(), AE_IFREG);
            size = le.contents.size();
            break;
        case layer_entry::kind::random_file:
            archive_entry_set_filetype(e.get(), AE_IFREG);
            size = le.size;
            break;
        case layer_entry::kind::directory:
            archive_entry_set_filetype(e.get(), AE_IFDIR);
            break;
        case layer_entry::kind::symlink:
            archive_entry_set_filetype(e.get(), AE_IFLNK);
            archive_entry_set_symlink(e.get(), le.contents.c_str());
            break;
        case layer_entry::kind::hardlink:
            archive_entry_set_filetype(e.get(), AE_IFREG);
            archive_entry_set_hardlink(e.get(), le.contents.c_str());
            break;
        }
        archive_entry_set_size(e.get(), static_cast<la_int64_t>(size));
        check(a, archive_write_header(a, e.get()), "header of " + le.path);
        if (le.type == layer_entry::kind::file && !le.contents.empty()) {
            if (archive_write_data(a, le.contents.data(), le.contents.size()) < 0)
                archive_failure(a, "data of " + le.path);
        } else if (le.type == layer_entry::kind::random_file) {
            write_random(le);
        }
    }

    // splitmix64: 8 incompressible bytes per step, ~1 GB/s; the data never needs to be random,
    // only impossible for gzip/zstd to shrink.
    void write_random(const layer_entry& le) {
        std::vector<std::uint64_t> chunk(128 * 1024);
        std::uint64_t state = le.seed * 0x9e3779b97f4a7c15ull + 1;
        std::uint64_t left = le.size;
        while (left > 0) {
            for (auto& w : chunk) {
                std::uint64_t z = (state += 0x9e3779b97f4a7c15ull);
                z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
                z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
                w = z ^ (z >> 31);
            }
            const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(left, chunk.size() * 8));
            if (archive_write_data(writer.get(), chunk.data(), n) < 0)
                archive_failure(writer.get(), "random data");
            left -= n;
        }
    }

    void finish() { check(writer.get(), archive_write_close(writer.get()), "closing the tar"); }
};

const char* media_type_of(layer_compression c) {
    switch (c) {
    case layer_compression::gzip:
        return oci_layer_gzip_media_type;
    case layer_compression::zstd:
        return oci_layer_zstd_media_type;
    case layer_compression::none:
        return oci_layer_tar_media_type;
    }
    return oci_layer_tar_media_type;
}

}  // namespace

oci_image_builder& oci_image_builder::layer(std::vector<layer_entry> entries, layer_compression c) {
    layers_.push_back({std::move(entries), c});
    return *this;
}

oci_image_builder& oci_image_builder::platform(oci_platform p) {
    platform_ = std::move(p);
    return *this;
}

oci_image_builder& oci_image_builder::config_field(const std::string& name, json::value v) {
    config_[name] = std::move(v);
    return *this;
}

oci_image_builder& oci_image_builder::compression_level(int level) {
    level_ = level;
    return *this;
}

oci_descriptor write_json_blob(const fs::path& layout_dir, const json::value& value,
                               const std::string& media_type) {
    ensure_layout(layout_dir);
    blob_sink sink(layout_dir);
    const std::string text = json::serialize(value);
    sink.write(text.data(), text.size());
    return sink.commit(media_type);
}

oci_image oci_image_builder::write_blobs(const fs::path& layout_dir) const {
    ensure_layout(layout_dir);
    oci_image img;
    for (const auto& l : layers_) {
        blob_sink sink(layout_dir);
        compressor comp(sink, l.compression, level_);
        tar_writer tar(comp);
        for (const auto& e : l.entries) tar.add(e);
        tar.finish();
        comp.finish();
        img.diff_ids.push_back("sha256:" + tar.diff_hash.hex_digest());
        img.layers.push_back(sink.commit(media_type_of(l.compression)));
    }
    json::array diff_ids;
    for (const auto& d : img.diff_ids) diff_ids.push_back(json::value(d));
    json::object config{{"architecture", platform_.architecture},
                        {"os", platform_.os},
                        {"config", config_},
                        {"rootfs", json::object{{"type", "layers"}, {"diff_ids", std::move(diff_ids)}}}};
    if (!platform_.variant.empty()) config["variant"] = platform_.variant;
    img.config = write_json_blob(layout_dir, config, oci_config_media_type);

    json::array layers;
    for (const auto& l : img.layers) layers.push_back(l.to_json());
    json::object manifest{{"schemaVersion", 2},
                          {"mediaType", oci_manifest_media_type},
                          {"config", img.config.to_json()},
                          {"layers", std::move(layers)}};
    img.manifest = write_json_blob(layout_dir, manifest, oci_manifest_media_type);
    img.manifest.platform = platform_;
    return img;
}

oci_image oci_image_builder::write(const fs::path& layout_dir, const std::string& tag) const {
    auto img = write_blobs(layout_dir);
    tag_in_layout(layout_dir, img.manifest, tag);
    return img;
}

void tag_in_layout(const fs::path& layout_dir, const oci_descriptor& desc, const std::string& tag) {
    ensure_layout(layout_dir);
    constexpr const char* ref_name = "org.opencontainers.image.ref.name";
    auto index = json::parse(read_file(layout_dir / "index.json")).as_object();
    json::array kept;
    for (auto& m : index["manifests"].as_array()) {
        const auto* ann = m.as_object().if_contains("annotations");
        const auto* name = ann ? ann->as_object().if_contains(ref_name) : nullptr;
        if (!(name && name->is_string() && name->as_string() == tag)) kept.push_back(m);
    }
    auto entry = desc.to_json();
    entry.erase("platform");  // the layout's index names images; platforms belong to image indexes
    json::object annotations;
    if (auto* a = entry.if_contains("annotations")) annotations = a->as_object();
    annotations[ref_name] = tag;
    entry["annotations"] = std::move(annotations);
    kept.push_back(std::move(entry));
    index["manifests"] = std::move(kept);
    write_file(layout_dir / "index.json", json::serialize(index));
}

oci_multi_platform write_multi_platform_index(const fs::path& layout_dir, const std::string& tag) {
    oci_multi_platform out;
    oci_image_builder amd64;
    amd64.platform({"linux", "amd64", ""})
        .layer({dir("etc"), file("etc/arch", "amd64\n"), file("etc/common", "shared by both\n")})
        .layer({file("usr/bin/tool", "#!/bin/sh\necho amd64\n", 0755)});
    out.amd64 = amd64.write_blobs(layout_dir);
    oci_image_builder arm64;
    arm64.platform({"linux", "arm64", "v8"})
        .layer({dir("etc"), file("etc/arch", "arm64\n"), file("etc/common", "shared by both\n")})
        .layer({file("usr/bin/tool", "#!/bin/sh\necho arm64\n", 0755)});
    out.arm64 = arm64.write_blobs(layout_dir);

    // BuildKit's attestation manifest: an in-toto statement as its only "layer", listed in the index
    // with platform unknown/unknown and annotations pointing at the image it describes.
    json::object statement{
        {"_type", "https://in-toto.io/Statement/v0.1"},
        {"predicateType", "https://slsa.dev/provenance/v0.2"},
        {"subject", json::array{json::object{
                        {"name", "vmrt-test"},
                        {"digest", json::object{{"sha256", out.amd64.manifest.digest.substr(7)}}}}}},
        {"predicate", json::object{{"builder", json::object{{"id", "vmrt-test"}}}}}};
    auto statement_desc = write_json_blob(layout_dir, statement, "application/vnd.in-toto+json");
    statement_desc.annotations["in-toto.io/predicate-type"] = "https://slsa.dev/provenance/v0.2";
    json::object att_config{
        {"architecture", "unknown"},
        {"os", "unknown"},
        {"config", json::object{}},
        {"rootfs",
         json::object{{"type", "layers"}, {"diff_ids", json::array{json::value(statement_desc.digest)}}}}};
    auto att_config_desc = write_json_blob(layout_dir, att_config, oci_config_media_type);
    json::object att_manifest{{"schemaVersion", 2},
                              {"mediaType", oci_manifest_media_type},
                              {"config", att_config_desc.to_json()},
                              {"layers", json::array{statement_desc.to_json()}}};
    out.attestation = write_json_blob(layout_dir, att_manifest, oci_manifest_media_type);
    out.attestation.platform = oci_platform{"unknown", "unknown", ""};
    out.attestation.annotations["vnd.docker.reference.digest"] = out.amd64.manifest.digest;
    out.attestation.annotations["vnd.docker.reference.type"] = "attestation-manifest";

    json::object index{{"schemaVersion", 2},
                       {"mediaType", oci_index_media_type},
                       {"manifests", json::array{out.amd64.manifest.to_json(), out.arm64.manifest.to_json(),
                                                 out.attestation.to_json()}}};
    out.index = write_json_blob(layout_dir, index, oci_index_media_type);
    tag_in_layout(layout_dir, out.index, tag);
    return out;
}

oci_image write_big_image(const fs::path& layout_dir, const std::string& tag, std::uint64_t total_bytes,
                          unsigned layers) {
    if (layers == 0) throw std::invalid_argument("write_big_image: at least one layer");
    oci_image_builder b;
    b.compression_level(1).layer({dir("etc"), file("etc/big-image", "vmrt pull benchmark image\n")});
    std::uint64_t left = total_bytes;
    for (unsigned i = 0; i < layers; ++i) {
        const std::uint64_t n = i + 1 == layers ? left : total_bytes / layers;
        left -= n;
        b.layer({dir("data"), random_file("data/blob-" + std::to_string(i), n, 1000 + i)});
    }
    return b.write(layout_dir, tag);
}

void push_image(const fs::path& layout_dir, const std::string& tag, const registry_server& reg,
                const std::string& repo_tag, bool all) {
    auto args = strings("copy", "--quiet", "--preserve-digests", "--dest-cert-dir", reg.cert_dir().string());
    if (reg.credentials()) {
        args.push_back("--dest-creds");
        args.push_back(reg.credentials()->joined());
    } else {
        args.push_back("--dest-no-creds");
    }
    if (all) args.push_back("--all");
    args.push_back("oci:" + layout_dir.string() + ":" + tag);
    args.push_back("docker://" + reg.host_port() + "/" + repo_tag);
    run_skopeo(reg, std::move(args));
}

}  // namespace vmrt::test
