#include "support/sparse_files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace vmrt::test {

namespace fs = std::filesystem;

namespace {

[[noreturn]] void io_failure(const std::string& what, const fs::path& file) {
    throw std::runtime_error(what + " " + file.string() + ": " + std::strerror(errno));
}

class fd_holder {
public:
    fd_holder(const fs::path& file, int flags, unsigned mode = 0)
        : fd_(::open(file.c_str(), flags | O_CLOEXEC, mode)) {
        if (fd_ < 0) io_failure("cannot open", file);
    }
    fd_holder(const fd_holder&) = delete;
    fd_holder& operator=(const fd_holder&) = delete;
    ~fd_holder() { ::close(fd_); }
    int get() const { return fd_; }

private:
    int fd_;
};

void pwrite_all(int fd, const std::vector<unsigned char>& data, std::uint64_t offset, const fs::path& file) {
    std::size_t done = 0;
    while (done < data.size()) {
        auto n = ::pwrite(fd, data.data() + done, data.size() - done, static_cast<off_t>(offset + done));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) io_failure("cannot write", file);
        done += static_cast<std::size_t>(n);
    }
}

std::size_t pread_full(int fd, unsigned char* data, std::size_t size, std::uint64_t offset,
                       const fs::path& file) {
    std::size_t done = 0;
    while (done < size) {
        auto n = ::pread(fd, data + done, size - done, static_cast<off_t>(offset + done));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) io_failure("cannot read", file);
        if (n == 0) break;
        done += static_cast<std::size_t>(n);
    }
    return done;
}

}  // namespace

std::vector<byte_range> spread_ranges(std::uint64_t size, std::uint64_t count, std::uint64_t length) {
    std::vector<byte_range> ranges;
    // 64 KiB-aligned, so every range covers whole blocks (FIEMAP counts blocks).
    const std::uint64_t stride = size / (count + 1) / 65536 * 65536;
    if (stride < length) throw std::invalid_argument("spread_ranges: ranges would overlap");
    for (std::uint64_t i = 0; i < count; ++i) ranges.push_back({i * stride, length});
    return ranges;
}

unsigned char pattern_byte(std::uint64_t offset, unsigned seed) {
    // Varies within every block and between blocks, so a misplaced block is caught.
    std::uint64_t x = offset * 0x9E3779B97F4A7C15ULL + seed;
    return static_cast<unsigned char>((x >> 29) ^ (x >> 7) ^ offset);
}

void make_sparse_file(const fs::path& file, std::uint64_t size, const std::vector<byte_range>& ranges,
                      unsigned seed, unsigned mode) {
    fd_holder fd(file, O_WRONLY | O_CREAT | O_TRUNC, mode);
    if (::fchmod(fd.get(), mode) != 0) io_failure("cannot chmod", file);
    if (::ftruncate(fd.get(), static_cast<off_t>(size)) != 0) io_failure("cannot size", file);
    std::vector<unsigned char> chunk;
    for (const auto& r : ranges) {
        for (std::uint64_t done = 0; done < r.length;) {
            const std::uint64_t n = std::min<std::uint64_t>(r.length - done, 1 << 20);
            chunk.resize(n);
            for (std::uint64_t i = 0; i < n; ++i) chunk[i] = pattern_byte(r.offset + done + i, seed);
            pwrite_all(fd.get(), chunk, r.offset + done, file);
            done += n;
        }
    }
    if (::fsync(fd.get()) != 0) io_failure("cannot sync", file);
}

void fill_range(const fs::path& file, std::uint64_t offset, std::uint64_t length, unsigned char value) {
    fd_holder fd(file, O_WRONLY);
    pwrite_all(fd.get(), std::vector<unsigned char>(length, value), offset, file);
    if (::fsync(fd.get()) != 0) io_failure("cannot sync", file);
}

std::optional<std::uint64_t> first_difference(const fs::path& a, const fs::path& b) {
    fd_holder fa(a, O_RDONLY), fb(b, O_RDONLY);
    constexpr std::size_t chunk = 1 << 20;
    std::vector<unsigned char> ba(chunk), bb(chunk);
    for (std::uint64_t offset = 0;; offset += chunk) {
        const auto na = pread_full(fa.get(), ba.data(), chunk, offset, a);
        const auto nb = pread_full(fb.get(), bb.data(), chunk, offset, b);
        const auto n = std::min(na, nb);
        if (std::memcmp(ba.data(), bb.data(), n) != 0) {
            auto [pa, pb] =
                std::mismatch(ba.begin(), ba.begin() + static_cast<std::ptrdiff_t>(n), bb.begin());
            return offset + static_cast<std::uint64_t>(pa - ba.begin());
        }
        if (na != nb) return offset + n;
        if (na < chunk) return std::nullopt;
    }
}

std::uint64_t allocated_bytes(const fs::path& file) {
    struct stat st {};
    if (::stat(file.c_str(), &st) != 0) io_failure("cannot stat", file);
    return static_cast<std::uint64_t>(st.st_blocks) * 512;
}

std::vector<std::string> dir_entries(const fs::path& dir) {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
}

}  // namespace vmrt::test
