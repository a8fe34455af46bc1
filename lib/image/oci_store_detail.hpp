// Private pieces of the OCI store shared by its source files: digest and reference checks, error
// helpers, the per-blob lock and the reference walk.
#pragma once

#include <vmrt/error.hpp>
#include <vmrt/image/oci_store.hpp>
#include <vmrt/io/unique_fd.hpp>

#include <filesystem>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace vmrt::image::store_detail {

inline constexpr std::string_view sha256_prefix = "sha256:";

/// The 64 hex digits of a "sha256:<hex>" digest; invalid_spec (or unsupported for another
/// algorithm) naming `what` otherwise.
std::string hex_of(std::string_view digest, std::string_view what = "digest");

/// Printable, bounded excerpt of untrusted text for messages.
std::string sanitize(std::string_view text, std::size_t max = 80);

[[noreturn]] void fail(errc code, std::string message, std::string field = {});
[[noreturn]] void fail_errno(int err, const std::string& what);

/// Checks every component of a tag reference (no '/', '..' or other path tricks can pass).
void validate(const tag_ref& ref);

/// Tries to take the exclusive lock locks/<hex>.lock without waiting. Returns an invalid fd if
/// someone else holds it. Handles the unlink race: a lock on a file that has meanwhile been
/// unlinked (or replaced) is dropped and retried.
io::unique_fd try_lock_blob(const std::filesystem::path& lock_path);
/// Unlinks the lock file (still holding it, so no one can be locking that inode and think it
/// current) and closes it.
void unlock_blob(io::unique_fd& lock, const std::filesystem::path& lock_path) noexcept;

/// The digests a manifest or index names: `leaves` from "config" and "layers[]" (never walked
/// further), `children` from "manifests[]" (walked). Only well-formed sha256 digests are returned;
/// text that is not a JSON object names nothing. Never throws on any input (fuzzed).
struct manifest_references {
    std::vector<std::string> leaves;
    std::vector<std::string> children;
};
manifest_references references_of(std::string_view json);

/// Adds to `reached` every digest reachable from `root` (root included) through
/// index.manifests[] → manifest.config / manifest.layers[]. Blobs that are absent or not JSON
/// objects reference nothing further.
void walk_references(const oci_store& store, const std::string& root, std::set<std::string>& reached);

/// Paths of the layout.
inline std::filesystem::path blobs_dir(const std::filesystem::path& root) {
    return root / "blobs" / "sha256";
}
inline std::filesystem::path tmp_dir(const std::filesystem::path& root) { return root / "tmp"; }
inline std::filesystem::path locks_dir(const std::filesystem::path& root) { return root / "locks"; }
inline std::filesystem::path refs_dir(const std::filesystem::path& root) { return root / "refs"; }
inline std::filesystem::path quarantine_dir(const std::filesystem::path& root) { return root / "quarantine"; }

}  // namespace vmrt::image::store_detail
