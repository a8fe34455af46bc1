#include "io/unix_listener.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <cstring>

namespace vmrt::io {

namespace {

error_code last_error() { return {errno, boost::system::system_category()}; }

bool make_address(const std::filesystem::path& path, sockaddr_un& addr) {
    addr = sockaddr_un{};
    addr.sun_family = AF_UNIX;
    if (path.native().empty() || path.native().size() >= sizeof addr.sun_path) return false;
    std::memcpy(addr.sun_path, path.c_str(), path.native().size() + 1);
    return true;
}

}  // namespace

boost::system::result<void> remove_stale_socket(const std::filesystem::path& path) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) return {};
    if (!S_ISSOCK(st.st_mode)) return error_code(EEXIST, boost::system::system_category());
    if (connect_unix(path)) return error_code(EADDRINUSE, boost::system::system_category());
    ::unlink(path.c_str());
    return {};
}

boost::system::result<unique_fd> listen_unix(const std::filesystem::path& path, int backlog) {
    sockaddr_un addr;
    if (!make_address(path, addr)) return error_code(ENAMETOOLONG, boost::system::system_category());
    if (auto stale = remove_stale_socket(path); !stale) return stale.error();
    unique_fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (fd.get() < 0) return last_error();
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return last_error();
    if (::listen(fd.get(), backlog) != 0) {
        auto ec = last_error();
        ::unlink(path.c_str());
        return ec;
    }
    return fd;
}

boost::system::result<unique_fd> connect_unix(const std::filesystem::path& path) {
    sockaddr_un addr;
    if (!make_address(path, addr)) return error_code(ENAMETOOLONG, boost::system::system_category());
    unique_fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (fd.get() < 0) return last_error();
    int rc;
    do rc = ::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    while (rc != 0 && errno == EINTR);
    if (rc != 0) return last_error();
    return fd;
}

}  // namespace vmrt::io
