// Registry credentials from config.json (lib/image/registry_credentials.cpp) and through real
// docker-credential-* helper processes (lib/image/credential_helper.cpp): shell-script helpers
// written by the test into its temp dir. Secrets must never appear in an error message.
#include "support/test_support.hpp"

#include <vmrt/error.hpp>
#include <vmrt/image/registry_credentials.hpp>

#include <boost/test/unit_test.hpp>

#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace {

namespace img = vmrt::image;
using vmrt::test::run_coro;
using vmrt::test::temp_dir;
using vmrt::test::write_file;

const std::string secret = "S3cr3t-P4ss";

/// Writes an executable docker-credential-<name> script into `dir`.
void write_helper(const temp_dir& dir, const std::string& name, const std::string& body) {
    const auto file = dir / ("docker-credential-" + name);
    write_file(file, "#!/bin/sh\n" + body);
    ::chmod(file.c_str(), 0755);
}

img::registry_credentials load(const std::string& registry, const img::credential_options& options) {
    img::registry_credentials out;
    run_coro([&]() -> boost::asio::awaitable<void> {
        const img::credential_options opts = options;
        out = co_await img::load_registry_credentials(registry, opts);
    });
    return out;
}

/// The error `load` fails with; the test fails if it succeeds.
vmrt::error load_error(const std::string& registry, const img::credential_options& options) {
    try {
        load(registry, options);
    } catch (const vmrt::error& e) {
        return e;
    }
    BOOST_TEST_FAIL("credentials for " << registry << " were loaded");
    throw std::logic_error("unreachable");
}

}  // namespace

BOOST_AUTO_TEST_SUITE(registry_credentials_test)

BOOST_AUTO_TEST_CASE(auths_entries_and_host_matching) {
    // "dXNlcjpTM2NyM3QtUDRzcw==" is base64("user:S3cr3t-P4ss").
    const auto config = img::parse_docker_config(R"({
        "auths": {
            "https://index.docker.io/v1/": {"auth": "dXNlcjpTM2NyM3QtUDRzcw=="},
            "https://ghcr.io/v2/": {"username": "gh", "password": "pw"},
            "localhost:5000": {"identitytoken": "refresh"}
        },
        "HttpHeaders": {"User-Agent": "x"}
    })");
    const auto hub = img::find_credential_source(config, "docker.io");
    BOOST_TEST(hub.helper.empty());
    BOOST_TEST(hub.server_url == "https://index.docker.io/v1/");
    BOOST_TEST(hub.from_config.username == "user");
    BOOST_TEST(hub.from_config.password == secret);
    BOOST_TEST(img::find_credential_source(config, "registry-1.docker.io").from_config.username == "user");
    const auto ghcr = img::find_credential_source(config, "ghcr.io");
    BOOST_TEST(ghcr.from_config.username == "gh");
    BOOST_TEST(ghcr.from_config.password == "pw");
    BOOST_TEST(img::find_credential_source(config, "localhost:5000").from_config.identity_token == "refresh");
    BOOST_TEST(img::find_credential_source(config, "quay.io").from_config.anonymous());
    BOOST_TEST(img::find_credential_source(config, "localhost:5001").from_config.anonymous());

    BOOST_TEST(img::registry_hostname("HTTPS://Index.Docker.IO/v1/") == "index.docker.io");
    BOOST_TEST(img::registry_hostname("http://localhost:5000/v2") == "localhost:5000");
    BOOST_TEST(img::credential_server_url("index.docker.io") == "https://index.docker.io/v1/");
    BOOST_TEST(img::credential_server_url("ghcr.io") == "ghcr.io");
}

BOOST_AUTO_TEST_CASE(helpers_take_precedence_per_registry) {
    const auto config = img::parse_docker_config(R"({
        "auths": {"ghcr.io": {"auth": "dXNlcjpTM2NyM3QtUDRzcw=="}, "quay.io": {"auth": "dXNlcjpTM2NyM3QtUDRzcw=="}},
        "credHelpers": {"ghcr.io": "gh", "index.docker.io": "hub"},
        "credsStore": "desktop"
    })");
    BOOST_TEST(img::find_credential_source(config, "ghcr.io").helper == "gh");
    BOOST_TEST(img::find_credential_source(config, "docker.io").helper == "hub");
    BOOST_TEST(img::find_credential_source(config, "quay.io").helper == "desktop");  // the default store
}

BOOST_AUTO_TEST_CASE(bad_configs_never_show_secrets) {
    const std::vector<std::string> configs = {
        R"({"auths": {"x": {"auth": "not base64 )" + secret + R"("}}})",
        R"({"auths": {"x": {"auth": "UzNjcjN0LVA0c3M="}}})",  // base64 of the secret, without ':'
        R"({"auths": {"x": {"password": 5}}})",
        R"({"auths": {"x": ")" + secret + R"("}})",
        R"({"auths": [")" + secret + R"("]})",
        R"({"auths": {"x": {"password": ")" + secret + R"("}})",  // cut JSON
        R"({"credHelpers": {"x": 1}})",
    };
    for (const auto& text : configs) {
        BOOST_TEST_CONTEXT(text) {
            try {
                (void)img::parse_docker_config(text);
                BOOST_TEST(false, "accepted");
            } catch (const vmrt::error& e) {
                BOOST_TEST(e.code() == make_error_code(vmrt::errc::invalid_spec));
                BOOST_TEST(e.diag().message.find(secret) == std::string::npos, e.diag().message);
                BOOST_TEST(std::string(e.what()).find(secret) == std::string::npos);
            }
        }
    }
}

BOOST_AUTO_TEST_CASE(missing_config_is_anonymous_and_docker_config_env_is_honoured) {
    temp_dir dir;
    img::credential_options opts;
    opts.config_file = dir / "absent.json";
    BOOST_TEST(load("ghcr.io", opts).anonymous());

    const char* old = std::getenv("DOCKER_CONFIG");
    const std::string saved = old ? old : "";
    ::setenv("DOCKER_CONFIG", dir.path().c_str(), 1);
    BOOST_TEST(img::default_docker_config_path() == dir / "config.json");
    write_file(dir / "config.json", R"({"auths": {"ghcr.io": {"username": "u", "password": "p"}}})");
    const auto creds = load("ghcr.io", {});
    if (old)
        ::setenv("DOCKER_CONFIG", saved.c_str(), 1);
    else
        ::unsetenv("DOCKER_CONFIG");
    BOOST_TEST(creds.username == "u");
    BOOST_TEST(creds.password == "p");
}

BOOST_AUTO_TEST_CASE(helper_protocol) {
    temp_dir dir;
    // The helper checks its argument and its stdin (the server URL, no newline) and records it.
    write_helper(dir, "test",
                 "[ \"$1\" = get ] || exit 3\n"
                 "url=$(cat)\n"
                 "printf '%s' \"$url\" > \"$(dirname \"$0\")/asked\"\n"
                 "case \"$url\" in\n"
                 "  https://index.docker.io/v1/) printf "
                 "'{\"ServerURL\":\"%s\",\"Username\":\"hubuser\",\"Secret\":\"" +
                     secret +
                     "\"}' \"$url\";;\n"
                     "  ghcr.io) printf "
                     "'{\"ServerURL\":\"ghcr.io\",\"Username\":\"<token>\",\"Secret\":\"idtok\"}';;\n"
                     "  *) echo 'credentials not found in native keychain'; exit 1;;\n"
                     "esac\n");
    write_file(dir / "config.json", R"({"credsStore": "test"})");
    img::credential_options opts;
    opts.config_file = dir / "config.json";
    opts.helper_dir = dir.path();

    auto creds = load("docker.io", opts);
    BOOST_TEST(vmrt::test::read_file(dir / "asked") == "https://index.docker.io/v1/");
    BOOST_TEST(creds.username == "hubuser");
    BOOST_TEST(creds.password == secret);

    creds = load("ghcr.io", opts);
    BOOST_TEST(creds.username.empty());
    BOOST_TEST(creds.identity_token == "idtok");

    BOOST_TEST(load("quay.io", opts).anonymous());  // "credentials not found": anonymous, not an error
}

BOOST_AUTO_TEST_CASE(helper_found_in_path) {
    temp_dir dir;
    write_helper(dir, "pathtest", "cat >/dev/null; echo '{\"Username\":\"p\",\"Secret\":\"q\"}'\n");
    write_file(dir / "config.json", R"({"credHelpers": {"example.com": "pathtest"}})");
    const std::string old_path = std::getenv("PATH") ? std::getenv("PATH") : "";
    ::setenv("PATH", (dir.path().native() + ":" + old_path).c_str(), 1);
    img::credential_options opts;
    opts.config_file = dir / "config.json";
    img::registry_credentials creds;
    try {
        creds = load("example.com", opts);
    } catch (...) {
        ::setenv("PATH", old_path.c_str(), 1);
        throw;
    }
    ::setenv("PATH", old_path.c_str(), 1);
    BOOST_TEST(creds.username == "p");
    BOOST_TEST(creds.password == "q");
}

BOOST_AUTO_TEST_CASE(helper_failures_are_clear_and_never_leak_the_secret) {
    temp_dir dir;
    write_helper(dir, "broken", "cat >/dev/null; echo 'keychain locked'; exit 2\n");
    write_helper(dir, "badjson",
                 "cat >/dev/null; echo '{\"Username\":\"u\",\"Secret\":\"" + secret + "\"'\n");
    write_helper(dir, "badtype", "cat >/dev/null; echo '{\"Username\":7,\"Secret\":\"" + secret + "\"}'\n");
    write_helper(dir, "slow", "cat >/dev/null; exec sleep 30\n");
    img::credential_options opts;
    opts.config_file = dir / "config.json";
    opts.helper_dir = dir.path();
    opts.helper_timeout = std::chrono::milliseconds(500);

    const auto with_helper = [&](const std::string& name) {
        write_file(dir / "config.json", R"({"credsStore": ")" + name + R"("})");
        return load_error("ghcr.io", opts);
    };
    auto e = with_helper("broken");
    BOOST_TEST(e.code() == make_error_code(vmrt::errc::command_failed));
    BOOST_TEST(e.diag().message.find("exit code 2") != std::string::npos, e.diag().message);
    BOOST_TEST(e.diag().message.find("keychain locked") != std::string::npos, e.diag().message);

    for (const std::string name : {"badjson", "badtype"}) {
        e = with_helper(name);
        BOOST_TEST(e.code() == make_error_code(vmrt::errc::protocol_error));
        BOOST_TEST(e.diag().message.find(secret) == std::string::npos, e.diag().message);
    }

    e = with_helper("missing");
    BOOST_TEST(e.code() == make_error_code(vmrt::errc::command_failed));
    BOOST_TEST(e.diag().message.find("docker-credential-missing") != std::string::npos, e.diag().message);

    e = with_helper("../../bin/sh");
    BOOST_TEST(e.code() == make_error_code(vmrt::errc::invalid_spec));

    const auto start = std::chrono::steady_clock::now();
    e = with_helper("slow");
    BOOST_TEST(e.code() == make_error_code(vmrt::errc::timeout));
    BOOST_TEST((std::chrono::steady_clock::now() - start < std::chrono::seconds(10)));
}

BOOST_AUTO_TEST_SUITE_END()
