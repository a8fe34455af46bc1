// A classic pcap capture file (LINKTYPE_ETHERNET, microsecond timestamps), written as frames
// cross a port so that tcpdump or Wireshark can show what the switch saw. Buffered: records
// reach the file at flush() and on destruction.
#pragma once

#include <vmrt/io/unique_fd.hpp>

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <span>
#include <vector>

namespace vmrt::net {

class pcap_writer {
public:
    /// Creates (or truncates) `file` and writes the global header; `snaplen` is the largest frame
    /// recorded. Throws vmrt::error with the system error if the file cannot be created.
    pcap_writer(const std::filesystem::path& file, std::size_t snaplen);
    pcap_writer(const pcap_writer&) = delete;
    pcap_writer& operator=(const pcap_writer&) = delete;
    ~pcap_writer();

    void record(std::span<const std::byte> frame, std::chrono::system_clock::time_point when);
    /// Writes the buffered records to the file (errors are ignored: capture is for debugging).
    void flush() noexcept;

private:
    void append(const void* data, std::size_t len);

    io::unique_fd fd_;
    std::vector<std::byte> buf_;
};

}  // namespace vmrt::net
