#include "net/pcap_writer.hpp"

#include <vmrt/error.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

namespace vmrt::net {

namespace {

constexpr std::size_t flush_threshold = 256 * 1024;

// The pcap global header, in the host's byte order (readers detect it from the magic number).
struct file_header {
    std::uint32_t magic = 0xa1b2c3d4;  // microsecond timestamps
    std::uint16_t version_major = 2, version_minor = 4;
    std::int32_t thiszone = 0;
    std::uint32_t sigfigs = 0;
    std::uint32_t snaplen = 0;
    std::uint32_t linktype = 1;  // LINKTYPE_ETHERNET
};
static_assert(sizeof(file_header) == 24);

struct record_header {
    std::uint32_t ts_sec, ts_usec, incl_len, orig_len;
};

}  // namespace

pcap_writer::pcap_writer(const std::filesystem::path& file, std::size_t snaplen)
    : fd_(::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) {
    if (!fd_)
        throw error(
            error_code(errno, boost::system::system_category()),
            {.message = "cannot create the pcap file " + file.string() + ": " + std::strerror(errno)});
    file_header h;
    h.snaplen = static_cast<std::uint32_t>(snaplen);
    append(&h, sizeof h);
    flush();
}

pcap_writer::~pcap_writer() { flush(); }

void pcap_writer::append(const void* data, std::size_t len) {
    auto p = static_cast<const std::byte*>(data);
    buf_.insert(buf_.end(), p, p + len);
}

void pcap_writer::record(std::span<const std::byte> frame, std::chrono::system_clock::time_point when) {
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(when.time_since_epoch()).count();
    record_header h{static_cast<std::uint32_t>(us / 1000000), static_cast<std::uint32_t>(us % 1000000),
                    static_cast<std::uint32_t>(frame.size()), static_cast<std::uint32_t>(frame.size())};
    append(&h, sizeof h);
    append(frame.data(), frame.size());
    if (buf_.size() >= flush_threshold) flush();
}

void pcap_writer::flush() noexcept {
    std::size_t done = 0;
    while (done < buf_.size()) {
        ssize_t n = ::write(fd_.get(), buf_.data() + done, buf_.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        done += static_cast<std::size_t>(n);
    }
    buf_.clear();
}

}  // namespace vmrt::net
