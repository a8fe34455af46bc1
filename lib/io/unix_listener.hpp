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

/// Removes a socket file a crashed earlier run left at `path` (nothing accepts connections on it).
/// Nothing there: success. EADDRINUSE if something listens on it, EEXIST if it is not a socket:
/// neither is ours to remove.
boost::system::result<void> remove_stale_socket(const std::filesystem::path& path);

/// Binds and listens (close-on-exec), after remove_stale_socket (whose errors it returns).
/// ENAMETOOLONG if the path does not fit in sockaddr_un.
boost::system::result<unique_fd> listen_unix(const std::filesystem::path& path, int backlog = 16);

/// A stream socket connected to `path` (blocking connect; immediate for a listening socket).
boost::system::result<unique_fd> connect_unix(const std::filesystem::path& path);

}  // namespace vmrt::io
