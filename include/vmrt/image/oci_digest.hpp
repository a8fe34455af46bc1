// Content digests as OCI uses them ("sha256:<64 lowercase hex>"): validated, computed and
// checked. Only sha256 is supported; other well-formed algorithms (sha512, blake3...) are
// recognised and refused with errc::unsupported, malformed digests with errc::invalid_spec.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace vmrt::image {

/// Throws vmrt::error unless `digest` is "sha256:" followed by 64 lowercase hex digits:
/// errc::unsupported for a well-formed digest of another algorithm (OCI grammar
/// `[a-z0-9]+([+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+`), errc::invalid_spec otherwise. `what` names the
/// digest in the message ("the digest of layer 2").
void check_digest(std::string_view digest, std::string_view what = "digest");

/// True for a digest check_digest accepts.
bool is_supported_digest(std::string_view digest) noexcept;

/// "sha256:<hex>" of `bytes`.
std::string digest_of(std::string_view bytes);

/// Throws vmrt::error(errc::digest_mismatch) naming both digests unless `bytes` (the exact bytes
/// received, never a re-serialisation) hash to `expected`; check_digest's errors for a malformed
/// or unsupported `expected`.
void verify_digest(std::string_view bytes, std::string_view expected);

}  // namespace vmrt::image
