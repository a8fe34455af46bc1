#include "support/registry_env.hpp"

#include "support/nginx_server.hpp"

#include <vmrt/io/https_client.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>

namespace vmrt::test {
namespace asio = boost::asio;
namespace fs = std::filesystem;

namespace {

/// The bcrypt line of an htpasswd file, made by Debian's `htpasswd -B` (apache2-utils).
std::string bcrypt_htpasswd_line(const registry_credentials& c) {
    if (c.user.empty() || c.user.find_first_of(":\n") != std::string::npos)
        throw std::invalid_argument("registry user must be non-empty without ':' or newline");
    auto [code, out] = run_to_end("htpasswd", strings("-nbB", c.user, c.password), std::chrono::seconds(30));
    if (code != 0 || out.rfind(c.user + ":$2", 0) != 0)
        throw std::runtime_error("htpasswd -nbB failed (is apache2-utils installed? run tools/setup): " +
                                 out);
    return out.substr(0, out.find('\n')) + "\n";
}

/// YAML double-quoted scalar (paths and URLs of the test directory; no control characters).
std::string quoted(const std::string& s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    return out + "\"";
}

}  // namespace

registry_server::registry_server(registry_options options)
    : options_(std::move(options)), pki_(make_test_pki(dir_ / "pki")) {
    if (options_.basic_auth && options_.token_auth)
        throw std::invalid_argument("registry_server: basic_auth and token_auth are exclusive");
    fs::create_directories(dir_ / "storage");
    fs::create_directories(dir_ / "scratch");
    fs::create_directories(cert_dir());
    // skopeo (containers/image) reads *.crt of a cert dir as CAs; *.cert/*.key would be a client
    // certificate, so the directory holds the CA alone.
    fs::copy_file(pki_.ca_cert, cert_dir() / "ca.crt");
    if (options_.basic_auth) write_file(dir_ / "htpasswd", bcrypt_htpasswd_line(*options_.basic_auth));
    // A free port can be taken between our probe and the registry's bind: try a few.
    for (int attempt = 0; attempt < 5; ++attempt)
        if (start_once()) return;
    throw std::runtime_error("docker-registry did not start after 5 attempts: " + log_tail());
}

registry_server::~registry_server() {
    process_.kill_and_reap();
    // dir_ goes last (declared first).
}

std::string registry_server::url() const { return "https://" + host_port(); }
std::string registry_server::host_port() const { return "127.0.0.1:" + std::to_string(port_); }
fs::path registry_server::cert_dir() const { return dir_ / "certs.d"; }
fs::path registry_server::storage_dir() const { return dir_ / "storage"; }
fs::path registry_server::scratch_dir() const { return dir_ / "scratch"; }
std::string registry_server::log_tail(std::size_t bytes) const {
    return io::read_file_tail(dir_ / "registry.log", bytes);
}

void registry_server::write_config() const {
    const std::string d = dir_.path().string();
    std::string yml = "version: 0.1\n"
                      "log:\n  level: info\n  accesslog:\n    disabled: false\n"
                      "storage:\n  filesystem:\n    rootdirectory: " +
                      quoted(storage_dir().string()) +
                      "\n  delete:\n    enabled: true\n"
                      // Uploads are never purged behind a test's back.
                      "  maintenance:\n    uploadpurging:\n      enabled: false\n"
                      "http:\n  addr: " +
                      quoted(host_port()) +
                      "\n"
                      // A fixed secret silences the "no HTTP secret" warning; it only signs upload state.
                      "  secret: vmrt-test-upload-state\n"
                      "  tls:\n    certificate: " +
                      quoted(pki_.valid.cert.string()) + "\n    key: " + quoted(pki_.valid.key.string()) +
                      "\n";
    if (options_.basic_auth)
        yml +=
            "auth:\n  htpasswd:\n    realm: vmrt-test-registry\n    path: " + quoted(d + "/htpasswd") + "\n";
    if (options_.token_auth) {
        const auto& t = *options_.token_auth;
        // Tokens are verified against the test CA: the issuer signs with the CA's key and sends
        // the CA certificate in the JWT's x5c header (make_registry_token).
        yml += "auth:\n  token:\n    realm: " + quoted(t.realm) + "\n    service: " + quoted(t.service) +
               "\n    issuer: " + quoted(t.issuer) +
               "\n    rootcertbundle: " + quoted(pki_.ca_cert.string()) + "\n";
    }
    write_file(dir_ / "config.yml", yml);
}

bool registry_server::start_once() {
    port_ = free_loopback_port();
    write_config();
    io::process_options opts;
    opts.program = "/usr/bin/docker-registry";
    opts.args = strings("serve", (dir_ / "config.yml").string());
    opts.log_file = dir_ / "registry.log";
    opts.working_dir = dir_.path();
    const auto spawned = std::chrono::steady_clock::now();
    process_ = io::process::spawn(ctx_.get_executor(), opts);

    // Shared with the wait's handler, which may outlive this call (it stays pending on ctx_).
    auto exited = std::make_shared<bool>(false);
    process_.async_wait([exited](error_code ec, exit_status) {
        if (!ec) *exited = true;
    });
    bool ready = false;
    bool done = false;
    std::exception_ptr failure;
    const auto deadline = spawned + options_.start_timeout;
    asio::co_spawn(
        ctx_,
        [&]() -> asio::awaitable<void> {
            auto ex = co_await asio::this_coro::executor;
            io::https_client_options client_opts;
            client_opts.tls.ca_file = pki_.ca_cert;
            client_opts.timeouts.connect = std::chrono::seconds(2);
            client_opts.timeouts.handshake = std::chrono::seconds(2);
            client_opts.timeouts.response = std::chrono::seconds(2);
            client_opts.max_idle_per_origin = 0;
            io::https_client client(ex, client_opts);
            while (!*exited && std::chrono::steady_clock::now() < deadline) {
                std::optional<unsigned> status;
                try {
                    io::http_request req;
                    req.url = io::parse_https_url(url() + "/v2/");
                    auto resp = co_await client.async_send(std::move(req));
                    status = resp.status();
                } catch (const vmrt::error&) {
                    // Not listening yet (connection refused): the registry gives no other signal.
                }
                if (status == 200u || status == 401u) {
                    ready = true;
                    co_return;
                }
                if (status)
                    throw std::runtime_error("docker-registry answered /v2/ with HTTP " +
                                             std::to_string(*status) + ": " + log_tail());
                asio::steady_timer pause(ex, std::chrono::milliseconds(20));
                co_await pause.async_wait(asio::use_awaitable);
            }
        },
        [&](std::exception_ptr e) {
            failure = e;
            done = true;
        });
    // Not ctx_.run(): the pending process wait would keep it running until the registry exits.
    while (!done && ctx_.run_one_for(options_.start_timeout + std::chrono::seconds(5))) {
    }
    if (!done) {
        process_.kill_and_reap();
        throw std::runtime_error("docker-registry readiness probe hung: " + log_tail());
    }
    if (failure) {
        process_.kill_and_reap();
        std::rethrow_exception(failure);
    }
    if (ready) {
        startup_time_ = std::chrono::steady_clock::now() - spawned;
        // The wait set up above stays pending on ctx_ (never run again): the destructor reaps.
        return true;
    }
    const auto log = log_tail();
    process_.kill_and_reap();
    ctx_.restart();
    ctx_.poll();  // completes the wait
    if (log.find("address already in use") != std::string::npos) return false;
    throw std::runtime_error("docker-registry did not answer https://" + host_port() + "/v2/ (" +
                             (*exited ? "it exited" : "timeout") + "): " + log);
}

std::string run_skopeo(const registry_server& env, std::vector<std::string> args,
                       std::chrono::seconds limit) {
    std::vector<std::string> argv = strings("--insecure-policy", "--tmpdir", env.scratch_dir().string());
    argv.insert(argv.end(), args.begin(), args.end());
    std::string command = "skopeo";
    for (const auto& a : argv) command += " " + a;
    auto [code, out] = run_to_end("skopeo", std::move(argv), limit);
    if (code != 0) throw std::runtime_error(command + " failed (exit " + std::to_string(code) + "): " + out);
    return out;
}

std::string skopeo_inspect(const registry_server& env, const std::string& reference, bool raw) {
    auto args = strings("inspect", "--cert-dir", env.cert_dir().string());
    if (raw) args.push_back("--raw");
    if (env.credentials()) {
        args.push_back("--creds");
        args.push_back(env.credentials()->joined());
    } else {
        args.push_back("--no-creds");
    }
    args.push_back("docker://" + env.host_port() + "/" + reference);
    return run_skopeo(env, std::move(args), std::chrono::seconds(60));
}

}  // namespace vmrt::test
