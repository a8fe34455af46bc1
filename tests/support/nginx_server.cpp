#include "support/nginx_server.hpp"

#include "support/test_support.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <sstream>
#include <stdexcept>

namespace vmrt::test {
namespace asio = boost::asio;
namespace fs = std::filesystem;

std::uint16_t free_loopback_port() {
    asio::io_context ctx;
    asio::ip::tcp::acceptor acceptor(ctx, {asio::ip::make_address("127.0.0.1"), 0});
    return acceptor.local_endpoint().port();
}

nginx_server::nginx_server(asio::any_io_executor ex, const fs::path& dir, const std::string& server_blocks)
    : dir_(dir) {
    fs::create_directories(dir / "temp");
    const std::string d = dir.string();
    // master_process off: one process (no workers to reap); daemon off: it stays our child.
    write_file(dir / "nginx.conf",
               "daemon off;\nmaster_process off;\npid " + d + "/nginx.pid;\nerror_log " + d +
                   "/error.log info;\nevents { worker_connections 64; }\nhttp {\n"
                   "  log_format conn '$connection $connection_requests $status $request';\n"
                   "  access_log " +
                   d +
                   "/access.log conn;\n"
                   "  client_body_temp_path " +
                   d +
                   "/temp/body;\n"
                   "  proxy_temp_path " +
                   d +
                   "/temp/proxy;\n"
                   "  fastcgi_temp_path " +
                   d +
                   "/temp/fastcgi;\n"
                   "  uwsgi_temp_path " +
                   d +
                   "/temp/uwsgi;\n"
                   "  scgi_temp_path " +
                   d +
                   "/temp/scgi;\n"
                   "  default_type application/octet-stream;\n" +
                   server_blocks + "\n}\n");
    io::process_options opts;
    opts.program = "nginx";
    // -e: the error log before the configuration is read (else /var/log/nginx/error.log).
    opts.args = strings("-p", d, "-e", d + "/error.log", "-c", d + "/nginx.conf");
    opts.log_file = dir / "stdout.log";
    process_ = io::process::spawn(std::move(ex), opts);
}

std::string nginx_server::error_log() const { return io::read_file_tail(dir_ / "error.log", 3000); }

std::vector<std::string> nginx_server::access_log() const {
    std::vector<std::string> lines;
    std::istringstream in(read_file(dir_ / "access.log"));
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
}

asio::awaitable<void> nginx_server::async_wait_ready(std::vector<std::uint16_t> ports) {
    auto ex = co_await asio::this_coro::executor;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    for (auto port : ports) {
        for (;;) {
            asio::ip::tcp::socket probe(ex);
            auto [ec] = co_await probe.async_connect({asio::ip::make_address("127.0.0.1"), port},
                                                     asio::as_tuple(asio::use_awaitable));
            if (!ec) break;
            if (std::chrono::steady_clock::now() > deadline)
                throw std::runtime_error("nginx does not listen on port " + std::to_string(port) +
                                         " after 10 s; error log: " + error_log());
            // Startup takes milliseconds and gives no readiness signal we could wait on.
            asio::steady_timer pause(ex, std::chrono::milliseconds(10));
            co_await pause.async_wait(asio::use_awaitable);
        }
    }
}

}  // namespace vmrt::test
