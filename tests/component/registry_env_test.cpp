// The registry environment of issue 7 works: Debian's docker-registry runs as the test's child over
// TLS with the test CA, images built by support/oci_layout are pushed with skopeo and come back with
// the digests the builder computed, a multi-platform index keeps its digest, basic auth challenges,
// and nothing outlives the environment. The puller's own tests build on this.
#include "image/archive_handles.hpp"
#include "support/nginx_server.hpp"
#include "support/oci_layout.hpp"
#include "support/registry_env.hpp"
#include "support/registry_token.hpp"
#include "support/test_support.hpp"

#include <vmrt/io/https_client.hpp>
#include <vmrt/io/process.hpp>
#include <vmrt/io/sha256.hpp>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/beast/core/detail/base64.hpp>
#include <boost/json/parse.hpp>
#include <boost/test/unit_test.hpp>

#include <archive.h>
#include <archive_entry.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
namespace json = boost::json;
using namespace vmrt;
using namespace vmrt::test;

struct read_handle_deleter {
    void operator()(struct archive* a) const noexcept { archive_read_free(a); }
};
using archive_reader_ptr = std::unique_ptr<struct archive, read_handle_deleter>;

/// sha256 of a layer blob after decompression (gzip, zstd or none): an independent diff_id.
std::string uncompressed_digest(const fs::path& blob) {
    archive_reader_ptr a{archive_read_new()};
    archive_read_support_filter_all(a.get());
    archive_read_support_format_raw(a.get());
    BOOST_REQUIRE(archive_read_open_filename(a.get(), blob.c_str(), 65536) == ARCHIVE_OK);
    archive_entry* e = nullptr;
    BOOST_REQUIRE(archive_read_next_header(a.get(), &e) == ARCHIVE_OK);
    io::sha256 h;
    std::vector<char> buf(65536);
    for (la_ssize_t n; (n = archive_read_data(a.get(), buf.data(), buf.size())) > 0;)
        h.update(buf.data(), static_cast<std::size_t>(n));
    return "sha256:" + h.hex_digest();
}

/// "TYPE PATH[ -> TARGET]" of every entry of a layer blob, read back with libarchive.
std::vector<std::string> tar_listing(const fs::path& blob) {
    archive_reader_ptr a{archive_read_new()};
    archive_read_support_filter_all(a.get());
    archive_read_support_format_tar(a.get());
    BOOST_REQUIRE(archive_read_open_filename(a.get(), blob.c_str(), 65536) == ARCHIVE_OK);
    std::vector<std::string> out;
    archive_entry* e = nullptr;
    while (archive_read_next_header(a.get(), &e) == ARCHIVE_OK) {
        std::string line;
        // (libarchive may write and read directory names with a trailing '/'; compared without)
        if (archive_entry_hardlink(e))
            line = std::string("hardlink ") + archive_entry_pathname(e) + " -> " + archive_entry_hardlink(e);
        else if (archive_entry_filetype(e) == AE_IFDIR) {
            std::string name = archive_entry_pathname(e);
            if (name.ends_with('/')) name.pop_back();
            line = "dir " + name;
        } else if (archive_entry_filetype(e) == AE_IFLNK)
            line = std::string("symlink ") + archive_entry_pathname(e) + " -> " + archive_entry_symlink(e);
        else
            line = std::string("file ") + archive_entry_pathname(e) + " " +
                   std::to_string(archive_entry_size(e));
        out.push_back(line);
    }
    return out;
}

std::string sha256_digest(const std::string& bytes) { return "sha256:" + io::sha256_hex(bytes); }

struct http_result {
    unsigned status = 0;
    std::string www_authenticate;
    std::string body;
};

/// GET url+path with the test CA (and an Authorization header if given), the body read whole.
/// Accepts OCI manifests and indexes: without that Accept, distribution 2.8 answers 404 for them.
asio::awaitable<http_result> get(const registry_server& reg, const std::string& path,
                                 const std::string& authorization = {}) {
    auto ex = co_await asio::this_coro::executor;
    io::https_client_options opts;
    opts.tls.ca_file = reg.ca_file();
    io::https_client client(ex, opts);
    io::http_request req;
    req.url = io::parse_https_url(reg.url() + path);
    if (!authorization.empty()) req.headers.set(boost::beast::http::field::authorization, authorization);
    req.headers.set(boost::beast::http::field::accept,
                    std::string(oci_manifest_media_type) + ", " + oci_index_media_type);
    auto resp = co_await client.async_send(std::move(req));
    http_result r;
    r.status = resp.status();
    if (auto it = resp.headers().find(boost::beast::http::field::www_authenticate);
        it != resp.headers().end())
        r.www_authenticate = std::string(it->value());
    r.body = co_await resp.async_read_all(std::size_t{256} << 20);
    co_return r;
}

std::string basic_authorization(const registry_credentials& c) {
    const std::string plain = c.joined();
    std::string encoded(boost::beast::detail::base64::encoded_size(plain.size()), '\0');
    encoded.resize(boost::beast::detail::base64::encode(encoded.data(), plain.data(), plain.size()));
    return "Basic " + encoded;
}

double seconds(std::chrono::steady_clock::duration d) { return std::chrono::duration<double>(d).count(); }

}  // namespace

BOOST_AUTO_TEST_SUITE(registry_env_test)

BOOST_AUTO_TEST_CASE(registry_answers_v2_over_tls_with_the_test_ca) {
    registry_server reg;
    BOOST_TEST_MESSAGE("registry start (spawn to first /v2/ answer): " << seconds(reg.startup_time())
                                                                       << " s");
    BOOST_TEST(reg.port() != 5000);
    BOOST_TEST(fs::exists(reg.cert_dir() / "ca.crt"));
    run_coro([&]() -> asio::awaitable<void> {
        auto r = co_await get(reg, "/v2/");
        BOOST_TEST(r.status == 200u);
        BOOST_TEST(r.body == "{}");
        // The TLS is real: a client trusting only the system store refuses the certificate.
        auto ex = co_await asio::this_coro::executor;
        io::https_client untrusting(ex);
        io::http_request req;
        req.url = io::parse_https_url(reg.url() + "/v2/");
        bool refused = false;
        try {
            co_await untrusting.async_send(std::move(req));
        } catch (const vmrt::error& e) {
            refused = e.code() == errc::certificate_rejected;
        }
        BOOST_TEST(refused);
    });
    // curl agrees (another TLS stack, the same CA file).
    auto [code, out] =
        run_to_end("curl", strings("-sS", "--cacert", reg.ca_file().string(), reg.url() + "/v2/"));
    BOOST_TEST(code == 0, out);
    BOOST_TEST(out == "{}");
}

BOOST_AUTO_TEST_CASE(pushed_image_has_the_digests_the_builder_computed) {
    temp_dir layout;
    oci_image_builder b;
    b.layer({dir("etc"), file("etc/hello", "hi\n"), file("etc/old", "to be deleted\n"), dir("var"),
             dir("var/cache"), file("var/cache/stale", "stale\n"), symlink_to("etc/link", "hello"),
             hardlink("etc/hello-again", "etc/hello")})
        .layer({whiteout("etc/old"), opaque("var/cache"), file("var/cache/fresh", "fresh\n"),
                dir("var/x", 0700)},
               layer_compression::zstd)
        .layer({file("usr-local-readme", "plain tar layer\n")}, layer_compression::none)
        .config_field("Cmd", json::array{"/bin/sh"});
    const auto img = b.write(layout.path(), "v1");

    // The layout is self-consistent: every descriptor's size and digest match its blob, and each
    // diff_id is the digest of the decompressed layer.
    BOOST_REQUIRE_EQUAL(img.layers.size(), 3u);
    BOOST_TEST(img.layers[0].media_type == oci_layer_gzip_media_type);
    BOOST_TEST(img.layers[1].media_type == oci_layer_zstd_media_type);
    BOOST_TEST(img.layers[2].media_type == oci_layer_tar_media_type);
    for (const auto* d : {&img.manifest, &img.config, &img.layers[0], &img.layers[1], &img.layers[2]}) {
        const auto p = blob_path(layout.path(), d->digest);
        BOOST_TEST(fs::file_size(p) == d->size);
        BOOST_TEST("sha256:" + io::sha256_of_file(p) == d->digest);
    }
    for (std::size_t i = 0; i < img.layers.size(); ++i)
        BOOST_TEST(uncompressed_digest(blob_path(layout.path(), img.layers[i].digest)) == img.diff_ids[i]);
    const auto config = json::parse(read_file(blob_path(layout.path(), img.config.digest)));
    BOOST_TEST(config.at("rootfs").at("diff_ids").as_array().size() == 3u);
    BOOST_TEST(config.at("rootfs").at("diff_ids").at(1).as_string() == img.diff_ids[1]);
    BOOST_TEST(config.at("architecture").as_string() == "amd64");
    const auto second = tar_listing(blob_path(layout.path(), img.layers[1].digest));
    const auto expected_second =
        strings("file etc/.wh.old 0", "file var/cache/.wh..wh..opq 0", "file var/cache/fresh 6", "dir var/x");
    BOOST_TEST(second == expected_second, boost::test_tools::per_element());
    const auto first = tar_listing(blob_path(layout.path(), img.layers[0].digest));
    BOOST_TEST(first.back() == "hardlink etc/hello-again -> etc/hello");
    BOOST_TEST(first.at(6) == "symlink etc/link -> hello");

    registry_server reg;
    push_image(layout.path(), "v1", reg, "vmrt/test:v1");
    const auto inspected = json::parse(skopeo_inspect(reg, "vmrt/test:v1"));
    BOOST_TEST(inspected.at("Digest").as_string() == img.manifest.digest);
    const auto& layers = inspected.at("Layers").as_array();
    BOOST_REQUIRE_EQUAL(layers.size(), 3u);
    for (std::size_t i = 0; i < 3; ++i) BOOST_TEST(layers[i].as_string() == img.layers[i].digest);
    // The manifest comes back byte for byte.
    const auto raw = skopeo_inspect(reg, "vmrt/test:v1", true);
    BOOST_TEST(sha256_digest(raw) == img.manifest.digest);

    // And over plain HTTPS, as the puller will see it: the manifest by tag and a blob by digest.
    run_coro([&]() -> asio::awaitable<void> {
        auto m = co_await get(reg, "/v2/vmrt/test/manifests/v1");
        BOOST_TEST(m.status == 200u);
        BOOST_TEST(sha256_digest(m.body) == img.manifest.digest);
        auto blob = co_await get(reg, "/v2/vmrt/test/blobs/" + img.layers[1].digest);
        BOOST_TEST(blob.status == 200u);
        BOOST_TEST(blob.body.size() == img.layers[1].size);
        BOOST_TEST(sha256_digest(blob.body) == img.layers[1].digest);
    });
}

BOOST_AUTO_TEST_CASE(multi_platform_index_is_pushed_intact) {
    temp_dir layout;
    const auto mp = write_multi_platform_index(layout.path(), "multi");
    BOOST_TEST(mp.amd64.manifest.digest != mp.arm64.manifest.digest);
    BOOST_TEST(mp.arm64.manifest.platform->variant == "v8");

    registry_server reg;
    push_image(layout.path(), "multi", reg, "vmrt/multi:latest", true);
    const auto raw_index = skopeo_inspect(reg, "vmrt/multi:latest", true);
    BOOST_TEST(sha256_digest(raw_index) == mp.index.digest);
    const auto index = json::parse(raw_index);
    const auto& manifests = index.at("manifests").as_array();
    BOOST_REQUIRE_EQUAL(manifests.size(), 3u);
    BOOST_TEST(manifests[1].at("platform").at("variant").as_string() == "v8");
    BOOST_TEST(manifests[2].at("platform").at("os").as_string() == "unknown");
    BOOST_TEST(manifests[2].at("annotations").at("vnd.docker.reference.type").as_string() ==
               "attestation-manifest");
    // Every image of the index is in the registry, under its own digest.
    for (const auto* d : {&mp.amd64.manifest, &mp.arm64.manifest, &mp.attestation}) {
        const auto raw = skopeo_inspect(reg, "vmrt/multi@" + d->digest, true);
        BOOST_TEST(sha256_digest(raw) == d->digest);
    }
    run_coro([&]() -> asio::awaitable<void> {
        auto arm = co_await get(reg, "/v2/vmrt/multi/blobs/" + mp.arm64.layers[0].digest);
        BOOST_TEST(arm.status == 200u);
        BOOST_TEST(sha256_digest(arm.body) == mp.arm64.layers[0].digest);
    });
}

BOOST_AUTO_TEST_CASE(basic_auth_challenges_anonymous_requests) {
    registry_options opts;
    opts.basic_auth = registry_credentials{"vmrt-user", "pa:ss w\"rd"};
    registry_server reg(opts);
    BOOST_TEST(read_file(reg.dir() / "htpasswd").rfind("vmrt-user:$2y$", 0) == 0u);  // bcrypt
    run_coro([&]() -> asio::awaitable<void> {
        auto anonymous = co_await get(reg, "/v2/");
        BOOST_TEST(anonymous.status == 401u);
        BOOST_TEST(anonymous.www_authenticate == "Basic realm=\"vmrt-test-registry\"");
        const auto right = basic_authorization(*reg.credentials());
        auto good = co_await get(reg, "/v2/", right);
        BOOST_TEST(good.status == 200u);
        const auto wrong = basic_authorization(registry_credentials{"vmrt-user", "wrong"});
        auto bad = co_await get(reg, "/v2/", wrong);
        BOOST_TEST(bad.status == 401u);
    });
    temp_dir layout;
    oci_image_builder b;
    const auto img = b.layer({file("hello", "authenticated\n")}).write(layout.path(), "v1");
    push_image(layout.path(), "v1", reg, "private/app:v1");
    BOOST_TEST(json::parse(skopeo_inspect(reg, "private/app:v1")).at("Digest").as_string() ==
               img.manifest.digest);
    // Without credentials skopeo is turned away.
    bool refused = false;
    try {
        run_skopeo(reg, strings("inspect", "--cert-dir", reg.cert_dir().string(), "--no-creds",
                                "docker://" + reg.host_port() + "/private/app:v1"));
    } catch (const std::runtime_error& e) {
        refused = std::string(e.what()).find("unauthorized") != std::string::npos;
        BOOST_TEST_MESSAGE("anonymous skopeo: " << e.what());
    }
    BOOST_TEST(refused);
}

BOOST_AUTO_TEST_CASE(token_auth_accepts_tokens_signed_by_the_test_ca) {
    // The token endpoint: nginx (the test's child) on its own port, with the registry's certificate,
    // handing out one token signed with the test CA's key. Enough for skopeo's bearer flow; the
    // puller's tests will serve scope-checking tokens the same way or from a Beast handler.
    const auto token_port = free_loopback_port();
    registry_options opts;
    opts.token_auth = registry_token_auth{};
    opts.token_auth->realm = "https://127.0.0.1:" + std::to_string(token_port) + "/token";
    registry_server reg(opts);

    registry_token_claims claims;
    claims.access.push_back({"vmrt/tokened", strings("pull", "push")});
    const auto token = make_registry_token(reg, claims);
    registry_token_claims expired_claims = claims;
    expired_claims.clock_offset = -std::chrono::hours(1);
    const auto expired = make_registry_token(reg, expired_claims);
    registry_token_claims other_claims;
    other_claims.access.push_back({"someone/else", strings("pull")});
    const auto other_repo = make_registry_token(reg, other_claims);

    temp_dir nginx_dir;
    const std::string server = token_endpoint_server_block(reg, token_port, token);
    temp_dir layout;
    oci_image_builder b;
    const auto img = b.layer({file("hello", "bearer\n")}).write(layout.path(), "v1");
    asio::io_context ctx;
    nginx_server nginx(ctx.get_executor(), nginx_dir.path(), server);
    run_coro(ctx, [&]() -> asio::awaitable<void> {
        std::vector<std::uint16_t> ports{token_port};
        co_await nginx.async_wait_ready(ports);
        auto anonymous = co_await get(reg, "/v2/");
        BOOST_TEST(anonymous.status == 401u);
        BOOST_TEST(anonymous.www_authenticate ==
                   "Bearer realm=\"" + opts.token_auth->realm + "\",service=\"vmrt-test-registry\"");
        const auto bearer = "Bearer " + token;
        auto good = co_await get(reg, "/v2/", bearer);
        BOOST_TEST(good.status == 200u);
        const auto late = "Bearer " + expired;
        auto stale = co_await get(reg, "/v2/", late);
        BOOST_TEST(stale.status == 401u);
        // A token for another repository does not open this one (the scope is checked).
        const auto elsewhere = "Bearer " + other_repo;
        auto denied = co_await get(reg, "/v2/vmrt/tokened/tags/list", elsewhere);
        BOOST_TEST(denied.status == 401u);
        BOOST_TEST(denied.www_authenticate.find("scope=\"repository:vmrt/tokened:pull\"") !=
                       std::string::npos,
                   denied.www_authenticate);
    });
    // skopeo follows the challenge to the test's token endpoint and pushes with the token.
    push_image(layout.path(), "v1", reg, "vmrt/tokened:v1");
    BOOST_TEST(json::parse(skopeo_inspect(reg, "vmrt/tokened:v1")).at("Digest").as_string() ==
               img.manifest.digest);
}

BOOST_AUTO_TEST_CASE(teardown_leaves_no_process_port_or_file) {
    pid_t pid = 0;
    std::uint16_t port = 0;
    fs::path dir;
    std::optional<io::process_identity> identity;
    {
        registry_options opts;
        opts.basic_auth = registry_credentials{"u", "p"};
        registry_server reg(opts);
        pid = reg.pid();
        port = reg.port();
        dir = reg.dir();
        identity = io::read_process_identity(pid);
        BOOST_REQUIRE(identity.has_value());
        BOOST_TEST(fs::exists(reg.storage_dir()));
    }
    // The process is gone (or its pid now belongs to a different process).
    const auto now = io::read_process_identity(pid);
    BOOST_TEST((!now || !(*now == *identity)));
    BOOST_TEST(!fs::exists(dir));
    asio::io_context ctx;
    asio::ip::tcp::socket probe(ctx);
    boost::system::error_code ec;
    probe.connect({asio::ip::make_address("127.0.0.1"), port}, ec);
    BOOST_TEST(ec == asio::error::connection_refused);
}

BOOST_AUTO_TEST_CASE(big_image_push_is_measured) {
    // A benchmark image (>= 100 MiB incompressible, several layers); timings are reported, not asserted.
    temp_dir layout;
    const auto t0 = std::chrono::steady_clock::now();
    const auto img = write_big_image(layout.path(), "big");
    const auto t1 = std::chrono::steady_clock::now();
    BOOST_TEST(img.layers.size() == 5u);
    BOOST_TEST(img.total_layer_bytes() >= std::uint64_t{100} << 20);
    registry_server reg;
    const auto t2 = std::chrono::steady_clock::now();
    push_image(layout.path(), "big", reg, "bench/big:latest");
    const auto t3 = std::chrono::steady_clock::now();
    BOOST_TEST(json::parse(skopeo_inspect(reg, "bench/big:latest")).at("Digest").as_string() ==
               img.manifest.digest);
    BOOST_TEST_MESSAGE("big image: " << img.total_layer_bytes() / (1 << 20) << " MiB in " << img.layers.size()
                                     << " layers; built in " << seconds(t1 - t0) << " s; registry start "
                                     << seconds(reg.startup_time()) << " s; skopeo push " << seconds(t3 - t2)
                                     << " s");
}

BOOST_AUTO_TEST_SUITE_END()
