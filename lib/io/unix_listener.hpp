// A listening Unix stream socket bound to a path, made before the process that will serve it
// starts (Cloud Hypervisor's --api-socket fd=N, virtiofsd --fd=N, QEMU's control chardev): the
// path exists and accepts connections (into the backlog) from the first moment, so no peer ever
// races the server's start-up.
#pragma once

#include <vmrt/error.hpp>
#include <vmrt/io/unique_fd.hpp>

#include <boost/system/result.hpp>

#include <filesystem>

namespace vmrt::io {

/// Binds and listens (close-on-exec). A stale socket file at `path` (a crashed earlier run) is
/// replaced; any other existing file is an error (EEXIST). ENAMETOOLONG if the path does not fit
/// in sockaddr_un.
boost::system::result<unique_fd> listen_unix(const std::filesystem::path& path, int backlog = 16);

/// A stream socket connected to `path` (blocking connect; immediate for a listening socket).
boost::system::result<unique_fd> connect_unix(const std::filesystem::path& path);

}  // namespace vmrt::io
