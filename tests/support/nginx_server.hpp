// A real nginx (Debian's nginx-light) as a child process of the test: configuration, pid file,
// logs and temp paths all live in the test's directory, it runs in the foreground as a single
// process, and its owner kills and reaps it (io::process), even when the test fails.
#pragma once

#include <vmrt/io/process.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace vmrt::test {

/// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then released).
std::uint16_t free_loopback_port();

class nginx_server {
public:
    /// Writes `dir`/nginx.conf with `server_blocks` inside its http {} block and starts nginx.
    /// The blocks may use any paths; logs go to `dir`/error.log and `dir`/access.log, whose lines
    /// read "CONNECTION-NUMBER REQUESTS-ON-IT STATUS REQUEST-LINE" (to see connection reuse).
    nginx_server(boost::asio::any_io_executor ex, const std::filesystem::path& dir,
                 const std::string& server_blocks);

    /// Waits until every port accepts TCP connections; throws with nginx's error log if that
    /// takes longer than 10 s.
    boost::asio::awaitable<void> async_wait_ready(std::vector<std::uint16_t> ports);

    /// The last bytes of nginx's error log (for failure messages).
    std::string error_log() const;
    /// The lines of the access log so far.
    std::vector<std::string> access_log() const;

private:
    std::filesystem::path dir_;
    io::process process_;
};

}  // namespace vmrt::test
