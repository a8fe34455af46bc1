// Pulling an OCI / Docker image from a registry into the content-addressed store.
//
//   image::oci_store store(dir / "images");
//   auto ref = image::parse_image_reference("127.0.0.1:5443/tools/app:1.0");
//   image::pull_options o;
//   o.client.tls.ca_file = "ca.pem";         // a private registry's CA; default: system trust
//   auto pulled = co_await image::pull_image(store, ref, o);
//
// What a pull does:
//  1. GET the manifest by tag or digest (Accept: OCI and Docker manifests and indexes), with the
//     registry's authentication (registry_session: Bearer tokens, anonymous or with credentials
//     from ~/.docker/config.json and credential helpers; Basic; a token refused mid-pull is
//     fetched again and the request repeated). The digest of the bytes received must equal a
//     pinned `@sha256:` and the Docker-Content-Digest header when one is sent.
//  2. An index: the entry for `platform` (os/architecture/variant) is fetched by digest, and its
//     bytes must hash to that digest and have the descriptor's size.
//  3. The config and the layers are downloaded into the store, `parallel_blobs` at a time: each
//     streams to a partial file while it is hashed, a dropped connection resumes with Range
//     (also across a killed process: the store keeps partials under a per-blob lock), 429/5xx
//     are asked again after Retry-After or a backoff, and a blob is committed only with the
//     descriptor's size and digest. Blobs already in the store are not downloaded again.
//  4. The tag (if the reference has one) is pointed at the manifest or index, last, so a tag
//     never names an incomplete image.
//
// Errors (vmrt::error): errc::digest_mismatch, errc::http_status (401/403/404 with the registry's
// words; a 401 to credentials or a token fetched just before is "authentication failed", with no
// credential or token in the message), errc::unsupported (foreign or encrypted layers, unknown
// media types), errc::not_found (no manifest for the platform, listing the platforms available),
// transport errors of io::https_client. The executor must not run the pull on several threads at
// once (one strand).
#pragma once

#include <vmrt/image/oci_manifest.hpp>
#include <vmrt/image/oci_reference.hpp>
#include <vmrt/image/oci_store.hpp>
#include <vmrt/image/registry_credentials.hpp>
#include <vmrt/io/https_client.hpp>
#include <vmrt/io/retry.hpp>

#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

namespace vmrt::image {

struct pull_progress {
    std::string digest;
    std::string kind;  ///< "index", "manifest", "config" or "layer"
    std::uint64_t done = 0;
    std::uint64_t total = 0;
    bool finished = false;
    bool cached = false;  ///< the store already had it
};

struct pull_options {
    platform_spec platform = host_platform();
    unsigned parallel_blobs = 3;
    io::https_client_options client;
    /// Unset: looked up in the Docker config (and its credential helpers) for the registry.
    std::optional<registry_credentials> credentials;
    credential_options credential_lookup;
    io::retry_policy retry;
    /// Range requests after a dropped or stalled transfer, per blob.
    unsigned max_resume_attempts = 5;
    std::function<void(const pull_progress&)> progress;
};

struct pulled_image {
    image_reference reference;
    std::string index_digest;     ///< the index the reference named, or empty
    std::string manifest_digest;  ///< the (platform's) image manifest
    image_manifest manifest;
    image_config config;
    std::uint64_t bytes_downloaded = 0;
    unsigned blobs_downloaded = 0;
    unsigned blobs_cached = 0;
    unsigned resumed = 0;        ///< Range requests after broken transfers
    unsigned busy_retries = 0;   ///< requests repeated after 429 / 5xx
    unsigned token_fetches = 0;  ///< bearer tokens fetched
};

boost::asio::awaitable<pulled_image> pull_image(oci_store& store, image_reference reference,
                                                pull_options options);

}  // namespace vmrt::image
