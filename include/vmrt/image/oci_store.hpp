// The content-addressed store that OCI pulls write into.
//
// Layout under the root directory:
//   store.json                       {"format":"vmrt-oci-store","version":1}: refused if another version
//   blobs/sha256/<hex>               every blob (layers, configs, manifests, indexes), by digest, mode 0444
//   refs/<registry>/<repository>/:<tag>
//                                    a tag: one line "sha256:<hex>" naming its manifest (or index). The
//                                    ':' keeps a tag file apart from a repository component of the same
//                                    name (repository "a/b" tag "c" vs repository "a/b/c"): no component
//                                    of a repository name may contain ':' (distribution spec grammar)
//   tmp/<hex>.partial                the download in progress of blob <hex> (see "writing")
//   locks/<hex>.lock                 the lock of blob <hex>, present only while someone holds or awaits it
//   quarantine/<hex>.<time>          corrupt blobs moved aside by verify (verify_action::quarantine)
//
// Writing a blob (the puller's path):
//   auto w = co_await store.begin_blob("sha256:…", size);   // waits for the blob's lock
//   if (w.already_present()) → nothing to download.
//   else: request bytes from w.offset() (non-zero when an earlier, interrupted attempt left a
//   partial file), w.write(chunk)… , w.commit() → the blob is in blobs/.
// One writer per blob at a time, across threads and processes: begin_blob takes an exclusive
// flock(2) on locks/<hex>.lock and holds it until commit or destruction. The partial file is
// therefore named by digest alone (tmp/<hex>.partial) without ever being shared: whoever holds the
// lock owns it, and a later holder (this process or another, after a crash or a SIGKILL — the
// kernel drops flocks of dead processes) resumes it: its bytes are re-hashed and writing goes on
// at its end. A second pull of the same blob waits for the first and then finds the blob present.
//
// Lock wait: begin_blob polls flock(LOCK_EX | LOCK_NB) on a steady_timer (5 ms, backing off to
// 100 ms). Chosen over a blocking flock on a helper thread because that thread cannot be
// interrupted: a cancelled wait would leave a thread that later acquires a lock nobody wants.
// inotify cannot see flock releases. The polling cost (≤ 100 ms latency after a release) is nothing
// next to a blob download, and the wait is cancellation-safe (boost::asio cancellation of the
// awaiting coroutine ends it with operation_aborted and leaves nothing held).
// Lock files are unlinked by their holder before it releases; a waiter that then locks the
// unlinked inode notices (fstat vs stat) and starts over, so two holders can never coexist.
//
// Durability: every file appears by rename of a fully written, fsynced file followed by an fsync
// of its directory (blobs via the partial file, small files via io::write_file_atomically).
//
// Thread safety: an oci_store holds only its root path; its const members may be called from any
// thread concurrently, and several oci_store objects (or processes) may share one root. Cross-writer
// safety comes from the blob locks and atomic renames. A blob_writer belongs to one thread/coroutine.
// File I/O is synchronous on the calling thread (writes hit the page cache; commit's fsync and a
// resume's re-hash of the partial prefix read/flush the whole blob); verify() is chunked and yields
// to the executor between chunks.
//
// Errors: vmrt::error. errc::invalid_spec for a malformed digest or reference (diagnostics.field
// names it), errc::unsupported for a digest algorithm other than sha256 or an unknown store
// version, errc::not_found for a missing blob, errc::digest_mismatch (expected and actual digest
// in the message), errc::incomplete_body for a blob shorter than its descriptor, errc::protocol_error
// for more bytes than the descriptor announced or a tag file that does not hold a digest, and system
// errors (errno) for the file system.
#pragma once

#include <vmrt/error.hpp>
#include <vmrt/io/sha256.hpp>
#include <vmrt/io/unique_fd.hpp>

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vmrt::image {

/// True for "sha256:" followed by exactly 64 lowercase hex digits.
bool is_sha256_digest(std::string_view digest) noexcept;

/// A tag as the store keeps it. The puller fills it from its parsed reference (already
/// normalised: "registry-1.docker.io", "library/debian", "bookworm").
struct tag_ref {
    std::string registry;    ///< host[:port]
    std::string repository;  ///< path components separated by '/'
    std::string tag;
    friend bool operator==(const tag_ref&, const tag_ref&) = default;
};

/// "registry/repository:tag", for messages and listings.
std::string to_string(const tag_ref& ref);

class oci_store;

/// One blob being written. Move-only; destroying it without commit() releases the lock and keeps
/// the partial file for a later resume if it is resumable (no write failed, nothing beyond the
/// expected size), removes it otherwise.
class blob_writer {
public:
    blob_writer() = default;
    blob_writer(blob_writer&&) noexcept;
    blob_writer& operator=(blob_writer&&) noexcept;
    ~blob_writer();

    /// The store already has the blob: nothing to write, commit() is a no-op.
    bool already_present() const noexcept { return present_; }
    const std::string& digest() const noexcept { return digest_; }
    std::uint64_t expected_size() const noexcept { return expected_size_; }
    /// Bytes in the partial file: where the download (re)starts (Range: bytes=offset-).
    std::uint64_t offset() const noexcept { return offset_; }
    /// True if the partial file was left by an earlier attempt (offset() > 0 at begin).
    bool resumed() const noexcept { return resumed_; }
    /// Path of the partial file (empty when already_present()).
    const std::filesystem::path& partial_path() const noexcept { return partial_; }

    /// Appends to the partial file and the running hash. errc::protocol_error (and the partial is
    /// removed) if this would exceed expected_size().
    void write(const void* data, std::size_t size);
    void write(std::string_view data) { write(data.data(), data.size()); }
    /// Empties the partial file (the server ignored the Range and sends from byte 0).
    void restart();
    /// Checks size and digest, makes the file durable (fsync), renames it to blobs/ and fsyncs the
    /// directory, then releases the lock. Returns the blob's path. On a size or digest error the
    /// partial file is removed (its content is wrong, resuming it would fail again) and nothing
    /// appears in blobs/.
    std::filesystem::path commit();
    /// Removes the partial file and releases the lock now.
    void discard() noexcept;

private:
    friend class oci_store;
    void release() noexcept;  // closes the partial and releases the lock (keeping the file)

    std::string digest_;
    std::uint64_t expected_size_ = 0;
    std::uint64_t offset_ = 0;
    bool present_ = false;
    bool resumed_ = false;
    bool broken_ = false;  // a write failed or overflowed: not resumable
    std::filesystem::path partial_;
    std::filesystem::path final_;
    io::unique_fd file_;
    io::unique_fd lock_;  // flock held on locks/<hex>.lock
    std::filesystem::path lock_path_;
    io::sha256 hash_;
};

struct image_entry {
    tag_ref ref;
    std::string digest;  ///< the manifest or index the tag names
};

enum class verify_action {
    report,      ///< only report corrupt blobs
    quarantine,  ///< move them to quarantine/ (out of blobs/, kept for inspection)
    remove,      ///< delete them
};

struct verify_result {
    std::string digest;
    bool ok = false;
    std::string actual;   ///< "sha256:<hex>" of the content found
    std::string problem;  ///< empty if ok; otherwise what is wrong ("content hashes to …")
};

struct verify_report {
    std::uint64_t blobs_checked = 0;
    std::uint64_t bytes_checked = 0;
    std::vector<verify_result> corrupt;
};

struct gc_options {
    /// Digests kept (with everything they reference) besides those reachable from tags: an image
    /// being pulled whose tag is not written yet, pinned images.
    std::vector<std::string> keep_roots;
    /// Unreferenced blobs and stale temp files younger than this are kept: a concurrent pull
    /// writes its blobs before its tag. begin_blob refreshes the mtime of a blob it reports present.
    std::chrono::seconds min_age = std::chrono::minutes(60);
    /// Only report what would be removed.
    bool dry_run = false;
};

struct gc_result {
    std::uint64_t bytes_freed = 0;
    std::vector<std::string> removed_blobs;  ///< digests
    std::vector<std::filesystem::path> removed_temp_files;
    std::uint64_t kept_blobs = 0;
};

struct image_usage {
    image_entry image;
    std::uint64_t bytes = 0;  ///< sum of the distinct blobs reachable from the tag that are present
    std::uint64_t blobs = 0;
    std::vector<std::string> missing;  ///< referenced but absent (a partial pull, or gc'd by hand)
};

struct store_usage {
    std::uint64_t blob_bytes = 0;  ///< all blobs in blobs/, referenced or not
    std::uint64_t blob_count = 0;
    std::uint64_t referenced_bytes = 0;  ///< distinct blobs reachable from any tag: a shared layer once
    std::uint64_t temp_bytes = 0;        ///< partial downloads in tmp/
    std::vector<image_usage> images;     ///< per tag; a layer shared by two images counts in both
};

class oci_store {
public:
    /// Opens the store at `root`, creating the layout (and store.json) if absent.
    /// errc::unsupported if store.json names another format or version.
    explicit oci_store(std::filesystem::path root);

    const std::filesystem::path& root() const noexcept { return root_; }

    // --- blobs -----------------------------------------------------------------------------
    /// Where blob `digest` lives (whether or not it exists). invalid_spec for a malformed digest.
    std::filesystem::path blob_path(std::string_view digest) const;
    bool has_blob(std::string_view digest) const;
    /// Size of a present blob; not_found otherwise.
    std::uint64_t blob_size(std::string_view digest) const;
    /// A read-only descriptor of the blob; errc::not_found if absent.
    io::unique_fd open_blob(std::string_view digest) const;
    /// Reads a whole blob of at most `max_bytes` (manifests, configs) and checks its digest.
    /// errc::not_found, errc::protocol_error if it is larger, errc::digest_mismatch if corrupt.
    std::string read_small_blob(std::string_view digest, std::size_t max_bytes = 4 << 20) const;
    /// Stores a small blob held in memory (a manifest fetched by tag); returns its digest. If
    /// `expected_digest` is given it must match (errc::digest_mismatch otherwise, nothing stored).
    std::string put_blob(std::string_view content, std::string_view expected_digest = {}) const;

    /// Waits for the blob's lock (see the file comment), then: already_present() if the blob is in
    /// the store (its mtime refreshed, for gc's grace period), or a writer positioned at the end of
    /// any partial file an earlier attempt left (re-hashed; discarded if longer than
    /// expected_size). Cancellable while waiting.
    boost::asio::awaitable<blob_writer> begin_blob(std::string digest, std::uint64_t expected_size) const;
    /// Same without waiting: nullopt if another writer holds the blob's lock.
    std::optional<blob_writer> try_begin_blob(std::string_view digest, std::uint64_t expected_size) const;

    // --- tags ------------------------------------------------------------------------------
    /// Points `ref` at `digest` (atomically replacing any previous target). The blob need not
    /// be present yet, but gc only protects what tags and keep_roots reach.
    void set_tag(const tag_ref& ref, std::string_view digest) const;
    std::optional<std::string> resolve_tag(const tag_ref& ref) const;
    /// True if the tag existed.
    bool remove_tag(const tag_ref& ref) const;
    /// Every tag, sorted by registry, repository, tag.
    std::vector<image_entry> list_images() const;

    // --- maintenance -----------------------------------------------------------------------
    /// Re-hashes one blob (chunked, yielding between chunks). not_found if absent.
    boost::asio::awaitable<verify_result> verify(std::string digest,
                                                 verify_action action = verify_action::report) const;
    /// Re-hashes every blob.
    boost::asio::awaitable<verify_report> verify_all(verify_action action = verify_action::report) const;

    /// Removes blobs that no tag (nor options.keep_roots) reaches through index → manifest →
    /// config + layers, and stale partial files (older than min_age and not locked). Walking reads
    /// only the "digest" of "config", "layers[]" and "manifests[]"; a root or index that is absent
    /// or not JSON simply references nothing more. gc takes no store-wide lock: a concurrent pull is
    /// protected by min_age (its new blobs are young, and begin_blob/put_blob refresh the mtime of
    /// a blob they report present), so min_age = 0 is only safe when no pull is running.
    gc_result gc(const gc_options& options = {}) const;

    store_usage usage() const;

private:
    std::filesystem::path root_;
};

}  // namespace vmrt::image
