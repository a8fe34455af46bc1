// A small HTTPS server that misbehaves on purpose, for what nginx will not do: it announces a
// Content-Length and closes the connection early, stalls before or inside a response, sends a body
// slowly, or ignores Range. It serves one body at every path (or a body per path), can ask for
// bearer tokens the way docker-registry does (support/fake_token_service.hpp), and records the
// requests it receives.
//
// It runs its own io_context on its own thread, so the client under test and the server never
// share an event loop; the destructor stops the thread and destroys every session (closing their
// sockets) before it returns.
#pragma once

#include "support/fake_token_service.hpp"
#include "support/test_pki.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace vmrt::test {

struct faulty_tls_server_options {
    tls_pair identity;  ///< certificate and key the server presents
    std::string body;   ///< served at every path (unless `paths` is set)
    /// If not empty: the body served at each request target ("/v2/x/blobs/sha256:..."); other
    /// targets get 404. Lets the server stand in for a registry serving a few fixed objects.
    std::map<std::string, std::string> paths;
    /// The faults below (busy_*, cut_*) apply only to targets starting with this (empty: all).
    std::string fault_prefix;
    /// The first `cut_responses` responses end (TCP close, no TLS close_notify) after `cut_after`
    /// body bytes; later ones are whole.
    unsigned cut_responses = 0;
    std::size_t cut_after = std::numeric_limits<std::size_t>::max();
    /// Answer "Range: bytes=N-" with 206; false: always 200 with the whole body.
    bool honour_range = true;
    /// The first `busy_responses` requests get `busy_status` (e.g. 429) with `retry_after` as the
    /// Retry-After field (none if empty) and a short body, instead of the content.
    unsigned busy_responses = 0;
    unsigned busy_status = 429;
    std::string retry_after;
    /// Read the request and never answer.
    bool stall_before_headers = false;
    /// Every response stops after this many body bytes and then never sends another.
    std::size_t stall_after = std::numeric_limits<std::size_t>::max();
    /// Bearer-token auth as docker-registry does it: every /v2/ target needs a token that this
    /// server's own token service (at token_auth->path) issued and still accepts; 401 otherwise.
    /// Checked before the faults, and a refused request does not count as one of the "first N".
    std::optional<faulty_token_auth> token_auth;
    /// The port to listen on (127.0.0.1); 0: any free one. For a URL needed before the server.
    std::uint16_t port = 0;
    /// The first `throttle_responses` responses send their body `throttle_chunk` bytes at a time,
    /// `throttle_interval` apart: a big download that is still running when the test acts.
    unsigned throttle_responses = 0;
    std::size_t throttle_chunk = 16 * 1024;
    std::chrono::milliseconds throttle_interval{100};
};

struct received_request {
    std::string target;         ///< the request target
    std::string range;          ///< the Range field ("" if absent)
    std::string if_range;       ///< the If-Range field ("" if absent)
    std::string authorization;  ///< the Authorization field ("" if absent)
    unsigned status = 0;        ///< the status answered
};

class faulty_tls_server {
public:
    explicit faulty_tls_server(faulty_tls_server_options options);
    faulty_tls_server(const faulty_tls_server&) = delete;
    faulty_tls_server& operator=(const faulty_tls_server&) = delete;
    ~faulty_tls_server();

    std::uint16_t port() const noexcept;
    /// The requests received so far, in order.
    std::vector<received_request> requests() const;
    /// The token service's requests and the tokens it issued (empty without token_auth).
    std::vector<token_request_record> token_requests() const;

    struct impl;

private:
    std::unique_ptr<impl> impl_;
};

}  // namespace vmrt::test
