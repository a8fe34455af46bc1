// The temporary file a download writes into: created beside its final path (same filesystem,
// so the final rename is atomic) under a name no other download uses, removed by its destructor
// unless committed. Committing is fchmod → fsync → rename → fsync of the directory, so that after
// a crash the final path holds either nothing (or its old file) or the complete new one.
#pragma once

#include <cstdint>
#include <filesystem>

namespace vmrt::io::detail {

class partial_file {
public:
    /// Creates ".<name>.partial.<pid>.<random>" next to `final_path` (mode 0600 until commit).
    /// Throws boost::system::system_error naming the directory if it cannot.
    explicit partial_file(const std::filesystem::path& final_path);
    partial_file(const partial_file&) = delete;
    partial_file& operator=(const partial_file&) = delete;
    ~partial_file();

    const std::filesystem::path& path() const noexcept { return path_; }
    std::uint64_t size() const noexcept { return size_; }

    void write(const void* data, std::size_t size);
    /// Empties the file (the server restarted the body from byte 0).
    void truncate();
    /// Makes the file durable with `perms` and renames it to `final_path`.
    void commit(const std::filesystem::path& final_path, std::filesystem::perms perms);

private:
    std::filesystem::path path_;
    int fd_ = -1;
    std::uint64_t size_ = 0;
    bool committed_ = false;
};

}  // namespace vmrt::io::detail
