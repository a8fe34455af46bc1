// A real OCI registry for the image tests: Debian's distribution registry (/usr/bin/docker-registry)
// as a child process of the test, serving HTTPS on a free 127.0.0.1 port with a certificate from a
// CA the test generates (support/test_pki), storing blobs in the test's own directory. Never the
// system service, never port 5000, never the system trust store.
//
//   registry_server reg({.basic_auth = registry_credentials{"alice", "s3cret"}});
//   // ready: https://127.0.0.1:PORT/v2/ answered 401 (auth) or 200 (anonymous)
//   push_image(layout, "v1", reg, "demo/app:v1");              // support/oci_layout.hpp
//   io::https_client client(ex, {.tls = {.ca_file = reg.ca_file()}});
//
// The destructor kills and reaps the registry (its process group) and removes every file it or
// the test wrote there (storage, configuration, certificates, logs), also when a test fails.
#pragma once

#include "support/test_pki.hpp"
#include "support/test_support.hpp"

#include <vmrt/io/process.hpp>

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace vmrt::test {

struct registry_credentials {
    std::string user;
    std::string password;
    /// "user:password", as skopeo's --creds and curl's -u take them.
    std::string joined() const { return user + ":" + password; }
};

/// Bearer-token auth (the Docker token protocol): the registry answers 401 with
/// `WWW-Authenticate: Bearer realm="<realm>",service="<service>",scope="..."` and accepts JWTs
/// whose `iss` is `issuer`, `aud` is `service`, signed by a key whose certificate chains to the
/// test CA (registry_server::token_signing_key / ca_file), e.g. with make_registry_token().
struct registry_token_auth {
    std::string realm;  ///< the token endpoint's URL (served by the test)
    std::string service = "vmrt-test-registry";
    std::string issuer = "vmrt-test-token-issuer";
};

struct registry_options {
    /// Basic auth with this user (htpasswd file with a bcrypt hash made by `htpasswd -B`).
    std::optional<registry_credentials> basic_auth;
    /// Token auth instead (exclusive with basic_auth: the registry takes one access controller).
    std::optional<registry_token_auth> token_auth;
    /// How long to wait for /v2/ to answer.
    std::chrono::seconds start_timeout = std::chrono::seconds(20);
};

class registry_server {
public:
    /// Generates the PKI, writes config.yml and starts the registry; returns once
    /// https://127.0.0.1:PORT/v2/ answers 200 or 401 over TLS verified against the test CA.
    /// Throws std::runtime_error with the registry's log if it exits or does not answer in time.
    explicit registry_server(registry_options options = {});
    registry_server(const registry_server&) = delete;
    registry_server& operator=(const registry_server&) = delete;
    /// Kills and reaps the registry, then removes its directory.
    ~registry_server();

    /// "https://127.0.0.1:PORT"
    std::string url() const;
    /// "127.0.0.1:PORT", the registry part of image references (docker://127.0.0.1:PORT/repo:tag).
    std::string host_port() const;
    std::uint16_t port() const noexcept { return port_; }
    /// The CA that signed the registry's certificate (PEM), for https_client / curl --cacert.
    const std::filesystem::path& ca_file() const noexcept { return pki_.ca_cert; }
    /// A directory holding only ca.crt, for skopeo's --dest-cert-dir/--src-cert-dir/--cert-dir.
    std::filesystem::path cert_dir() const;
    /// The certificate the registry serves, and the key of the CA (which also signs bearer tokens).
    const test_pki& pki() const noexcept { return pki_; }
    /// The basic-auth user, if any.
    const std::optional<registry_credentials>& credentials() const noexcept { return options_.basic_auth; }
    const registry_options& options() const noexcept { return options_; }
    /// Where the registry keeps its blobs and repositories (storage.filesystem.rootdirectory).
    std::filesystem::path storage_dir() const;
    /// The registry's own directory (config, logs, storage); gone after destruction.
    const std::filesystem::path& dir() const noexcept { return dir_.path(); }
    /// PID of the registry process (for leak checks).
    pid_t pid() const noexcept { return process_.pid(); }
    /// The last bytes of the registry's log.
    std::string log_tail(std::size_t bytes = 4000) const;
    /// A private scratch directory of this environment (skopeo's --tmpdir), removed with it.
    std::filesystem::path scratch_dir() const;
    /// How long the constructor took from spawning the registry to the first answer of /v2/.
    std::chrono::steady_clock::duration startup_time() const noexcept { return startup_time_; }

private:
    void write_config() const;
    bool start_once();

    temp_dir dir_;  // declared first: removed last, after the process is gone
    registry_options options_;
    test_pki pki_;
    std::uint16_t port_ = 0;
    boost::asio::io_context ctx_;
    io::process process_;
    std::chrono::steady_clock::duration startup_time_{};
};

/// Runs skopeo (argv after "skopeo", no shell) with --insecure-policy (no dependence on
/// /etc/containers/policy.json) and --tmpdir inside `env`; throws std::runtime_error with its
/// output if it fails. Returns stdout+stderr.
std::string run_skopeo(const registry_server& env, std::vector<std::string> args,
                       std::chrono::seconds limit = std::chrono::seconds(300));

/// `skopeo inspect [--raw] --cert-dir ... [--creds ...] docker://HOST:PORT/<reference>`.
std::string skopeo_inspect(const registry_server& env, const std::string& reference, bool raw = false);

}  // namespace vmrt::test
