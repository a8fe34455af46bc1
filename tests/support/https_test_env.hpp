// The setting of the HTTPS component tests: a private directory with a generated PKI, a blob to
// serve, and a real nginx on four loopback ports that present the valid, expired, unknown-CA and
// wrong-name certificates. Locations on the valid port:
//   /blob.bin            the blob (static file: Range, ETag, Last-Modified)
//   /redirect            302 → /blob.bin          /redirect-chain   301 → absolute /redirect
//   /loop                302 → /loop               /error500         500 "internal trouble"
//   /missing.bin         nginx's own 404
#pragma once

#include "support/nginx_server.hpp"
#include "support/test_pki.hpp"
#include "support/test_support.hpp"

#include <vmrt/io/https_client.hpp>

#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <memory>
#include <string>

namespace vmrt::test {

struct https_test_env {
    explicit https_test_env(std::size_t blob_bytes = 3 * 1024 * 1024 + 123);

    temp_dir dir;
    test_pki pki;
    std::string blob;         ///< the served bytes (deterministic pseudo-random)
    std::string blob_sha256;  ///< its digest, lowercase hex
    std::uint16_t valid_port, expired_port, unknown_ca_port, wrong_name_port;

    /// Starts nginx (a child of this test, killed and reaped with the env) and waits for it.
    boost::asio::awaitable<void> start_nginx();
    /// https://127.0.0.1:PORT + path
    std::string url(std::uint16_t port, const std::string& path) const;
    /// A client that trusts the test CA, with short timeouts.
    io::https_client_options client_options() const;

    std::unique_ptr<nginx_server> nginx;
};

}  // namespace vmrt::test
