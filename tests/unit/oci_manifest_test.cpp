// Manifests, indexes, platform selection, layer types, config blobs and content checks
// (lib/image/oci_manifest.cpp, lib/image/oci_digest.cpp).
#include <vmrt/error.hpp>
#include <vmrt/image/oci_manifest.hpp>

#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

namespace {

namespace img = vmrt::image;

std::string d(char c) { return "sha256:" + std::string(64, c); }

std::string desc(const std::string& media, char c, const std::string& extra = {}) {
    return R"({"mediaType":")" + media + R"(","digest":")" + d(c) + R"(","size":)" + "1234" + extra + "}";
}

std::string docker_manifest() {
    return R"({"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":)" +
           desc("application/vnd.docker.container.image.v1+json", '1') + R"(,"layers":[)" +
           desc("application/vnd.docker.image.rootfs.diff.tar.gzip", '2') + "," +
           desc("application/vnd.docker.image.rootfs.diff.tar.gzip", '3') + "]}";
}

std::string oci_manifest_without_type() {
    return R"({"schemaVersion":2,"config":)" + desc("application/vnd.oci.image.config.v1+json", '1') +
           R"(,"layers":[)" + desc("application/vnd.oci.image.layer.v1.tar+zstd", '2') + "," +
           desc("application/vnd.oci.image.layer.v1.tar", '3') + R"(],"annotations":{"a":"b"}})";
}

std::string platform_entry(char c, const std::string& platform, const std::string& annotations = {}) {
    return desc("application/vnd.oci.image.manifest.v1+json", c, R"(,"platform":)" + platform + annotations);
}

/// An index as BuildKit pushes it: two images plus their attestation manifests (unknown/unknown).
std::string buildkit_index() {
    const std::string att = R"(,"annotations":{"vnd.docker.reference.digest":")" + d('a') +
                            R"(","vnd.docker.reference.type":"attestation-manifest"})";
    return R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[)" +
           platform_entry('a', R"({"architecture":"amd64","os":"linux"})") + "," +
           platform_entry('b', R"({"architecture":"arm64","os":"linux","variant":"v8"})") + "," +
           platform_entry('c', R"({"architecture":"unknown","os":"unknown"})", att) + "," +
           platform_entry('d', R"({"architecture":"unknown","os":"unknown"})", att) + "]}";
}

img::image_index index_of(const std::string& json, const std::string& content_type = {}) {
    auto doc = img::parse_manifest(json, content_type);
    BOOST_TEST_REQUIRE(std::holds_alternative<img::image_index>(doc));
    return std::get<img::image_index>(doc);
}

img::image_manifest manifest_of(const std::string& json, const std::string& content_type = {}) {
    auto doc = img::parse_manifest(json, content_type);
    BOOST_TEST_REQUIRE(std::holds_alternative<img::image_manifest>(doc));
    return std::get<img::image_manifest>(doc);
}

template <typename F>
std::string refusal(F&& f, vmrt::errc code) {
    try {
        f();
        BOOST_TEST(false, "accepted");
    } catch (const vmrt::error& e) {
        BOOST_TEST(e.code() == make_error_code(code), e.code().message() << ": " << e.diag().message);
        return e.diag().message;
    }
    return {};
}

}  // namespace

BOOST_AUTO_TEST_SUITE(oci_manifest_test)

BOOST_AUTO_TEST_CASE(docker_schema2_manifest) {
    const auto m = manifest_of(docker_manifest(), "application/vnd.docker.distribution.manifest.v2+json");
    BOOST_TEST(m.media_type == std::string(img::media_type::docker_manifest));
    BOOST_TEST(m.config.digest == d('1'));
    BOOST_TEST(m.config.size == 1234u);
    BOOST_TEST_REQUIRE(m.layers.size() == 2u);
    BOOST_TEST(m.layers[1].digest == d('3'));
    BOOST_TEST((img::layer_compression_of(m.layers[0]) == img::layer_compression::gzip));
    img::check_pullable(m);
}

BOOST_AUTO_TEST_CASE(oci_manifest_without_media_type_decided_by_shape_or_header) {
    for (const std::string ct :
         {"", "application/json", "application/vnd.oci.image.manifest.v1+json; charset=utf-8"}) {
        const auto m = manifest_of(oci_manifest_without_type(), ct);
        BOOST_TEST(m.media_type == std::string(img::media_type::oci_manifest));
        BOOST_TEST((img::layer_compression_of(m.layers[0]) == img::layer_compression::zstd));
        BOOST_TEST((img::layer_compression_of(m.layers[1]) == img::layer_compression::none));
        BOOST_TEST(m.annotations.at("a") == "b");
    }
    const std::string index = R"({"schemaVersion":2,"manifests":[)" +
                              platform_entry('a', R"({"architecture":"amd64","os":"linux"})") + "]}";
    BOOST_TEST(index_of(index).media_type == std::string(img::media_type::oci_index));
    // Docker's schema 2 formats require their mediaType: a Docker Content-Type does not stand in for it.
    refusal([&] { img::parse_manifest(index, "application/vnd.docker.distribution.manifest.list.v2+json"); },
            vmrt::errc::protocol_error);
}

BOOST_AUTO_TEST_CASE(buildkit_index_skips_attestations) {
    const auto index = index_of(buildkit_index(), "application/vnd.oci.image.index.v1+json");
    BOOST_TEST(index.manifests.size() == 4u);
    BOOST_TEST(img::select_platform(index, img::parse_platform_spec("linux/amd64")).digest == d('a'));
    BOOST_TEST(img::select_platform(index, img::parse_platform_spec("linux/arm64")).digest == d('b'));
    BOOST_TEST(img::select_platform(index, img::parse_platform_spec("linux/aarch64/8")).digest == d('b'));
    BOOST_TEST(img::select_platform(index, img::parse_platform_spec("x86_64")).digest == d('a'));
    const auto message = refusal(
        [&] { img::select_platform(index, img::parse_platform_spec("linux/s390x")); }, vmrt::errc::not_found);
    BOOST_TEST(message.find("linux/amd64, linux/arm64/v8") != std::string::npos, message);
    BOOST_TEST(message.find("unknown") == std::string::npos, message);
}

BOOST_AUTO_TEST_CASE(platform_normalisation_and_variants) {
    const std::string list =
        R"({"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[)" +
        platform_entry('1', R"({"architecture":"arm","os":"linux","variant":"v6"})") + "," +
        platform_entry('2', R"({"architecture":"arm","os":"linux","variant":"v7"})") + "," +
        platform_entry('3', R"({"architecture":"arm64","os":"linux"})") + "," +
        platform_entry('4', R"({"architecture":"amd64","os":"linux"})") + "," +
        platform_entry('5', R"({"architecture":"amd64","os":"linux","variant":"v3"})") + "," +
        platform_entry('6', R"({"architecture":"amd64","os":"windows","os.version":"10.0.17763.5830"})") +
        "]}";
    const auto index = index_of(list);
    const auto pick = [&](const std::string& p) {
        return img::select_platform(index, img::parse_platform_spec(p)).digest;
    };
    BOOST_TEST(pick("linux/arm/v6") == d('1'));
    BOOST_TEST(pick("linux/arm/v7") == d('2'));
    BOOST_TEST(pick("linux/arm") == d('2'));  // arm defaults to v7
    BOOST_TEST(pick("linux/arm64") == d('3'));
    BOOST_TEST(pick("linux/arm64/v8") == d('3'));  // no-variant arm64 is v8
    BOOST_TEST(pick("linux/amd64") == d('4'));
    BOOST_TEST(pick("linux/amd64/v3") == d('5'));
    BOOST_TEST(pick("windows/amd64") == d('6'));
    const auto host = img::host_platform();
    BOOST_TEST(host.os == "linux");
    BOOST_TEST(!host.architecture.empty());
}

BOOST_AUTO_TEST_CASE(ambiguous_index_lists_candidates) {
    const std::string list =
        R"({"schemaVersion":2,"manifests":[)" +
        platform_entry('1', R"({"architecture":"arm64","os":"linux"})") + "," +
        platform_entry('2', R"({"architecture":"aarch64","os":"linux","variant":"v8"})") + "," +
        platform_entry('1', R"({"architecture":"arm64","os":"linux"})") + "]}";
    const auto message =
        refusal([&] { img::select_platform(index_of(list), img::parse_platform_spec("linux/arm64")); },
                vmrt::errc::invalid_spec);
    BOOST_TEST(message.find("ambiguous") != std::string::npos);
    BOOST_TEST(message.find(d('1')) != std::string::npos);
    BOOST_TEST(message.find(d('2')) != std::string::npos);
    BOOST_TEST(message.find("2 manifests") != std::string::npos, message);  // the repeated digest counts once
}

BOOST_AUTO_TEST_CASE(malformed_documents) {
    struct bad_case {
        std::string json, content_type, says;
        vmrt::errc code = vmrt::errc::protocol_error;
    };
    const std::string layers = R"(,"layers":[)" + desc("application/vnd.oci.image.layer.v1.tar", '2') + "]";
    const std::string config = R"("config":)" + desc("application/vnd.oci.image.config.v1+json", '1');
    const std::vector<bad_case> cases = {
        {"[]", "", "not a JSON object"},
        {"{", "", "invalid JSON"},
        {R"({"schemaVersion":2,)" + config + layers + R"(,"schemaVersion":2})", "", "twice"},
        {"{" + config + layers + "}", "", "schemaVersion is missing"},
        {R"({"schemaVersion":3,)" + config + layers + "}", "", "is not 2"},
        {R"({"schemaVersion":"2",)" + config + layers + "}", "", "not an integer"},
        {R"({"schemaVersion":1,"name":"x","fsLayers":[]})", "", "schema 1", vmrt::errc::unsupported},
        {R"({"schemaVersion":2,"a":1})", "application/vnd.docker.distribution.manifest.v1+prettyjws",
         "schema 1", vmrt::errc::unsupported},
        {R"({"schemaVersion":2,"mediaType":"application/vnd.oci.artifact.manifest.v1+json"})", "",
         "is not an image", vmrt::errc::unsupported},
        {R"({"schemaVersion":2,"a":1})", "", "no mediaType"},
        {R"({"schemaVersion":2,"manifests":[],)" + config + layers + "}", "", "neither index nor manifest"},
        {R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json",)" + config + layers +
             "}",
         "", "but has \"config\""},
        {R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","manifests":[],)" +
             config + layers + "}",
         "", "but has \"manifests\""},
        {R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",)" + config + layers +
             "}",
         "application/vnd.oci.image.index.v1+json", "does not match"},
        {R"({"schemaVersion":2,)" + config + layers + "}",
         "application/vnd.docker.distribution.manifest.v2+json", "mediaType is missing"},
        {R"({"schemaVersion":2,)" + config + "}", "", "layers is missing"},
        {R"({"schemaVersion":2,"layers":[]})", "application/vnd.oci.image.manifest.v1+json",
         "config is missing"},
        {R"({"schemaVersion":2,"config":{"mediaType":"a/b","digest":"sha256:12","size":1},"layers":[]})", "",
         "config.digest is not a valid digest"},
        {R"({"schemaVersion":2,"config":{"mediaType":"a/b","digest":")" + d('1') +
             R"(","size":-1},"layers":[]})",
         "", "config.size is not a non-negative integer"},
        {R"({"schemaVersion":2,"config":{"mediaType":"a/b","digest":")" + d('1') +
             R"(","size":1.5},"layers":[]})",
         "", "config.size is not a non-negative integer"},
        {R"({"schemaVersion":2,"config":{"mediaType":"a/b","digest":")" + d('1') +
             R"(","size":9007199254740993},"layers":[]})",
         "", "larger than 2^53"},
        {R"({"schemaVersion":2,"config":{"digest":")" + d('1') + R"(","size":1},"layers":[]})", "",
         "config.mediaType is missing"},
        {R"({"schemaVersion":2,"manifests":[{"mediaType":"a/b","digest":")" + d('1') +
             R"(","size":1,"platform":{"os":"linux"}}]})",
         "", "manifests[0].platform.architecture is missing"},
        {R"({"schemaVersion":2,"manifests":[{"mediaType":"a/b","digest":")" + d('1') +
             R"(","size":1,"annotations":{"k":1}}]})",
         "", "manifests[0].annotations.k is not a string"},
        {R"({"schemaVersion":2,"manifests":[{"mediaType":"a/b","digest":")" + d('1') +
             R"(","size":1,"urls":[1]}]})",
         "", "manifests[0].urls[0] is not a string"},
        {"{\"schemaVersion\":2,\"x\":\"" + std::string(img::max_manifest_bytes, 'x') + "\"}", "",
         "over the limit"},
    };
    for (const auto& c : cases) {
        BOOST_TEST_CONTEXT(c.json.substr(0, 200) << " / " << c.content_type) {
            const auto message = refusal([&] { img::parse_manifest(c.json, c.content_type); }, c.code);
            BOOST_TEST(message.find(c.says) != std::string::npos, message);
        }
    }
}

BOOST_AUTO_TEST_CASE(layer_types) {
    img::descriptor layer;
    layer.digest = d('1');
    const auto compression = [&](const std::string& t) {
        layer.media_type = t;
        return img::layer_compression_of(layer);
    };
    BOOST_TEST((compression("application/vnd.oci.image.layer.v1.tar+gzip") == img::layer_compression::gzip));
    BOOST_TEST((compression("application/vnd.docker.image.rootfs.diff.tar") == img::layer_compression::none));
    BOOST_TEST(
        (compression("application/vnd.docker.image.rootfs.diff.tar.zstd") == img::layer_compression::zstd));
    for (const std::string t : {"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
                                "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"}) {
        const auto message = refusal([&] { compression(t); }, vmrt::errc::unsupported);
        BOOST_TEST(message.find("foreign") != std::string::npos, message);
    }
    BOOST_TEST(refusal([&] { compression("application/vnd.oci.image.layer.v1.tar+gzip+encrypted"); },
                       vmrt::errc::unsupported)
                   .find("encrypted") != std::string::npos);
    BOOST_TEST(refusal([&] { compression("text/plain"); }, vmrt::errc::unsupported).find("tar+zstd") !=
               std::string::npos);

    // check_pullable names the layer.
    auto m = manifest_of(docker_manifest());
    m.layers[1].media_type = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
    BOOST_TEST(refusal([&] { img::check_pullable(m); }, vmrt::errc::unsupported).find("layers[1]") !=
               std::string::npos);
    m = manifest_of(docker_manifest());
    m.config.media_type = "application/vnd.example.artifact+json";
    refusal([&] { img::check_pullable(m); }, vmrt::errc::unsupported);
}

BOOST_AUTO_TEST_CASE(other_digest_algorithms_are_kept_until_used) {
    const std::string sha512 = "sha512:" + std::string(128, 'a');
    const std::string index = R"({"schemaVersion":2,"manifests":[{"mediaType":"a/b","digest":")" + sha512 +
                              R"(","size":1,"platform":{"os":"linux","architecture":"amd64"}}]})";
    const auto parsed = index_of(index);
    BOOST_TEST(parsed.manifests[0].digest == sha512);
    refusal([&] { img::verify_digest("x", sha512); }, vmrt::errc::unsupported);
}

BOOST_AUTO_TEST_CASE(digest_and_size_checks) {
    const std::string bytes = docker_manifest();
    const std::string digest = img::digest_of(bytes);
    BOOST_TEST(digest.size() == 71u);
    img::verify_digest(bytes, digest);
    const auto message =
        refusal([&] { img::verify_digest(bytes + " ", digest); }, vmrt::errc::digest_mismatch);
    BOOST_TEST(message.find(digest) != std::string::npos);
    BOOST_TEST(img::digest_of("") ==
               "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    refusal([&] { img::verify_digest(bytes, "sha256:ABC"); }, vmrt::errc::invalid_spec);
    refusal([&] { img::verify_digest(bytes, "sha256:" + std::string(64, 'A')); }, vmrt::errc::invalid_spec);

    img::descriptor desc_1234;
    desc_1234.digest = d('1');
    desc_1234.size = 1234;
    img::check_size(desc_1234, 1234);
    BOOST_TEST(refusal([&] { img::check_size(desc_1234, 1235); }, vmrt::errc::digest_mismatch).find("1235") !=
               std::string::npos);
    img::check_manifest_size(img::max_manifest_bytes);
    refusal([&] { img::check_manifest_size(img::max_manifest_bytes + 1); }, vmrt::errc::protocol_error);
}

BOOST_AUTO_TEST_CASE(image_config) {
    const std::string config =
        R"({"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/bin","A=b"],)"
        R"("Cmd":["/bin/sh"],"Entrypoint":null,"WorkingDir":"/app","User":"1000:1000"},)"
        R"("rootfs":{"type":"layers","diff_ids":[")" +
        d('4') + R"(",")" + d('5') + R"("]},"history":[]})";
    const auto c = img::parse_image_config(config);
    BOOST_TEST(c.architecture == "amd64");
    BOOST_TEST(c.env.size() == 2u);
    BOOST_TEST(c.cmd.at(0) == "/bin/sh");
    BOOST_TEST(c.entrypoint.empty());
    BOOST_TEST(c.working_dir == "/app");
    BOOST_TEST(c.user == "1000:1000");
    BOOST_TEST(c.diff_ids.at(1) == d('5'));
    img::check_config_matches(manifest_of(docker_manifest()), c);
    auto one_layer = manifest_of(docker_manifest());
    one_layer.layers.pop_back();
    refusal([&] { img::check_config_matches(one_layer, c); }, vmrt::errc::digest_mismatch);

    refusal([] { img::parse_image_config(R"({"rootfs":{"type":"foo","diff_ids":[]}})"); },
            vmrt::errc::protocol_error);
    refusal([] { img::parse_image_config(R"({"config":{}})"); }, vmrt::errc::protocol_error);
    refusal([] { img::parse_image_config(R"({"rootfs":{"type":"layers"}})"); }, vmrt::errc::protocol_error);
    refusal([] { img::parse_image_config(R"({"rootfs":{"type":"layers","diff_ids":["x"]}})"); },
            vmrt::errc::invalid_spec);
    refusal(
        [] {
            img::parse_image_config(R"({"rootfs":{"type":"layers","diff_ids":[]},"config":{"Env":"A=b"}})");
        },
        vmrt::errc::protocol_error);
}

BOOST_AUTO_TEST_CASE(platform_specs) {
    const auto p = img::parse_platform_spec("linux/arm/v7");
    BOOST_TEST(p.os == "linux");
    BOOST_TEST(p.architecture == "arm");
    BOOST_TEST(p.variant == "v7");
    BOOST_TEST(img::parse_platform_spec("arm64").os == "linux");
    for (const std::string bad : {"", "/", "a/b/c/d", "linux/", "linux/a b"})
        refusal([&] { img::parse_platform_spec(bad); }, vmrt::errc::invalid_spec);
    const auto n = img::normalize_platform({"Linux", "armhf", ""});
    BOOST_TEST(n.architecture == "arm");
    BOOST_TEST(n.variant == "v7");
    BOOST_TEST(img::normalize_platform({"linux", "armel", ""}).variant == "v6");
}

BOOST_AUTO_TEST_SUITE_END()
