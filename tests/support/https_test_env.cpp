#include "support/https_test_env.hpp"

#include <vmrt/io/sha256.hpp>

#include <boost/asio/this_coro.hpp>

#include <random>

namespace vmrt::test {

namespace {

std::string pseudo_random_bytes(std::size_t n) {
    std::mt19937_64 rng(0x76'6d'72'74);
    std::string out(n, '\0');
    for (auto& c : out) c = static_cast<char>(rng() & 0xff);
    return out;
}

std::string server_block(std::uint16_t port, const tls_pair& id, const std::string& www,
                         const std::string& extra) {
    return "  server {\n    listen 127.0.0.1:" + std::to_string(port) + " ssl;\n    ssl_certificate " +
           id.cert.string() + ";\n    ssl_certificate_key " + id.key.string() + ";\n    root " + www + ";\n" +
           extra + "  }\n";
}

}  // namespace

https_test_env::https_test_env(std::size_t blob_bytes)
    : pki(make_test_pki(dir / "pki")), blob(pseudo_random_bytes(blob_bytes)),
      valid_port(free_loopback_port()), expired_port(free_loopback_port()),
      unknown_ca_port(free_loopback_port()), wrong_name_port(free_loopback_port()) {
    io::sha256 h;
    h.update(blob);
    blob_sha256 = h.hex_digest();
    std::filesystem::create_directories(dir / "www");
    write_file(dir / "www" / "blob.bin", blob);
}

boost::asio::awaitable<void> https_test_env::start_nginx() {
    const std::string www = (dir / "www").string();
    // A short keep-alive lets a test see the client replace a connection the server closed.
    const std::string routes = "    keepalive_timeout 1s;\n"
                               "    location = /redirect { return 302 /blob.bin; }\n"
                               "    location = /redirect-chain { return 301 https://127.0.0.1:" +
                               std::to_string(valid_port) +
                               "/redirect; }\n"
                               "    location = /loop { return 302 /loop; }\n"
                               "    location = /error500 { return 500 \"internal trouble\\n\"; }\n";
    const std::string config = server_block(valid_port, pki.valid, www, routes) +
                               server_block(expired_port, pki.expired, www, "") +
                               server_block(unknown_ca_port, pki.unknown_ca, www, "") +
                               server_block(wrong_name_port, pki.wrong_name, www, "");
    auto ex = co_await boost::asio::this_coro::executor;
    nginx = std::make_unique<nginx_server>(ex, dir / "nginx", config);
    std::vector<std::uint16_t> ports{valid_port, expired_port, unknown_ca_port, wrong_name_port};
    co_await nginx->async_wait_ready(ports);
}

std::string https_test_env::url(std::uint16_t port, const std::string& path) const {
    return "https://127.0.0.1:" + std::to_string(port) + path;
}

io::https_client_options https_test_env::client_options() const {
    io::https_client_options o;
    o.tls.ca_file = pki.ca_cert;
    o.timeouts.connect = std::chrono::seconds(5);
    o.timeouts.handshake = std::chrono::seconds(5);
    o.timeouts.response = std::chrono::seconds(5);
    o.timeouts.body_idle = std::chrono::seconds(5);
    return o;
}

}  // namespace vmrt::test
