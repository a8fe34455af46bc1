// Streaming SHA-256 (OpenSSL EVP) for content that is never held in memory whole: downloads are
// hashed chunk by chunk as they are written, cached files are re-checked by reading them.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

namespace vmrt::io {

class sha256 {
public:
    sha256();
    sha256(sha256&&) noexcept;
    sha256& operator=(sha256&&) noexcept;
    ~sha256();

    void update(const void* data, std::size_t size);
    void update(std::string_view data) { update(data.data(), data.size()); }
    /// The digest of everything fed since construction or reset(), as 64 lowercase hex digits.
    /// The state is unchanged: more data may follow (the digest of a prefix).
    std::string hex_digest() const;
    /// Starts over with no data.
    void reset();

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

/// True for exactly 64 hex digits (either case).
bool is_sha256_hex(std::string_view text) noexcept;

/// Lowercases a hex digest (callers compare digests in lowercase).
std::string normalize_hex(std::string_view text);

/// Hashes a whole file by reading it in chunks. Throws boost::system::system_error if it cannot
/// be read.
std::string sha256_of_file(const std::filesystem::path& file);

/// The SHA-256 of `data`, as 64 lowercase hex digits.
std::string sha256_hex(std::string_view data);

}  // namespace vmrt::io
