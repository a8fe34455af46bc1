// Authenticated requests to one repository of an OCI registry (the distribution API /v2/):
// the 401 challenge answered (Bearer: a token fetched from the realm, anonymously or with the
// user's credentials; Basic: the credentials), a token that expires mid-pull fetched again on the
// next 401 and the request repeated, and 429 / transient 5xx asked again after Retry-After or a
// backoff (io/retry.hpp). One challenge per request: a 401 to a request that carried a token (or
// credentials) fetched for it is final, an http_status_error 401 "authentication failed".
// vm-rs ignored the challenge and could not pull anonymously from GHCR; this follows it.
#pragma once

#include <vmrt/image/oci_reference.hpp>
#include <vmrt/image/registry_credentials.hpp>
#include <vmrt/io/https_client.hpp>
#include <vmrt/io/retry.hpp>

#include <boost/asio/awaitable.hpp>

#include <functional>
#include <string>
#include <vector>

namespace vmrt::image {

class registry_session {
public:
    registry_session(io::https_client& client, image_reference ref, registry_credentials credentials,
                     io::retry_policy retry);

    /// GET `<registry>/v2/<repository>/<path>` ("manifests/latest", "blobs/sha256:...") with
    /// `headers`, authenticating as the registry asks. Returns the response (header read) once its
    /// status is one of `accepted`; any other final status is an http_status_error naming the URL.
    boost::asio::awaitable<io::http_response> get(std::string path, boost::beast::http::fields headers,
                                                  const std::vector<unsigned>& accepted);

    const image_reference& reference() const noexcept { return ref_; }
    /// Token requests made so far (the first challenge, then one per expiry).
    unsigned token_fetches() const noexcept { return token_fetches_; }
    /// Requests repeated after 429 / 5xx.
    unsigned busy_retries() const noexcept { return busy_retries_; }

private:
    boost::asio::awaitable<void> answer_challenge(const std::string& www_authenticate,
                                                  const std::string& what);

    io::https_client& client_;
    image_reference ref_;
    registry_credentials credentials_;
    io::retry_policy retry_;
    std::string authorization_;  // the Authorization value for the registry, once known
    std::string token_service_;  // the realm the last token came from, for messages
    unsigned token_fetches_ = 0;
    unsigned busy_retries_ = 0;
};

}  // namespace vmrt::image
