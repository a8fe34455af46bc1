// Digest validation and verification for OCI content (manifests, configs, blobs).
#include "image/oci_text.hpp"

#include <vmrt/image/oci_digest.hpp>
#include <vmrt/io/sha256.hpp>

namespace vmrt::image {

namespace {

bool is_lower_hex(std::string_view text) noexcept {
    for (char c : text)
        if (!detail::is_digit(c) && !(c >= 'a' && c <= 'f')) return false;
    return true;
}

/// The OCI image-spec digest grammar (descriptor.md), any algorithm.
bool well_formed(std::string_view digest) noexcept {
    const auto colon = digest.find(':');
    if (colon == std::string_view::npos || colon == 0 || colon + 1 == digest.size()) return false;
    const auto algorithm = digest.substr(0, colon);
    bool need_component = true;
    for (char c : algorithm) {
        if (detail::is_lower_alnum(c)) {
            need_component = false;
        } else if (c == '+' || c == '.' || c == '_' || c == '-') {
            if (need_component) return false;
            need_component = true;
        } else {
            return false;
        }
    }
    if (need_component) return false;
    for (char c : digest.substr(colon + 1))
        if (!detail::is_alnum(c) && c != '=' && c != '_' && c != '-') return false;
    return true;
}

}  // namespace

bool is_supported_digest(std::string_view digest) noexcept {
    return digest.size() == 71 && digest.starts_with("sha256:") && is_lower_hex(digest.substr(7));
}

void check_digest(std::string_view digest, std::string_view what) {
    if (is_supported_digest(digest)) return;
    const std::string prefix = std::string(what) + " " + detail::quoted(digest);
    if (digest.starts_with("sha256:"))
        detail::fail(errc::invalid_spec,
                     prefix + " is not a sha256 digest: it needs exactly 64 lowercase hex digits");
    if (!well_formed(digest))
        detail::fail(errc::invalid_spec, prefix + " is not a digest (expected sha256:<64 hex digits>)");
    detail::fail(errc::unsupported, prefix + " uses the algorithm " +
                                        detail::quoted(digest.substr(0, digest.find(':'))) +
                                        "; only sha256 is supported");
}

std::string digest_of(std::string_view bytes) { return "sha256:" + io::sha256_hex(bytes); }

void verify_digest(std::string_view bytes, std::string_view expected) {
    check_digest(expected, "expected digest");
    const std::string actual = digest_of(bytes);
    if (actual != expected)
        detail::fail(errc::digest_mismatch, "content of " + std::to_string(bytes.size()) +
                                                " bytes has digest " + actual + ", expected " +
                                                std::string(expected));
}

}  // namespace vmrt::image
