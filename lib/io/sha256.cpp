#include <vmrt/error.hpp>
#include <vmrt/io/sha256.hpp>

#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <stdexcept>
#include <vector>

namespace vmrt::io {

struct sha256::impl {
    EVP_MD_CTX* ctx = nullptr;
    impl() : ctx(EVP_MD_CTX_new()) {
        if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr) != 1)
            throw std::runtime_error("OpenSSL: cannot initialise SHA-256");
    }
    ~impl() { EVP_MD_CTX_free(ctx); }
    impl(const impl&) = delete;
    impl& operator=(const impl&) = delete;
};

sha256::sha256() : impl_(std::make_unique<impl>()) {}
sha256::sha256(sha256&&) noexcept = default;
sha256& sha256::operator=(sha256&&) noexcept = default;
sha256::~sha256() = default;

void sha256::update(const void* data, std::size_t size) {
    if (size != 0 && EVP_DigestUpdate(impl_->ctx, data, size) != 1)
        throw std::runtime_error("OpenSSL: SHA-256 update failed");
}

std::string sha256::hex_digest() const {
    // Finalise a copy so that the running state can go on (digest of a prefix, then more data).
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> copy(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
    unsigned length = 0;
    if (!copy || EVP_MD_CTX_copy_ex(copy.get(), impl_->ctx) != 1 ||
        EVP_DigestFinal_ex(copy.get(), digest.data(), &length) != 1)
        throw std::runtime_error("OpenSSL: SHA-256 final failed");
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(length * 2);
    for (unsigned i = 0; i < length; ++i) {
        out += hex[digest[i] >> 4];
        out += hex[digest[i] & 0xf];
    }
    return out;
}

void sha256::reset() {
    if (EVP_DigestInit_ex(impl_->ctx, EVP_sha256(), nullptr) != 1)
        throw std::runtime_error("OpenSSL: cannot initialise SHA-256");
}

bool is_sha256_hex(std::string_view text) noexcept {
    if (text.size() != 64) return false;
    for (char c : text)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) return false;
    return true;
}

std::string normalize_hex(std::string_view text) {
    std::string out(text);
    for (char& c : out)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return out;
}

std::string sha256_of_file(const std::filesystem::path& file) {
    int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        throw boost::system::system_error({errno, boost::system::system_category()}, "open " + file.string());
    sha256 hash;
    std::vector<char> buffer(256 * 1024);
    for (;;) {
        ssize_t n = ::read(fd, buffer.data(), buffer.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            int e = errno;
            ::close(fd);
            throw boost::system::system_error({e, boost::system::system_category()}, "read " + file.string());
        }
        if (n == 0) break;
        hash.update(buffer.data(), static_cast<std::size_t>(n));
    }
    ::close(fd);
    return hash.hex_digest();
}

std::string sha256_hex(std::string_view data) {
    sha256 h;
    h.update(data);
    return h.hex_digest();
}

}  // namespace vmrt::io
