// read_file_tail(): the end of a child's log file, for error messages.
#include "io/process_syscalls.hpp"

#include <vmrt/io/process.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace vmrt::io {

std::string read_file_tail(const std::filesystem::path& file, std::size_t max_bytes) {
    error_code ec;
    unique_fd fd = detail::open_cloexec(file.c_str(), O_RDONLY, ec);
    struct stat st {};
    if (!fd || max_bytes == 0 || ::fstat(fd.get(), &st) != 0) return {};
    const auto size = static_cast<std::size_t>(std::max<off_t>(st.st_size, 0));
    auto offset = static_cast<off_t>(size > max_bytes ? size - max_bytes : 0);
    std::string tail(max_bytes, '\0');
    std::size_t got = 0;
    while (got < max_bytes) {
        ssize_t n = ::pread(fd.get(), tail.data() + got, max_bytes - got, offset + static_cast<off_t>(got));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += static_cast<std::size_t>(n);
    }
    tail.resize(got);
    return tail;
}

}  // namespace vmrt::io
