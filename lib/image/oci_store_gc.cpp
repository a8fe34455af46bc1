// Reachability (tag → index → manifest → config + layers), garbage collection and size accounting.
#include "image/oci_store_detail.hpp"

#include <vmrt/image/oci_store.hpp>
#include <vmrt/io/atomic_file.hpp>

#include <boost/json.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>
#include <map>
#include <vector>

namespace vmrt::image {
namespace fs = std::filesystem;
using namespace store_detail;

namespace {

// Manifests and indexes are small; anything larger is not walked (it is a layer, or hostile).
constexpr std::size_t max_walked_bytes = 4 << 20;

// Reads a blob for the walk *without* checking its digest: a manifest with a flipped byte must
// not make gc delete the layers it still names (verify reports the corruption instead).
std::optional<std::string> read_for_walk(const fs::path& path) {
    io::unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    struct stat st {};
    if (!fd || ::fstat(fd.get(), &st) != 0 || static_cast<std::uint64_t>(st.st_size) > max_walked_bytes)
        return std::nullopt;
    std::string data(static_cast<std::size_t>(st.st_size), '\0');
    std::size_t done = 0;
    while (done < data.size()) {
        ssize_t n = ::read(fd.get(), data.data() + done, data.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return std::nullopt;
        done += static_cast<std::size_t>(n);
    }
    return data;
}

// The "digest" member of a descriptor object, if it is a well-formed sha256 digest.
std::optional<std::string> descriptor_digest(const boost::json::value* v) {
    const auto* o = v ? v->if_object() : nullptr;
    const auto* d = o ? o->if_contains("digest") : nullptr;
    if (!d || !d->is_string() || !is_sha256_digest(d->get_string())) return std::nullopt;
    return std::string(d->get_string());
}

std::int64_t age_seconds(const struct stat& st) {
    return static_cast<std::int64_t>(std::time(nullptr)) - static_cast<std::int64_t>(st.st_mtime);
}

bool is_hex64(std::string_view name) { return is_sha256_digest(std::string("sha256:") + std::string(name)); }

}  // namespace

namespace store_detail {

manifest_references references_of(std::string_view json) {
    manifest_references refs;
    boost::system::error_code ec;
    auto doc = boost::json::parse(json, ec);
    const auto* o = ec ? nullptr : doc.if_object();
    if (!o) return refs;
    if (auto d = descriptor_digest(o->if_contains("config"))) refs.leaves.push_back(*d);
    auto collect = [&](const char* key, std::vector<std::string>& into) {
        const auto* list = o->if_contains(key);
        if (!list || !list->is_array()) return;
        for (const auto& entry : list->get_array())
            if (auto d = descriptor_digest(&entry)) into.push_back(*d);
    };
    collect("layers", refs.leaves);
    collect("manifests", refs.children);
    return refs;
}

void walk_references(const oci_store& store, const std::string& root, std::set<std::string>& reached) {
    std::vector<std::string> to_walk{root};
    reached.insert(root);
    while (!to_walk.empty()) {
        auto digest = std::move(to_walk.back());
        to_walk.pop_back();
        auto text = read_for_walk(store.blob_path(digest));
        if (!text) continue;
        auto refs = references_of(*text);
        for (auto& d : refs.leaves) reached.insert(std::move(d));
        for (auto& d : refs.children)
            if (reached.insert(d).second) to_walk.push_back(std::move(d));
    }
}

}  // namespace store_detail

gc_result oci_store::gc(const gc_options& options) const {
    gc_result result;
    std::set<std::string> reached;
    for (const auto& image : list_images()) walk_references(*this, image.digest, reached);
    for (const auto& root : options.keep_roots) {
        hex_of(root, "keep_roots");
        walk_references(*this, root, reached);
    }
    const auto min_age = static_cast<std::int64_t>(options.min_age.count());
    auto remove = [&](const fs::path& path, const struct stat& st) {
        if (!options.dry_run && ::unlink(path.c_str()) != 0) {
            if (errno == ENOENT) return false;
            fail_errno(errno, "cannot remove " + path.string());
        }
        result.bytes_freed += static_cast<std::uint64_t>(st.st_size);
        return true;
    };

    const auto blobs = blobs_dir(root_);
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(blobs, ec)) {
        const auto name = entry.path().filename().string();
        struct stat st {};
        if (::lstat(entry.path().c_str(), &st) != 0) continue;
        if (is_hex64(name)) {
            if (reached.count("sha256:" + name) || age_seconds(st) < min_age) {
                ++result.kept_blobs;
                continue;
            }
            if (remove(entry.path(), st)) result.removed_blobs.push_back("sha256:" + name);
        } else if (name.front() == '.' && age_seconds(st) >= min_age) {
            // A temp file of put_blob's atomic write whose writer died.
            if (remove(entry.path(), st)) result.removed_temp_files.push_back(entry.path());
        }
    }
    if (ec) fail_errno(ec.value(), "cannot list " + blobs.string());
    if (!options.dry_run) io::sync_directory(blobs);

    const auto tmp = tmp_dir(root_);
    for (const auto& entry : fs::directory_iterator(tmp, ec)) {
        const auto name = entry.path().filename().string();
        struct stat st {};
        if (::lstat(entry.path().c_str(), &st) != 0 || age_seconds(st) < min_age) continue;
        constexpr std::string_view suffix = ".partial";
        auto hex = name.size() == 64 + suffix.size() ? name.substr(0, 64) : std::string();
        if (is_hex64(hex) && name.substr(64) == suffix) {
            // A partial whose blob lock is free belongs to no live writer.
            auto lock_path = locks_dir(root_) / (hex + ".lock");
            auto lock = try_lock_blob(lock_path);
            if (!lock) continue;
            if (remove(entry.path(), st)) result.removed_temp_files.push_back(entry.path());
            unlock_blob(lock, lock_path);
        } else if (remove(entry.path(), st)) {
            result.removed_temp_files.push_back(entry.path());
        }
    }
    if (ec) fail_errno(ec.value(), "cannot list " + tmp.string());

    // Lock files left by a holder that died (its flock went with it, the file stayed). Taking and
    // releasing the lock is the normal protocol: it unlinks the file only if nobody holds it.
    const auto locks = locks_dir(root_);
    for (const auto& entry : fs::directory_iterator(locks, ec)) {
        auto lock = try_lock_blob(entry.path());
        if (lock && !options.dry_run) unlock_blob(lock, entry.path());
    }
    return result;
}

store_usage oci_store::usage() const {
    store_usage u;
    std::map<std::string, std::uint64_t> sizes;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(blobs_dir(root_), ec)) {
        const auto name = entry.path().filename().string();
        struct stat st {};
        if (!is_hex64(name) || ::lstat(entry.path().c_str(), &st) != 0) continue;
        sizes["sha256:" + name] = static_cast<std::uint64_t>(st.st_size);
        u.blob_bytes += static_cast<std::uint64_t>(st.st_size);
        ++u.blob_count;
    }
    if (ec) fail_errno(ec.value(), "cannot list " + blobs_dir(root_).string());
    for (const auto& entry : fs::directory_iterator(tmp_dir(root_), ec)) {
        struct stat st {};
        if (::lstat(entry.path().c_str(), &st) == 0) u.temp_bytes += static_cast<std::uint64_t>(st.st_size);
    }
    std::set<std::string> all_reached;
    for (auto& image : list_images()) {
        std::set<std::string> reached;
        walk_references(*this, image.digest, reached);
        image_usage iu;
        for (const auto& d : reached) {
            auto it = sizes.find(d);
            if (it == sizes.end()) {
                iu.missing.push_back(d);
                continue;
            }
            iu.bytes += it->second;
            ++iu.blobs;
            if (all_reached.insert(d).second) u.referenced_bytes += it->second;
        }
        iu.image = std::move(image);
        u.images.push_back(std::move(iu));
    }
    return u;
}

}  // namespace vmrt::image
