// Image references ("ubuntu", "ghcr.io/org/app:1.2", "localhost:5000/x@sha256:...") parsed the
// way Docker and containerd do (the distribution/reference grammar plus Docker's normalisation),
// sans-I/O:
//
//   reference  := name [ ":" tag ] [ "@" digest ]
//   name       := [ domain "/" ] path            (at most 255 bytes, normalised)
//   domain     := host [ ":" port ]              host: DNS name (letters of either case, digits,
//                                                '-' inside), IPv4, or "[" IPv6 "]"
//   path       := component ( "/" component )*   component: [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ )
//                                                [a-z0-9]+ )*
//   tag        := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
//   digest     := "sha256:" 64 lowercase hex     (other algorithms: errc::unsupported)
//
// The first path segment is the registry when it contains "." or ":", is "localhost", or has an
// uppercase letter (repositories are lowercase only); otherwise the image is on Docker Hub:
// domain "docker.io" (also for "index.docker.io"), "library/" prepended to one-segment names,
// and requests go to registry-1.docker.io. Without tag and digest, the tag is "latest". With
// both, the digest decides what is pulled and the tag is kept for display.
#pragma once

#include <string>
#include <string_view>

namespace vmrt::image {

struct image_reference {
    std::string domain;  ///< as written, normalised: "docker.io", "ghcr.io", "localhost:5000", "[::1]:5000"
    std::string repository;  ///< "library/ubuntu"
    std::string tag;         ///< "latest" by default; empty when only a digest was given
    std::string digest;      ///< "sha256:<hex>" or empty

    /// The host[:port] requests go to: "registry-1.docker.io" for Docker Hub, `domain` otherwise.
    std::string registry_host() const;
    /// "https://" + registry_host(): the base of the /v2/ API.
    std::string registry_url() const;
    /// What goes into /v2/<repository>/manifests/<reference>: the digest if set, else the tag.
    const std::string& reference() const noexcept { return digest.empty() ? tag : digest; }
    /// domain/repository: "docker.io/library/ubuntu".
    std::string name() const;
    /// The canonical, fully qualified form: "docker.io/library/ubuntu:latest",
    /// "ghcr.io/org/app:1.2@sha256:..." (parses back to an equal reference).
    std::string to_string() const;
    /// True for Docker Hub (the domain "docker.io").
    bool is_docker_hub() const noexcept { return domain == "docker.io"; }

    friend bool operator==(const image_reference&, const image_reference&) = default;
};

/// Parses a reference. Throws vmrt::error: errc::invalid_spec naming the input and what is wrong
/// with it (field "image"); errc::unsupported for a well-formed digest of another algorithm.
image_reference parse_image_reference(std::string_view text);

/// The longest name (domain/path) accepted, as in distribution/reference.
inline constexpr std::size_t max_image_name_length = 255;
/// The longest tag accepted.
inline constexpr std::size_t max_tag_length = 128;

}  // namespace vmrt::image
