// Pulls from a real registry (Debian's docker-registry over TLS with the test's CA, seeded with
// skopeo from OCI layouts the test builds): the happy path and a cached re-pull, a pinned digest,
// an unknown digest, a blob corrupted in the registry's storage, a multi-platform index, basic
// auth, the bearer-token flow with the test's token endpoint, an expired token refused by the
// registry, and two pulls of one image at once. Against the faulty TLS server standing in for a
// registry: 429 with Retry-After, drops resumed with Range, a token that stops being accepted
// mid-pull (refreshed, or refused again), and the CLI killed mid-layer then run again.
#include "support/faulty_tls_server.hpp"
#include "support/https_test_env.hpp"
#include "support/nginx_server.hpp"
#include "support/oci_layout.hpp"
#include "support/registry_env.hpp"
#include "support/registry_token.hpp"
#include "support/test_support.hpp"

#include <vmrt/image/oci_pull.hpp>
#include <vmrt/io/process.hpp>
#include <vmrt/vm_manager.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/test/unit_test.hpp>

#include <signal.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <thread>

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
    faulty_tls_server_options objects;  // the image at its paths, no faults
    std::unique_ptr<faulty_tls_server> server;

    explicit faulty_registry(std::function<void(faulty_tls_server_options&)> faults) {
        oci_image_builder b;
        b.layer({file("etc/hello", "hello\n")})
            .layer({random_file("data/blob", 4 << 20, 11)}, layer_compression::none);
        img = b.write(layout.path(), "v1");
        objects.identity = env.pki.valid;
        auto object = [&](const std::string& digest) {
            return read_file(blob_path(layout.path(), digest));
        };
        objects.paths["/v2/demo/app/manifests/v1"] = object(img.manifest.digest);
        objects.paths["/v2/demo/app/blobs/" + img.config.digest] = object(img.config.digest);
        for (const auto& l : img.layers) objects.paths["/v2/demo/app/blobs/" + l.digest] = object(l.digest);
        layer_path = "/v2/demo/app/blobs/" + img.layers.back().digest;
        objects.fault_prefix = layer_path;
        restart(std::move(faults));
    }
    /// Replaces the server by a new one (another port) serving the same objects with `faults`.
    void restart(std::function<void(faulty_tls_server_options&)> faults) {
        server.reset();
        auto o = objects;
        faults(o);
        server = std::make_unique<faulty_tls_server>(o);
    }
    std::string host_port() const { return "127.0.0.1:" + std::to_string(server->port()); }
    vmrt::image::image_reference ref() const {
        return vmrt::image::parse_image_reference(host_port() + "/demo/app:v1");
    }
    vmrt::image::tag_ref tag() const {
        return {.registry = host_port(), .repository = "demo/app", .tag = "v1"};
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
    /// Every blob of the image (config, layers) is in `store` and hashes to its digest.
    asio::awaitable<void> expect_stored(const vmrt::image::oci_store& store) const {
        std::vector<std::string> blobs{img.config.digest};
        for (const auto& l : img.layers) blobs.push_back(l.digest);
        for (const auto& digest : blobs) {
            BOOST_TEST_REQUIRE(store.has_blob(digest), digest);
            auto checked = co_await store.verify(digest);
            BOOST_TEST(checked.ok, digest << ": " << checked.problem);
        }
    }
};

/// The names of the entries of `dir` (none if it does not exist).
std::vector<std::string> entries_of(const fs::path& dir) {
    std::vector<std::string> names;
    if (!fs::exists(dir)) return names;
    for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
}

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

// --- bearer tokens that stop being accepted mid-pull ---------------------------------------------

/// Secrets of a pull, none of which may appear in an error message: the password, its base64
/// form sent to the token service (Basic), and every token the token service issued.
std::vector<std::string> secrets_of(const faulty_tls_server& server, const std::string& password) {
    std::vector<std::string> secrets{password};
    for (const auto& t : server.token_requests()) {
        secrets.push_back(t.token);
        if (t.authorization.starts_with("Basic ")) secrets.push_back(t.authorization.substr(6));
    }
    return secrets;
}

BOOST_AUTO_TEST_CASE(a_token_refused_mid_pull_is_fetched_again_and_the_refused_request_repeated) {
    // The registry takes each token for 4 requests (manifest, config, small layer, big layer) and
    // then answers 401 error="invalid_token", as docker-registry answers a token past its exp. The
    // big layer's connection drops after 1 MiB: its resume (Range) is the request refused.
    faulty_registry reg([](faulty_tls_server_options& o) {
        o.token_auth = faulty_token_auth{};
        o.token_auth->uses_per_token = 4;
        o.cut_responses = 1;
        o.cut_after = 1 << 20;
    });
    vmrt::image::oci_store store(dir / "store");
    run_coro(ctx, [&]() -> asio::awaitable<void> {
        auto o = reg.options();
        o.credentials = vmrt::image::registry_credentials{.username = "alice", .password = "pull-s3cret"};
        o.parallel_blobs = 1;  // one request at a time: the 5th is the resume, deterministically
        auto pulled = co_await vmrt::image::pull_image(store, reg.ref(), o);
        BOOST_TEST(pulled.manifest_digest == reg.img.manifest.digest);
        BOOST_TEST(store.resolve_tag(reg.tag()).value_or("") == reg.img.manifest.digest);
        co_await reg.expect_stored(store);
        BOOST_TEST(pulled.resumed == 1u);

        const auto tokens = reg.server->token_requests();
        BOOST_TEST(tokens.size() == 2u);  // the first challenge, then the refusal
        BOOST_TEST(pulled.token_fetches == tokens.size());
        for (const auto& t : tokens) {
            // The credentials go to the token service (with the challenge's service and scope)...
            BOOST_TEST(t.authorization.starts_with("Basic "), t.authorization);
            BOOST_TEST(t.target.find("service=faulty-registry") != std::string::npos, t.target);
            BOOST_TEST(t.target.find("scope=repository") != std::string::npos, t.target);
        }
        // ... and never to the registry, which sees only tokens.
        const auto seen = reg.server->requests();
        for (const auto& q : seen)
            if (q.target.starts_with("/v2/"))
                BOOST_TEST((q.authorization.empty() || q.authorization.starts_with("Bearer ")),
                           q.authorization);

        // The refused request is the layer's resume with the first token; right after the token
        // service's second answer, the same request (same Range) goes again with the new token.
        auto refused = std::find_if(seen.begin(), seen.end(), [](const received_request& q) {
            return q.status == 401 && !q.authorization.empty();
        });
        BOOST_TEST_REQUIRE((refused != seen.end()));
        BOOST_TEST(refused->target == reg.layer_path);
        BOOST_TEST(refused->range == "bytes=1048576-");
        BOOST_TEST(refused->authorization == "Bearer " + tokens[0].token);
        BOOST_TEST_REQUIRE((seen.end() - refused >= 3));
        BOOST_TEST(refused[1].target.starts_with("/token?"), refused[1].target);
        BOOST_TEST(refused[2].target == reg.layer_path);
        BOOST_TEST(refused[2].range == "bytes=1048576-");
        BOOST_TEST(refused[2].authorization == "Bearer " + tokens[1].token);
        BOOST_TEST(refused[2].status == 206u);
        BOOST_TEST(std::count_if(seen.begin(), seen.end(), [](auto& q) { return q.status == 401; }) == 2);
    });
}

BOOST_AUTO_TEST_CASE(tokens_refused_during_parallel_downloads_are_all_fetched_again) {
    // Each token is good for 2 requests, and the layers come 3 at a time: several requests may be
    // refused at once and each fetches a token. Every refused request is repeated with a token
    // issued after the one refused, and succeeds.
    faulty_registry reg([](faulty_tls_server_options& o) {
        o.token_auth = faulty_token_auth{};
        o.token_auth->uses_per_token = 2;
    });
    vmrt::image::oci_store store(dir / "store");
    run_coro(ctx, [&]() -> asio::awaitable<void> {
        auto o = reg.options();
        o.parallel_blobs = 3;
        auto pulled = co_await vmrt::image::pull_image(store, reg.ref(), o);
        BOOST_TEST(pulled.manifest_digest == reg.img.manifest.digest);
        co_await reg.expect_stored(store);
        const auto tokens = reg.server->token_requests();
        BOOST_TEST(tokens.size() >= 2u);
        BOOST_TEST(pulled.token_fetches == tokens.size());
        auto number_of = [&](const std::string& authorization) {
            for (std::size_t i = 0; i < tokens.size(); ++i)
                if (authorization == "Bearer " + tokens[i].token) return i + 1;
            return std::size_t{0};
        };
        const auto seen = reg.server->requests();
        for (auto q = seen.begin(); q != seen.end(); ++q) {
            if (q->status != 401 || q->authorization.empty()) continue;
            auto again = std::find_if(q + 1, seen.end(), [&](const received_request& r) {
                return r.target == q->target && r.range == q->range;
            });
            BOOST_TEST_REQUIRE((again != seen.end()), q->target);
            BOOST_TEST(number_of(again->authorization) > number_of(q->authorization), again->authorization);
            BOOST_TEST((again->status == 200u || again->status == 206u), q->target << ": " << again->status);
        }
    });
}

BOOST_AUTO_TEST_CASE(a_refreshed_token_refused_too_fails_cleanly_and_a_later_pull_completes) {
    // Token 1 works for 4 requests; token 2, fetched when the layer's resume is refused, is refused
    // too: the pull stops with an authentication error that names no secret, tags nothing, and
    // leaves the store so that the next pull resumes the partial layer.
    faulty_registry reg([](faulty_tls_server_options& o) {
        o.token_auth = faulty_token_auth{};
        o.token_auth->uses_per_token = 4;
        o.token_auth->good_tokens = 1;
        o.cut_responses = 1;
        o.cut_after = 1 << 20;
    });
    vmrt::image::oci_store store(dir / "store");
    const std::string password = "pull-s3cret";
    const auto& big = reg.img.layers.back();
    run_coro(ctx, [&]() -> asio::awaitable<void> {
        auto o = reg.options();
        o.credentials = vmrt::image::registry_credentials{.username = "alice", .password = password};
        o.parallel_blobs = 1;
        try {
            co_await vmrt::image::pull_image(store, reg.ref(), o);
            BOOST_FAIL("a refused token cannot pull");
        } catch (const vmrt::error& e) {
            const std::string what = e.what();
            BOOST_TEST((e.code() == vmrt::errc::http_status), what);
            const auto* status = dynamic_cast<const vmrt::io::http_status_error*>(&e);
            BOOST_TEST_REQUIRE(status != nullptr, what);
            BOOST_TEST(status->status() == 401u);
            BOOST_TEST(what.find("authentication failed") != std::string::npos, what);
            BOOST_TEST(what.find("refused the bearer token") != std::string::npos, what);
            BOOST_TEST(what.find(reg.layer_path) != std::string::npos, what);
            for (const auto& secret : secrets_of(*reg.server, password))
                BOOST_TEST(what.find(secret) == std::string::npos, "a secret in: " << what);
            const auto schemes = strings("Bearer ", "Basic ");
            for (const auto& scheme : schemes)
                BOOST_TEST(what.find(scheme) == std::string::npos, "a credential in: " << what);
        }
        BOOST_TEST(reg.server->token_requests().size() == 2u);  // no third try: it would not help
        BOOST_TEST(!store.resolve_tag(reg.tag()));
        BOOST_TEST(!store.has_blob(big.digest));
        BOOST_TEST(store.has_blob(reg.img.config.digest));  // committed blobs are complete and kept
        // What stays: the layer's first MiB, resumable; no lock is left held or on disk.
        const auto hex = digest_hex(big.digest);
        BOOST_TEST(entries_of(store.root() / "tmp") == strings(hex + ".partial"));
        BOOST_TEST(fs::file_size(store.root() / "tmp" / (hex + ".partial")) == 1u << 20);
        BOOST_TEST(entries_of(store.root() / "locks").empty());

        // The registry's token service fixed: the same store pulls the image, resuming the layer.
        reg.restart([](faulty_tls_server_options& fixed) { fixed.token_auth = faulty_token_auth{}; });
        o = reg.options();
        o.credentials = vmrt::image::registry_credentials{.username = "alice", .password = password};
        auto pulled = co_await vmrt::image::pull_image(store, reg.ref(), o);
        BOOST_TEST(pulled.manifest_digest == reg.img.manifest.digest);
        BOOST_TEST(store.resolve_tag(reg.tag()).value_or("") == reg.img.manifest.digest);
        BOOST_TEST(pulled.resumed == 1u);
        BOOST_TEST(reg.ranges_of_layer() == strings("bytes=1048576-"));
        co_await reg.expect_stored(store);
        BOOST_TEST(entries_of(store.root() / "tmp").empty());
        BOOST_TEST(entries_of(store.root() / "locks").empty());
    });
}

BOOST_AUTO_TEST_CASE(the_real_registry_refuses_a_token_expired_mid_pull_and_the_pull_fetches_another) {
    // docker-registry 2.8 accepts a token until 60 s after its exp (distribution's
    // registry/auth/token/token.go: Leeway), so the fake token behaviour above is the quick and
    // exact test. Here the real registry judges real JWTs (signed with the test CA), in a few
    // seconds: the token service (the faulty server's) gives the pull a token whose exp is 57 s
    // in the past, good for 2 to 3 more seconds; the pull stops for 5 s after the manifest (in its
    // progress callback), so the config request comes at least 2 s past the registry's limit.
    const auto token_port = free_loopback_port();
    registry_options ro;
    ro.token_auth = registry_token_auth{};
    ro.token_auth->realm = "https://127.0.0.1:" + std::to_string(token_port) + "/token";
    registry_server reg(ro);
    std::atomic<unsigned> edge_token{0};  // the number of the token issued near its end (0: none)
    faulty_tls_server_options to;
    to.identity = reg.pki().valid;
    to.port = token_port;
    to.token_auth = faulty_token_auth{};
    to.token_auth->issue = [&](unsigned n) {
        registry_token_claims claims;
        claims.access.push_back({"demo/app", strings("pull", "push")});
        if (n == edge_token) claims.clock_offset = -(claims.lifetime + std::chrono::seconds(57));
        return make_registry_token(reg, claims);
    };
    faulty_tls_server token_service(to);
    const auto img = push_demo(reg);  // skopeo, with good tokens
    edge_token = static_cast<unsigned>(token_service.token_requests().size()) + 1;
    vmrt::image::oci_store store(dir / "store");
    run_coro(ctx, [&]() -> asio::awaitable<void> {
        auto o = options(reg);
        bool paused = false;
        o.progress = [&](const vmrt::image::pull_progress& p) {
            if (p.kind != "manifest" || paused) return;
            paused = true;
            std::this_thread::sleep_for(std::chrono::seconds(5));
        };
        auto pulled = co_await vmrt::image::pull_image(store, ref(reg, "demo/app:v1"), o);
        BOOST_TEST(paused);
        BOOST_TEST(pulled.manifest_digest == img.manifest.digest);
        BOOST_TEST(pulled.token_fetches == 2u);
        for (const auto& l : img.layers) BOOST_TEST(store.has_blob(l.digest), l.digest);

        // The leeway itself, the reason for the fake: a token whose exp passed 30 s ago still works.
        registry_token_claims late;
        late.access.push_back({"demo/app", strings("pull")});
        late.clock_offset = -(late.lifetime + std::chrono::seconds(30));
        auto ex = co_await asio::this_coro::executor;
        vmrt::io::https_client_options co;
        co.tls.ca_file = reg.ca_file();
        vmrt::io::https_client client(ex, co);
        vmrt::io::http_request request;
        request.url = vmrt::io::parse_https_url(reg.url() + "/v2/demo/app/manifests/v1");
        request.headers.set(boost::beast::http::field::accept, vmrt::image::media_type::manifest_accept);
        request.headers.set(boost::beast::http::field::authorization,
                            "Bearer " + make_registry_token(reg, late));
        auto response = co_await client.async_send(std::move(request));
        BOOST_TEST(response.status() == 200u);
    });
    BOOST_TEST(token_service.token_requests().size() == edge_token + 1);
    // The refusal was the registry's expiry check, not a signature or audience problem.
    BOOST_TEST(reg.log_tail(1 << 20).find("token not to be used after") != std::string::npos);
}

// --- a pull killed mid-layer, then pulled again ---------------------------------------------------

/// `vmrt image pull` of reg's image into `store`, as a child process of the test. io::process
/// kills and reaps it when destroyed, so a failing test leaves no process behind.
vmrt::io::process spawn_cli(asio::any_io_executor ex, std::vector<std::string> args, const fs::path& log,
                            const fs::path& docker_config) {
    vmrt::io::process_options o;
    o.program = helper_program("VMRT_CLI");
    o.args = std::move(args);
    o.log_file = log;
    o.env_overrides = {{"DOCKER_CONFIG", docker_config.string()}};  // not the machine's credentials
    return vmrt::io::process::spawn(ex, o);
}

/// True once no process of the group is left (the CLI runs in a group of its own).
bool process_group_gone(pid_t group) { return ::kill(-group, 0) != 0 && errno == ESRCH; }

BOOST_AUTO_TEST_CASE(a_cli_pull_killed_mid_layer_leaves_a_partial_that_the_next_pull_resumes) {
    // The big layer's first response trickles (16 KiB every 100 ms: 25 s for its 4 MiB), so the
    // SIGKILL lands inside it: the test waits until the store's partial file holds bytes.
    faulty_registry reg([](faulty_tls_server_options& o) {
        o.throttle_responses = 1;
        o.throttle_chunk = 16 << 10;
        o.throttle_interval = std::chrono::milliseconds(100);
    });
    temp_dir docker_config;  // empty: an anonymous pull
    const auto store_dir = dir / "store";
    const auto& big = reg.img.layers.back();
    const auto partial = store_dir / "tmp" / (digest_hex(big.digest) + ".partial");
    const auto pull_args = strings("image", "pull", "--store", store_dir.string(), "--ca",
                                   reg.env.pki.ca_cert.string(), reg.host_port() + "/demo/app:v1");
    run_coro(
        ctx,
        [&]() -> asio::awaitable<void> {
            auto ex = co_await asio::this_coro::executor;
            auto killed = spawn_cli(ex, pull_args, dir / "pull1.out", docker_config.path());
            const pid_t killed_group = killed.pid();
            asio::steady_timer poll(ex);
            const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
            for (;;) {
                std::error_code ec;
                const auto size = fs::file_size(partial, ec);
                if (!ec && size > 0) break;
                BOOST_TEST_REQUIRE((std::chrono::steady_clock::now() < deadline),
                                   "no partial layer yet: " << read_file(dir / "pull1.out"));
                poll.expires_after(std::chrono::milliseconds(10));
                co_await poll.async_wait(asio::use_awaitable);
            }
            killed.signal(SIGKILL);
            auto [ec1, status1] = co_await killed.async_wait(asio::as_tuple(asio::use_awaitable));
            BOOST_TEST(!ec1);
            BOOST_TEST(status1.signaled, status1.to_string());
            BOOST_TEST(status1.signal == SIGKILL);
            BOOST_TEST(process_group_gone(killed_group));

            // No tag, no layer; the partial and the killed process's lock file (its flock went
            // with the process) stay.
            vmrt::image::oci_store store(store_dir);
            BOOST_TEST(!store.resolve_tag(reg.tag()));
            BOOST_TEST(!store.has_blob(big.digest));
            const auto kept = fs::file_size(partial);
            BOOST_TEST(kept > 0u);
            BOOST_TEST(kept < big.size);

            auto again = spawn_cli(ex, pull_args, dir / "pull2.out", docker_config.path());
            const pid_t again_group = again.pid();
            auto [ec2, status2] = co_await again.async_wait(asio::as_tuple(asio::use_awaitable));
            const auto output = read_file(dir / "pull2.out");
            BOOST_TEST(status2.success(), status2.to_string() << ": " << output);
            BOOST_TEST(process_group_gone(again_group));
            BOOST_TEST(output.find("manifest: " + reg.img.manifest.digest) != std::string::npos, output);
            // The layer was asked for twice: from byte 0 by the killed pull, from where its
            // partial ended by the next one (not from 0 again).
            BOOST_TEST(reg.ranges_of_layer() == strings("", "bytes=" + std::to_string(kept) + "-"));
            BOOST_TEST(store.resolve_tag(reg.tag()).value_or("") == reg.img.manifest.digest);
            co_await reg.expect_stored(store);

            auto verify = spawn_cli(ex, strings("image", "verify", "--store", store_dir.string()),
                                    dir / "verify.out", docker_config.path());
            auto [ec3, status3] = co_await verify.async_wait(asio::as_tuple(asio::use_awaitable));
            const auto verified = read_file(dir / "verify.out");
            BOOST_TEST(status3.success(), status3.to_string() << ": " << verified);
            BOOST_TEST(verified.find("4 blobs") != std::string::npos,
                       verified);  // manifest, config, 2 layers
            BOOST_TEST(verified.find(" 0 corrupt") != std::string::npos, verified);

            // Nothing temporary is left: no partial, no lock, nothing in blobs/ but the blobs.
            BOOST_TEST(entries_of(store_dir / "tmp").empty());
            BOOST_TEST(entries_of(store_dir / "locks").empty());
            auto expected = strings(digest_hex(reg.img.manifest.digest), digest_hex(reg.img.config.digest));
            for (const auto& l : reg.img.layers) expected.push_back(digest_hex(l.digest));
            std::sort(expected.begin(), expected.end());
            BOOST_TEST(entries_of(store_dir / "blobs" / "sha256") == expected);
        },
        std::chrono::seconds(60));
}

BOOST_AUTO_TEST_SUITE_END()
