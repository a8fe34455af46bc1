// The OCI store: layout, reading blobs, small blobs put whole, tags.
#include "image/oci_store_detail.hpp"

#include <vmrt/image/oci_store.hpp>
#include <vmrt/io/atomic_file.hpp>

#include <boost/json.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <sstream>
#include <system_error>

namespace vmrt::image {
namespace fs = std::filesystem;
using namespace store_detail;

namespace store_detail {

std::string sanitize(std::string_view text, std::size_t max) {
    std::string out;
    for (char c : text.substr(0, max)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
    if (text.size() > max) out += "...";
    return out;
}

void fail(errc code, std::string message, std::string field) {
    diagnostics d;
    d.message = std::move(message);
    d.field = std::move(field);
    throw error(make_error_code(code), std::move(d));
}

void fail_errno(int err, const std::string& what) {
    diagnostics d;
    d.message = what + ": " + std::system_category().message(err);
    throw error(error_code(err, boost::system::system_category()), std::move(d));
}

std::string hex_of(std::string_view digest, std::string_view what) {
    auto colon = digest.find(':');
    if (colon != std::string_view::npos && digest.substr(0, colon) != "sha256" && colon > 0 &&
        std::all_of(digest.begin(), digest.begin() + static_cast<std::ptrdiff_t>(colon),
                    [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }))
        fail(errc::unsupported, "unsupported digest algorithm in " + sanitize(digest) + " (only sha256)",
             std::string(what));
    if (!is_sha256_digest(digest))
        fail(errc::invalid_spec,
             "malformed " + std::string(what) + " '" + sanitize(digest) +
                 "' (want sha256: and 64 lowercase hex digits)",
             std::string(what));
    return std::string(digest.substr(sha256_prefix.size()));
}

namespace {

bool is_lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool is_alnum(char c) { return is_lower_alnum(c) || (c >= 'A' && c <= 'Z'); }

// Distribution spec: [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)* — checked loosely (separators anywhere
// inside), which is enough to keep '/', '..', '.' and ':' out of the path.
bool valid_repository_component(std::string_view c) {
    if (c.empty() || !is_lower_alnum(c.front()) || !is_lower_alnum(c.back())) return false;
    return std::all_of(c.begin(), c.end(),
                       [](char ch) { return is_lower_alnum(ch) || ch == '.' || ch == '_' || ch == '-'; });
}

}  // namespace

void validate(const tag_ref& ref) {
    const auto& r = ref.registry;
    bool registry_ok =
        !r.empty() && r.size() <= 255 && is_alnum(r.front()) &&
        std::all_of(r.begin(), r.end(),
                    [](char c) { return is_alnum(c) || c == '.' || c == '-' || c == ':' || c == '_'; }) &&
        r.find("..") == std::string::npos;
    if (!registry_ok) fail(errc::invalid_spec, "malformed registry '" + sanitize(r) + "'", "registry");
    const auto& repo = ref.repository;
    bool repo_ok = !repo.empty() && repo.size() <= 255;
    for (std::size_t start = 0; repo_ok;) {
        auto slash = repo.find('/', start);
        auto part = std::string_view(repo).substr(start, slash == std::string::npos ? slash : slash - start);
        repo_ok = valid_repository_component(part);
        if (slash == std::string::npos) break;
        start = slash + 1;
    }
    if (!repo_ok) fail(errc::invalid_spec, "malformed repository '" + sanitize(repo) + "'", "repository");
    const auto& t = ref.tag;
    bool tag_ok = !t.empty() && t.size() <= 128 && (is_alnum(t.front()) || t.front() == '_') &&
                  std::all_of(t.begin(), t.end(),
                              [](char c) { return is_alnum(c) || c == '_' || c == '.' || c == '-'; });
    if (!tag_ok) fail(errc::invalid_spec, "malformed tag '" + sanitize(t) + "'", "tag");
}

}  // namespace store_detail

bool is_sha256_digest(std::string_view digest) noexcept {
    if (digest.size() != sha256_prefix.size() + 64 || digest.substr(0, sha256_prefix.size()) != sha256_prefix)
        return false;
    auto hex = digest.substr(sha256_prefix.size());
    return std::all_of(hex.begin(), hex.end(),
                       [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

std::string to_string(const tag_ref& ref) { return ref.registry + "/" + ref.repository + ":" + ref.tag; }

namespace {

constexpr std::string_view store_format = "vmrt-oci-store";
constexpr std::int64_t store_version = 1;

void create_dir(const fs::path& dir) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) fail_errno(ec.value(), "cannot create " + dir.string());
}

std::string read_whole(const fs::path& file) {
    std::ifstream in(file, std::ios::binary);
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

fs::path tag_path(const fs::path& root, const tag_ref& ref) {
    validate(ref);
    return refs_dir(root) / ref.registry / ref.repository / (":" + ref.tag);
}

}  // namespace

oci_store::oci_store(fs::path root) : root_(std::move(root)) {
    for (const auto& dir : {blobs_dir(root_), tmp_dir(root_), locks_dir(root_), refs_dir(root_)})
        create_dir(dir);
    const auto marker = root_ / "store.json";
    if (!fs::exists(marker)) {
        boost::json::object o{{"format", store_format}, {"version", store_version}};
        error_code ec;
        io::write_file_atomically(marker, boost::json::serialize(o) + "\n",
                                  fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read |
                                      fs::perms::others_read,
                                  ec);
        if (ec) fail_errno(ec.value(), "cannot write " + marker.string());
        return;
    }
    boost::system::error_code jec;
    auto text = read_whole(marker);
    auto value = boost::json::parse(text, jec);
    const auto* o = jec ? nullptr : value.if_object();
    const auto* format = o ? o->if_contains("format") : nullptr;
    const auto* version = o ? o->if_contains("version") : nullptr;
    if (!format || !format->is_string() || format->get_string() != store_format || !version ||
        !version->is_int64() || version->get_int64() != store_version)
        fail(errc::unsupported, marker.string() + " is not a version " + std::to_string(store_version) +
                                    " vmrt OCI store (" + sanitize(text) + ")");
}

fs::path oci_store::blob_path(std::string_view digest) const { return blobs_dir(root_) / hex_of(digest); }

bool oci_store::has_blob(std::string_view digest) const {
    struct stat st {};
    return ::stat(blob_path(digest).c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::uint64_t oci_store::blob_size(std::string_view digest) const {
    struct stat st {};
    auto path = blob_path(digest);
    if (::stat(path.c_str(), &st) != 0) {
        if (errno == ENOENT) fail(errc::not_found, "blob " + std::string(digest) + " is not in the store");
        fail_errno(errno, "stat " + path.string());
    }
    return static_cast<std::uint64_t>(st.st_size);
}

io::unique_fd oci_store::open_blob(std::string_view digest) const {
    auto path = blob_path(digest);
    io::unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
        if (errno == ENOENT) fail(errc::not_found, "blob " + std::string(digest) + " is not in the store");
        fail_errno(errno, "open " + path.string());
    }
    return fd;
}

std::string oci_store::read_small_blob(std::string_view digest, std::size_t max_bytes) const {
    auto fd = open_blob(digest);
    std::string data;
    char buf[64 * 1024];
    for (;;) {
        ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) fail_errno(errno, "read " + blob_path(digest).string());
        if (n == 0) break;
        if (data.size() + static_cast<std::size_t>(n) > max_bytes)
            fail(errc::protocol_error,
                 "blob " + std::string(digest) + " is larger than " + std::to_string(max_bytes) + " bytes");
        data.append(buf, static_cast<std::size_t>(n));
    }
    auto actual = "sha256:" + io::sha256_hex(data);
    if (actual != digest)
        fail(errc::digest_mismatch,
             "blob " + std::string(digest) + " is corrupt in the store: its content hashes to " + actual);
    return data;
}

std::string oci_store::put_blob(std::string_view content, std::string_view expected_digest) const {
    auto actual = "sha256:" + io::sha256_hex(content);
    if (!expected_digest.empty()) {
        hex_of(expected_digest, "expected digest");
        if (actual != expected_digest)
            fail(errc::digest_mismatch, "content does not match its digest: expected " +
                                            std::string(expected_digest) + ", got " + actual);
    }
    auto path = blob_path(actual);
    if (::access(path.c_str(), F_OK) == 0) {
        ::utimensat(AT_FDCWD, path.c_str(), nullptr, 0);  // gc grace period starts again
        return actual;
    }
    // Identical content under identical names: concurrent puts of the same blob are harmless
    // (each rename installs the same bytes).
    error_code ec;
    io::write_file_atomically(path, content,
                              fs::perms::owner_read | fs::perms::group_read | fs::perms::others_read, ec);
    if (ec) fail_errno(ec.value(), "cannot store blob " + actual);
    return actual;
}

void oci_store::set_tag(const tag_ref& ref, std::string_view digest) const {
    hex_of(digest);
    auto path = tag_path(root_, ref);
    create_dir(path.parent_path());
    error_code ec;
    io::write_file_atomically(
        path, std::string(digest) + "\n",
        fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read | fs::perms::others_read, ec);
    if (ec) fail_errno(ec.value(), "cannot write tag " + to_string(ref));
}

std::optional<std::string> oci_store::resolve_tag(const tag_ref& ref) const {
    auto path = tag_path(root_, ref);
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        if (errno == ENOENT || !fs::exists(path)) return std::nullopt;
        fail_errno(errno, "cannot read tag " + to_string(ref));
    }
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
    if (!is_sha256_digest(text))
        fail(errc::protocol_error,
             "tag file " + path.string() + " does not hold a digest: '" + sanitize(text) + "'");
    return text;
}

bool oci_store::remove_tag(const tag_ref& ref) const {
    auto path = tag_path(root_, ref);
    if (::unlink(path.c_str()) != 0) {
        if (errno == ENOENT) return false;
        fail_errno(errno, "cannot remove tag " + to_string(ref));
    }
    if (auto ec = io::sync_directory(path.parent_path()))
        fail_errno(ec.value(), "fsync " + path.parent_path().string());
    // Empty repository directories are left: removing them would race with a concurrent set_tag
    // creating a sibling.
    return true;
}

std::vector<image_entry> oci_store::list_images() const {
    std::vector<image_entry> out;
    const auto refs = refs_dir(root_);
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(refs, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
        auto name = it->path().filename().string();
        if (name.size() < 2 || name.front() != ':' || !it->is_regular_file()) continue;
        auto rel = it->path().parent_path().lexically_relative(refs);
        auto first = rel.begin();
        if (first == rel.end()) continue;
        tag_ref ref;
        ref.registry = first->string();
        for (auto p = std::next(first); p != rel.end(); ++p)
            ref.repository += (ref.repository.empty() ? "" : "/") + p->string();
        ref.tag = name.substr(1);
        try {
            validate(ref);
            if (auto digest = resolve_tag(ref)) out.push_back({std::move(ref), std::move(*digest)});
        } catch (const error&) {
            // A stray file under refs/ is not an image; list_images never fails because of one.
        }
    }
    if (ec) fail_errno(ec.value(), "cannot list " + refs.string());
    std::sort(out.begin(), out.end(), [](const image_entry& a, const image_entry& b) {
        return std::tie(a.ref.registry, a.ref.repository, a.ref.tag) <
               std::tie(b.ref.registry, b.ref.repository, b.ref.tag);
    });
    return out;
}

}  // namespace vmrt::image
