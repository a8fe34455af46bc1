// Bearer tokens the test registry accepts (distribution's token auth): JWTs signed ES256 with the
// test CA's key, carrying the CA certificate in the `x5c` header so that the registry verifies
// them against its rootcertbundle (the CA). For a token endpoint served by the test.
#pragma once

#include "support/registry_env.hpp"

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace vmrt::test {

struct registry_token_grant {
    std::string repository;            ///< e.g. "vmrt/test"
    std::vector<std::string> actions;  ///< "pull", "push"
};

struct registry_token_claims {
    std::string subject = "vmrt-test-user";
    std::vector<registry_token_grant> access;
    std::chrono::seconds lifetime = std::chrono::seconds(300);
    /// Shifts iat/nbf/exp (negative: a token that has already expired).
    std::chrono::seconds clock_offset = std::chrono::seconds(0);
};

/// A JWT for `reg` (its token_auth's issuer and service), signed with the test CA's key.
/// Throws std::runtime_error if the registry has no token auth or OpenSSL fails.
std::string make_registry_token(const registry_server& reg, const registry_token_claims& claims);

/// An nginx `server` block (for support/nginx_server) serving the token endpoint of `reg` on
/// 127.0.0.1:`port` over TLS with the registry's certificate: every GET /token answers
/// `{"token": <token>, "expires_in": 300}`. It checks neither scope nor credentials.
std::string token_endpoint_server_block(const registry_server& reg, std::uint16_t port,
                                        const std::string& token);

}  // namespace vmrt::test
