// Pulls from a real registry (Debian's docker-registry over TLS with the test's CA, seeded with
// skopeo from OCI layouts the test builds): the happy path and a cached re-pull, a pinned digest,
// an unknown digest, a blob corrupted in the registry's storage, a multi-platform index, basic
// auth, the bearer-token flow with the test's token endpoint, and two pulls of one image at once.
#include "support/faulty_tls_server.hpp"
#include "support/https_test_env.hpp"
#include "support/nginx_server.hpp"
#include "support/oci_layout.hpp"
#include "support/registry_env.hpp"
#include "support/registry_token.hpp"
#include "support/test_support.hpp"

#include <vmrt/image/oci_pull.hpp>
#include <vmrt/vm_manager.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/test/unit_test.hpp>

#include <filesystem>
#include <fstream>

namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace vmrt::test;
using namespace asio::experimental::awaitable_operators;

struct fixture {
    temp_dir dir;
    asio::io_context ctx;

    vmrt::image::pull_options options(const registry_server& reg) {
        vmrt::image::pull_options o;
        o.client.tls.ca_file = reg.ca_file();
        o.platform = vmrt::image::parse_platform_spec("linux/amd64");
        o.credentials = vmrt::image::registry_credentials{};  // anonymous unless a test says otherwise
        return o;
    }

    vmrt::image::image_reference ref(const registry_server& reg, const std::string& rest) {
        return vmrt::image::parse_image_reference(reg.host_port() + "/" + rest);
    }

    // A three-layer image (gzip, zstd, uncompressed) with a whiteout; pushed as demo/app:v1.
    oci_image push_demo(const registry_server& reg, const std::string& repo_tag = "demo/app:v1") {
        temp_dir layout;
        oci_image_builder b;
        b.layer({vmrt::test::dir("etc"), file("etc/hello", "hello\n"), file("etc/old", "old\n")})
            .layer({whiteout("etc/old"), file("etc/new", "new\n")}, layer_compression::zstd)
            .layer({random_file("data/blob", 3 << 20, 7)}, layer_compression::none);
        auto img = b.write(layout.path(), "v1");
        push_image(layout.path(), "v1", reg, repo_tag);
        return img;
    }
};

std::string digest_hex(const std::string& digest) { return digest.substr(7); }

}  // namespace

BOOST_FIXTURE_TEST_SUITE(oci_pull_test, fixture)

BOOST_AUTO_TEST_CASE(an_image_is_pulled_verified_and_tagged_then_served_from_the_store) {
    registry_server reg;
    const auto img = push_demo(reg);
    vmrt::image::oci_store store(dir / "store");
    run_coro(ctx, [&]() -> asio::awaitable<void> {
        std::vector<vmrt::image::pull_progress> seen;
        auto o = options(reg);
        o.progress = [&](const vmrt::image::pull_progress& p) {
            seen.push_back(p);
        };
        auto pulled = co_await vmrt::image::pull_image(store, ref(reg, "demo/app:v1"), o);
        BOOST_TEST(pulled.manifest_digest == img.manifest.digest);
        BOOST_TEST(pulled.manifest.layers.size() == 3u);
        BOOST_TEST(pulled.blobs_downloaded == 4u);  // config + 3 layers
        BOOST_TEST(pulled.config.diff_ids == img.diff_ids);
        for (const auto& l : img.layers) BOOST_TEST(store.has_blob(l.digest), l.digest);
        BOOST_TEST(store.has_blob(img.config.digest));
        BOOST_TEST(store.has_blob(img.manifest.digest));
        auto tagged = store.resolve_tag({.registry = reg.host_port(), .repository = "demo/app", .tag = "v1"});
        BOOST_TEST(tagged.value_or("") == img.manifest.digest);
        // Progress: every layer reported, ending finished at its size.
        for (const auto& l : img.layers) {
            auto last =
                std::find_if(seen.rbegin(), seen.rend(), [&](auto& p) { return p.digest == l.digest; });
            BOOST_TEST_REQUIRE((last != seen.rend()));
            BOOST_TEST(last->finished);
            BOOST_TEST(last->done == l.size);
        }

        auto again = co_await vmrt::image::pull_image(store, ref(reg, "demo/app:v1"), options(reg));
        BOOST_TEST(again.blobs_downloaded == 0u);
        BOOST_TEST(again.blobs_cached == 4u);
        BOOST_TEST(again.bytes_downloaded == 0u);
    });
}

BOOST_AUTO_TEST_CASE(the_manager_pulls_into_its_store_with_progress_on_the_event_stream) {
    registry_server reg;
    const auto img = push_demo(reg);
    vmrt::manager_options mo;
    mo.state_dir = dir / "state";
    vmrt::vm_manager manager(ctx.get_executor(), mo);
    run_coro(ctx, [&]() -> asio::awaitable<void> {
        auto sub = manager.subscribe();
        auto [ec, pulled] = co_await manager.async_pull_image(reg.host_port() + "/demo/app:v1", options(reg),
                                                              asio::as_tuple(asio::use_awaitable));
        BOOST_TEST_REQUIRE(!ec, ec.message());
        BOOST_TEST(pulled.manifest_digest == img.manifest.digest);
        const std::string subject = "image:" + reg.host_port() + "/demo/app:v1";
        std::map<std::string, std::vector<vmrt::transfer_progress>> by_blob;
        for (;;) {
            auto [sec, ev] = co_await sub.async_next(asio::as_tuple(asio::use_awaitable));
            BOOST_TEST_REQUIRE(!sec);
            BOOST_TEST(ev.vm == subject);
            if (ev.kind == vmrt::event_kind::note) {
                BOOST_TEST(ev.reason.find("pulled: manifest " + img.manifest.digest) != std::string::npos,
                           ev.reason);
                break;
            }
            BOOST_TEST_REQUIRE((ev.kind == vmrt::event_kind::transfer));
            BOOST_TEST_REQUIRE(ev.transfer.has_value());
            by_blob[ev.transfer->object].push_back(*ev.transfer);
        }
        for (const auto& l : img.layers) {
            const auto& seen = by_blob[l.digest];
            BOOST_TEST_REQUIRE(!seen.empty(), l.digest);
            BOOST_TEST(seen.back().finished);
            BOOST_TEST(seen.back().done == l.size);
            BOOST_TEST(seen.size() <= 12u);  // a few per blob, not one per chunk
        }
        BOOST_TEST(by_blob[img.layers.back().digest].size() >= 3u);  // the 3 MiB layer shows progress
        BOOST_TEST(
            fs::exists(dir / "state" / "images" / "blobs" / "sha256" / digest_hex(img.manifest.digest)));
    });
}

BOOST_AUTO_TEST_CASE(a_pinned_digest_must_match_and_an_unknown_one_is_not_found) {
    registry_server reg;
    const auto img = push_demo(reg);
    vmrt::image::oci_store store(dir / "store");
    run_coro(ctx, [&]() -> asio::awaitable<void> {
        auto pinned = co_await vmrt::image::pull_image(store, ref(reg, "demo/app@" + img.manifest.digest),
                                                       options(reg));
        BOOST_TEST(pinned.manifest_digest == img.manifest.digest);
        const std::string other = "sha256:" + std::string(64, 'a');
        try {
            co_await vmrt::image::pull_image(store, ref(reg, "demo/app@" + other), options(reg));
            BOOST_FAIL("an unknown digest cannot be pulled");
        } catch (const vmrt::error& e) {
            BOOST_TEST((e.code() == vmrt::errc::http_status), e.what());
            BOOST_TEST(std::string(e.what()).find("404") != std::string::npos, e.what());
        }
    });
}

BOOST_AUTO_TEST_CASE(a_blob_corrupted_in_the_registry_is_refused_and_never_stored) {
    registry_server reg;
    const auto img = push_demo(reg);
    // Flip a byte of the first layer in the registry's own storage: the registry serves it as is.
    const auto& layer = img.layers.front();
    const auto data = reg.storage_dir() / "docker/registry/v2/blobs/sha256" /
                      digest_hex(layer.digest).substr(0, 2) / digest_hex(layer.digest) / "data";
    BOOST_TEST_REQUIRE(fs::exists(data));
    {
        std::fstream f(data, std::ios::in | std::ios::out | std::ios::binary);
        f.seekp(20);
        f.put('\x5a');
    }
    vmrt::image::oci_store store(dir / "store");
    run_coro(ctx, [&]() -> asio::awaitable<void> {
        try {
            co_await vmrt::image::pull_image(store, ref(reg, "demo/app:v1"), options(reg));
            BOOST_FAIL("a corrupted layer must not be accepted");
        } catch (const vmrt::error& e) {
            BOOST_TEST((e.code() == vmrt::errc::digest_mismatch), e.what());
        }
        BOOST_TEST(!store.has_blob(layer.digest));
        BOOST_TEST(!store.resolve_tag({.registry = reg.host_port(), .repository = "demo/app", .tag = "v1"}));
    });
}

BOOST_AUTO_TEST_CASE(the_platform_is_chosen_from_an_index) {
    registry_server reg;
    temp_dir layout;
    auto multi = write_multi_platform_index(layout.path(), "multi");
    push_image(layout.path(), "multi", reg, "demo/multi:v1", true);
    vmrt::image::oci_store store(dir / "store");
    run_coro(ctx, [&]() -> asio::awaitable<void> {
        auto o = options(reg);
        o.platform = vmrt::image::parse_platform_spec("linux/arm64");
        auto arm = co_await vmrt::image::pull_image(store, ref(reg, "demo/multi:v1"), o);
        BOOST_TEST(arm.index_digest == multi.index.digest);
        BOOST_TEST(arm.manifest_digest == multi.arm64.manifest.digest);
        auto amd = co_await vmrt::image::pull_image(store, ref(reg, "demo/multi:v1"), options(reg));
        BOOST_TEST(amd.manifest_digest == multi.amd64.manifest.digest);
        o.platform = vmrt::image::parse_platform_spec("linux/s390x");
        try {
            co_await vmrt::image::pull_image(store, ref(reg, "demo/multi:v1"), o);
            BOOST_FAIL("no s390x image in the index");
        } catch (const vmrt::error& e) {
            BOOST_TEST((e.code() == vmrt::errc::not_found), e.what());
        }
    });
}

BOOST_AUTO_TEST_CASE(basic_auth_uses_the_configured_credentials) {
    registry_options ro;
    ro.basic_auth = registry_credentials{"alice", "s3cret"};
    registry_server reg(ro);
    const auto img = push_demo(reg);
    vmrt::image::oci_store store(dir / "store");
    run_coro(ctx, [&]() -> asio::awaitable<void> {
        try {
            co_await vmrt::image::pull_image(store, ref(reg, "demo/app:v1"), options(reg));
            BOOST_FAIL("anonymous pulls must be refused");
        } catch (const vmrt::error& e) {
            BOOST_TEST(std::string(e.what()).find("user name and password") != std::string::npos, e.what());
        }
        auto o = options(reg);
        o.credentials = vmrt::image::registry_credentials{.username = "alice", .password = "s3cret"};
        auto pulled = co_await vmrt::image::pull_image(store, ref(reg, "demo/app:v1"), o);
        BOOST_TEST(pulled.manifest_digest == img.manifest.digest);
        o.credentials = vmrt::image::registry_credentials{.username = "alice", .password = "wrong"};
        vmrt::image::oci_store other(dir / "other");
        try {
            co_await vmrt::image::pull_image(other, ref(reg, "demo/app:v1"), o);
            BOOST_FAIL("wrong credentials must be refused");
        } catch (const vmrt::error& e) {
            BOOST_TEST(std::string(e.what()).find("refused the credentials") != std::string::npos, e.what());
            BOOST_TEST(std::string(e.what()).find("wrong") == std::string::npos, "a secret in: " << e.what());
        }
    });
}

BOOST_AUTO_TEST_CASE(the_bearer_token_flow_fetches_a_token_from_the_realm) {
    const auto token_port = free_loopback_port();
    registry_options ro;
    ro.token_auth = registry_token_auth{};
    ro.token_auth->realm = "https://127.0.0.1:" + std::to_string(token_port) + "/token";
    registry_server reg(ro);
    registry_token_claims claims;
    claims.access.push_back({"demo/app", strings("pull", "push")});
    const auto token = make_registry_token(reg, claims);
    temp_dir nginx_dir;
    const std::string server = token_endpoint_server_block(reg, token_port, token);
    nginx_server nginx(ctx.get_executor(), nginx_dir.path(), server);
    run_coro(ctx, [&]() -> asio::awaitable<void> {
        std::vector<std::uint16_t> ports{token_port};
        co_await nginx.async_wait_ready(ports);
    });
    const auto img = push_demo(reg);
    vmrt::image::oci_store store(dir / "store");
    run_coro(ctx, [&]() -> asio::awaitable<void> {
        auto pulled = co_await vmrt::image::pull_image(store, ref(reg, "demo/app:v1"), options(reg));
        BOOST_TEST(pulled.manifest_digest == img.manifest.digest);
        BOOST_TEST(pulled.token_fetches == 1u);
    });
}

BOOST_AUTO_TEST_CASE(two_pulls_of_one_image_at_once_share_the_store) {
    registry_server reg;
    const auto img = push_demo(reg);
    vmrt::image::oci_store store(dir / "store");
    run_coro(ctx, [&]() -> asio::awaitable<void> {
        auto r = ref(reg, "demo/app:v1");
        auto o = options(reg);
        auto first = vmrt::image::pull_image(store, r, o);
        auto second = vmrt::image::pull_image(store, r, o);
        auto [a, b] = co_await (std::move(first) && std::move(second));
        BOOST_TEST(a.manifest_digest == img.manifest.digest);
        BOOST_TEST(b.manifest_digest == img.manifest.digest);
        // Each blob was written once: one pull waited for the other's lock and found it present.
        BOOST_TEST(a.blobs_downloaded + b.blobs_downloaded == 4u);
        BOOST_TEST(a.blobs_cached + b.blobs_cached == 4u);
        for (const auto& l : img.layers) BOOST_TEST(store.has_blob(l.digest));
    });
}

// A registry that misbehaves on purpose: the faulty TLS server serving one image's objects at
// their /v2/ paths, with faults on the big layer only.
struct faulty_registry {
    https_test_env env{16};
    temp_dir layout;
    oci_image img;
    std::string layer_path;
    std::unique_ptr<faulty_tls_server> server;

    explicit faulty_registry(std::function<void(faulty_tls_server_options&)> faults) {
        oci_image_builder b;
        b.layer({file("etc/hello", "hello\n")})
            .layer({random_file("data/blob", 4 << 20, 11)}, layer_compression::none);
        img = b.write(layout.path(), "v1");
        faulty_tls_server_options o{.identity = env.pki.valid};
        auto object = [&](const std::string& digest) {
            return read_file(blob_path(layout.path(), digest));
        };
        o.paths["/v2/demo/app/manifests/v1"] = object(img.manifest.digest);
        o.paths["/v2/demo/app/blobs/" + img.config.digest] = object(img.config.digest);
        for (const auto& l : img.layers) o.paths["/v2/demo/app/blobs/" + l.digest] = object(l.digest);
        layer_path = "/v2/demo/app/blobs/" + img.layers.back().digest;
        o.fault_prefix = layer_path;
        faults(o);
        server = std::make_unique<faulty_tls_server>(o);
    }
    vmrt::image::image_reference ref() const {
        return vmrt::image::parse_image_reference("127.0.0.1:" + std::to_string(server->port()) +
                                                  "/demo/app:v1");
    }
    vmrt::image::pull_options options() const {
        vmrt::image::pull_options o;
        o.client = env.client_options();
        o.credentials = vmrt::image::registry_credentials{};
        o.retry.initial_delay = std::chrono::milliseconds(20);
        return o;
    }
    std::vector<std::string> ranges_of_layer() const {
        std::vector<std::string> r;
        for (const auto& q : server->requests())
            if (q.target == layer_path) r.push_back(q.range);
        return r;
    }
};

BOOST_AUTO_TEST_CASE(a_busy_registry_is_asked_again_after_retry_after) {
    faulty_registry reg([](faulty_tls_server_options& o) {
        o.busy_responses = 2;
        o.retry_after = "1";
    });
    vmrt::image::oci_store store(dir / "store");
    run_coro(ctx, [&]() -> asio::awaitable<void> {
        const auto t0 = std::chrono::steady_clock::now();
        auto pulled = co_await vmrt::image::pull_image(store, reg.ref(), reg.options());
        BOOST_TEST(pulled.busy_retries == 2u);
        BOOST_TEST(
            (std::chrono::steady_clock::now() - t0 >= std::chrono::seconds(2)));  // Retry-After honoured
        BOOST_TEST(store.has_blob(reg.img.layers.back().digest));
        BOOST_TEST(reg.ranges_of_layer().size() == 3u);
    });
}

BOOST_AUTO_TEST_CASE(a_dropped_layer_download_resumes_with_range) {
    faulty_registry reg([](faulty_tls_server_options& o) {
        o.cut_responses = 2;
        o.cut_after = 1 << 20;
    });
    vmrt::image::oci_store store(dir / "store");
    run_coro(ctx, [&]() -> asio::awaitable<void> {
        auto pulled = co_await vmrt::image::pull_image(store, reg.ref(), reg.options());
        BOOST_TEST(pulled.resumed == 2u);
        auto ranges = reg.ranges_of_layer();
        BOOST_TEST_REQUIRE(ranges.size() == 3u);
        BOOST_TEST(ranges[0].empty());
        BOOST_TEST(ranges[1] == "bytes=1048576-");
        BOOST_TEST(ranges[2] == "bytes=2097152-");
        BOOST_TEST(store.has_blob(reg.img.layers.back().digest));  // committed: the digest matched
    });
}

BOOST_AUTO_TEST_CASE(a_failed_pull_leaves_a_partial_that_the_next_pull_resumes) {
    // The first pull gives up after the drop (no resume allowed), as a killed pull would stop;
    // the store keeps the partial layer, and the next pull asks only for the rest.
    faulty_registry reg([](faulty_tls_server_options& o) {
        o.cut_responses = 1;
        o.cut_after = 1 << 20;
    });
    vmrt::image::oci_store store(dir / "store");
    run_coro(ctx, [&]() -> asio::awaitable<void> {
        auto o = reg.options();
        o.max_resume_attempts = 0;
        try {
            co_await vmrt::image::pull_image(store, reg.ref(), o);
            BOOST_FAIL("the first pull cannot complete");
        } catch (const vmrt::error& e) {
            BOOST_TEST((e.code() == vmrt::errc::incomplete_body), e.what());
        }
        BOOST_TEST(!store.has_blob(reg.img.layers.back().digest));
        BOOST_TEST(!store.resolve_tag({.registry = reg.ref().domain, .repository = "demo/app", .tag = "v1"}));
        auto pulled = co_await vmrt::image::pull_image(store, reg.ref(), reg.options());
        BOOST_TEST(pulled.resumed == 1u);  // from the store's partial file
        auto ranges = reg.ranges_of_layer();
        BOOST_TEST_REQUIRE(ranges.size() == 2u);
        BOOST_TEST(ranges[1] == "bytes=1048576-");
        BOOST_TEST(store.has_blob(reg.img.layers.back().digest));
    });
}

BOOST_AUTO_TEST_SUITE_END()
