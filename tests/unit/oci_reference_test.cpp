// Image reference parsing (lib/image/oci_reference.cpp): Docker Hub defaults, registries with
// ports and IP literals, tags and digests, the component grammar, and refusals that say why.
#include <vmrt/error.hpp>
#include <vmrt/image/oci_reference.hpp>

#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

namespace {

using vmrt::image::image_reference;
using vmrt::image::parse_image_reference;

const std::string hex64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const std::string digest = "sha256:" + hex64;

struct good_case {
    std::string input;
    std::string domain, repository, tag, digest, registry_url, canonical;
};

/// Throws unless parsing fails with `code`; returns the message.
std::string refusal(const std::string& text, vmrt::errc code = vmrt::errc::invalid_spec) {
    try {
        auto ref = parse_image_reference(text);
        BOOST_TEST(false, text << " was accepted as " << ref.to_string());
    } catch (const vmrt::error& e) {
        BOOST_TEST(e.code() == make_error_code(code), text << ": " << e.code().message() << ": " << e.what());
        return e.diag().message;
    }
    return {};
}

}  // namespace

BOOST_AUTO_TEST_SUITE(oci_reference_test)

BOOST_AUTO_TEST_CASE(accepted_references_normalise_like_docker) {
    const std::vector<good_case> cases = {
        {"ubuntu", "docker.io", "library/ubuntu", "latest", "", "https://registry-1.docker.io",
         "docker.io/library/ubuntu:latest"},
        {"ubuntu:22.04", "docker.io", "library/ubuntu", "22.04", "", "https://registry-1.docker.io",
         "docker.io/library/ubuntu:22.04"},
        {"user/app:1.2", "docker.io", "user/app", "1.2", "", "https://registry-1.docker.io",
         "docker.io/user/app:1.2"},
        {"docker.io/ubuntu", "docker.io", "library/ubuntu", "latest", "", "https://registry-1.docker.io",
         "docker.io/library/ubuntu:latest"},
        {"index.docker.io/library/busybox", "docker.io", "library/busybox", "latest", "",
         "https://registry-1.docker.io", "docker.io/library/busybox:latest"},
        {"ghcr.io/org/app@" + digest, "ghcr.io", "org/app", "", digest, "https://ghcr.io",
         "ghcr.io/org/app@" + digest},
        {"ghcr.io/org/app:v1@" + digest, "ghcr.io", "org/app", "v1", digest, "https://ghcr.io",
         "ghcr.io/org/app:v1@" + digest},
        {"localhost:5000/x:y", "localhost:5000", "x", "y", "", "https://localhost:5000",
         "localhost:5000/x:y"},
        {"localhost/x", "localhost", "x", "latest", "", "https://localhost", "localhost/x:latest"},
        {"127.0.0.1:5443/a/b", "127.0.0.1:5443", "a/b", "latest", "", "https://127.0.0.1:5443",
         "127.0.0.1:5443/a/b:latest"},
        {"[::1]:5000/x", "[::1]:5000", "x", "latest", "", "https://[::1]:5000", "[::1]:5000/x:latest"},
        {"[2001:db8::1]/x", "[2001:db8::1]", "x", "latest", "", "https://[2001:db8::1]",
         "[2001:db8::1]/x:latest"},
        {"Registry.Example.COM/a", "Registry.Example.COM", "a", "latest", "", "https://Registry.Example.COM",
         "Registry.Example.COM/a:latest"},
        {"quay.io/a.b/c_d/e__f/g-h/i---j:T_a.g-1", "quay.io", "a.b/c_d/e__f/g-h/i---j", "T_a.g-1", "",
         "https://quay.io", "quay.io/a.b/c_d/e__f/g-h/i---j:T_a.g-1"},
        {"localhost:5000", "docker.io", "library/localhost", "5000", "", "https://registry-1.docker.io",
         "docker.io/library/localhost:5000"},  // no '/': "localhost" with tag 5000, as in Docker
        {"a:_tag", "docker.io", "library/a", "_tag", "", "https://registry-1.docker.io",
         "docker.io/library/a:_tag"},
    };
    for (const auto& c : cases) {
        BOOST_TEST_CONTEXT(c.input) {
            const image_reference r = parse_image_reference(c.input);
            BOOST_TEST(r.domain == c.domain);
            BOOST_TEST(r.repository == c.repository);
            BOOST_TEST(r.tag == c.tag);
            BOOST_TEST(r.digest == c.digest);
            BOOST_TEST(r.registry_url() == c.registry_url);
            BOOST_TEST(r.to_string() == c.canonical);
            BOOST_TEST(r.reference() == (c.digest.empty() ? c.tag : c.digest));
            BOOST_TEST((parse_image_reference(r.to_string()) == r));
        }
    }
}

BOOST_AUTO_TEST_CASE(docker_hub_registry_host_and_digest_precedence) {
    const auto r = parse_image_reference("ubuntu:jammy@" + digest);
    BOOST_TEST(r.is_docker_hub());
    BOOST_TEST(r.registry_host() == "registry-1.docker.io");
    BOOST_TEST(r.reference() == digest);  // the digest decides what is pulled
    BOOST_TEST(r.tag == "jammy");         // the tag stays for display
    BOOST_TEST(r.name() == "docker.io/library/ubuntu");
}

BOOST_AUTO_TEST_CASE(refusals_name_what_is_wrong) {
    struct bad_case {
        std::string input, says;
        vmrt::errc code = vmrt::errc::invalid_spec;
    };
    const std::vector<bad_case> cases = {
        {"", "empty"},
        {"Ubuntu", "lowercase"},
        {"user/App", "lowercase"},
        {"ubuntu:", "tag after ':' is empty"},
        {"ubuntu:-x", "must start with"},
        {"ubuntu:a/b", "invalid port"},  // "a/b" is no tag: "ubuntu:a" is then a host with a bad port
        {"ubuntu:" + std::string(129, 'a'), "longer than 128"},
        {"a//b", "empty path component"},
        {"a/", "empty path component"},
        {"/a", "empty path component"},
        {"a..b", "separator \"..\""},
        {"a___b", "separator \"___\""},
        {"a-", "start and end"},
        {"-a", "start and end"},
        {"a_-b", "separator \"_-\""},
        {"a b", "whitespace"},
        {"a\nb", "control"},
        {"ubuntu@sha256:abc", "64 lowercase hex"},
        {"ubuntu@sha256:" + std::string(64, 'A'), "64 lowercase hex"},
        {"ubuntu@md5", "not a digest"},
        {"ubuntu@", "not a digest"},
        {"ubuntu@sha512:" + std::string(128, 'a'), "only sha256", vmrt::errc::unsupported},
        {"localhost:0/x", "invalid port"},
        {"localhost:99999/x", "invalid port"},
        {"localhost:abc/x", "invalid port"},
        {"-bad.example/x", "not a valid host name"},
        {"bad-.example/x", "not a valid host name"},
        {"a..example/x", "not a valid host name"},
        {"exa_mple.com/x", "contains"},
        {"[::1/x", "lacks its ']'"},
        {"[zz::1]:5000/x", "IPv6"},
        {"[::1]x/x", "after ']'"},
        {hex64, "image ID"},
        {"example.com/" + std::string(250, 'a'), "longer than 255"},
    };
    for (const auto& c : cases) {
        BOOST_TEST_CONTEXT(c.input) {
            const std::string message = refusal(c.input, c.code);
            BOOST_TEST(message.find(c.says) != std::string::npos, message);
            BOOST_TEST(message.find("invalid image reference") == 0, message);
        }
    }
}

BOOST_AUTO_TEST_CASE(name_length_limit_counts_the_normalised_name) {
    // docker.io/ + library/ + name: 255 bytes exactly is accepted, one more is not.
    const std::string name(255 - std::string("docker.io/library/").size(), 'a');
    BOOST_TEST(parse_image_reference(name).name().size() == 255u);
    refusal(name + "a");
}

BOOST_AUTO_TEST_CASE(diagnostics_quote_hostile_input) {
    const std::string message = refusal(std::string("evil\x1b[2Jname"));
    BOOST_TEST(message.find('\x1b') == std::string::npos);
    BOOST_TEST(message.find("\\x1b") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
