// The bearer-token behaviour of Debian's docker-registry (distribution 2.8.2), played by the faulty
// TLS server so that a token can expire at a chosen request instead of at a time: the real
// registry checks `exp` with a 60 s leeway (registry/auth/token/token.go, Leeway), which would make
// a test that waits for an expiry slow and timing-dependent.
//
// Captured from the real registry with curl (tests/component/oci_pull_test.cpp also pulls through
// its refusal of an expired token), and reproduced here byte for byte but for the Date field, the
// realm, the service and the repository:
//  * a /v2/ request without a token it accepts is answered
//      HTTP/1.1 401 Unauthorized
//      Content-Type: application/json; charset=utf-8
//      Docker-Distribution-Api-Version: registry/2.0
//      Www-Authenticate: Bearer realm="<realm>",service="<service>",scope="repository:<name>:pull"
//      {"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":[...]}]}
//    with `,error="invalid_token"` appended to the challenge when a token was sent but refused
//    (expired, unknown, malformed);
//  * the token service (here at `path` on the same server) answers every GET with a fresh token:
//    {"token":…,"access_token":…,"expires_in":…,"issued_at":…}.
//
// Sans-I/O: the server hands it each request's target and Authorization field and writes back the
// response it returns. Thread-safe (the server runs on its own thread, the test reads the record).
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vmrt::test {

struct faulty_token_auth {
    std::string path = "/token";  ///< the token service's path on this server (the realm's path)
    std::string service = "faulty-registry";
    /// /v2/ requests a token is accepted for; the next request with it is refused as the registry
    /// refuses an expired token (401, error="invalid_token"). Deterministic stand-in for `exp`.
    unsigned uses_per_token = std::numeric_limits<unsigned>::max();
    /// Only the first `good_tokens` tokens issued are accepted at all; later ones are refused from
    /// their first use (a revoked grant, a token service signing with the wrong key).
    unsigned good_tokens = std::numeric_limits<unsigned>::max();
    /// The text of the n-th token issued (n from 1); unset: "faulty-token-<n>-<random hex>". Set
    /// it to issue JWTs when this server is the token service of a real registry.
    std::function<std::string(unsigned n)> issue;
    std::uint32_t expires_in = 300;  ///< announced in the token response only
};

struct token_request_record {
    std::string target;         ///< "/token?service=...&scope=..."
    std::string authorization;  ///< the Authorization field it came with ("" if none)
    std::string token;          ///< the token issued in answer
};

class fake_token_service {
public:
    /// `realm` is the token service's URL as the challenge names it.
    fake_token_service(faulty_token_auth options, std::string realm);

    /// True for the token service's own path (with or without a query).
    bool is_token_request(std::string_view target) const;
    /// The whole HTTP response to a token request: a fresh token.
    std::string answer_token_request(std::string_view target, std::string_view authorization);
    /// For a /v2/ request: nullopt if its `Authorization: Bearer <token>` is accepted (counting
    /// one use of the token), else the registry's 401 response.
    std::optional<std::string> refuse(std::string_view target, std::string_view authorization);

    /// Every token request so far, in order.
    std::vector<token_request_record> token_requests() const;

private:
    struct issued {
        std::string token;
        unsigned number = 0;
        unsigned uses = 0;
    };

    faulty_token_auth options_;
    std::string realm_;
    mutable std::mutex mutex_;
    std::vector<issued> issued_;
    std::vector<token_request_record> requests_;
};

}  // namespace vmrt::test
