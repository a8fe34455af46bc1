// Registry credentials from Docker's client configuration (~/.docker/config.json, or
// $DOCKER_CONFIG/config.json), the way `docker pull` finds them:
//  * credHelpers[<registry host>] names a credential helper for that registry; otherwise
//    credsStore names the default helper; a helper is run as `docker-credential-<name> get` with
//    the server URL on stdin and answers {"ServerURL","Username","Secret"} on stdout (Username
//    "<token>" means Secret is an identity token). A helper that says "credentials not found"
//    means anonymous, not an error.
//  * otherwise auths[<key>]: base64 "user:password" in `auth`, or `username`/`password`, and
//    `identitytoken`. Keys match by exact server URL first, then by host name with any scheme and
//    path stripped ("https://ghcr.io/v2/" matches ghcr.io). Docker Hub's key is
//    "https://index.docker.io/v1/"; docker.io, index.docker.io and registry-1.docker.io are its
//    aliases.
// No configuration file means anonymous. Secrets never appear in an error message.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace vmrt::image {

/// Credentials for one registry. Secrets: never log password or identity_token.
struct registry_credentials {
    std::string username;
    std::string password;
    std::string identity_token;  ///< an OAuth2 refresh token (for the token endpoint), if any

    bool anonymous() const noexcept { return username.empty() && password.empty() && identity_token.empty(); }
    friend bool operator==(const registry_credentials&, const registry_credentials&) = default;
};

/// The parts of config.json that concern registry credentials.
struct docker_config {
    std::map<std::string, registry_credentials> auths;  ///< by key as written
    std::map<std::string, std::string> cred_helpers;    ///< registry host → helper name
    std::string creds_store;                            ///< default helper name, or empty
};

/// Parses config.json. Throws vmrt::error(errc::invalid_spec) naming the field (never a secret)
/// for invalid JSON, wrong types, bad base64 or an `auth` without ':'. Unknown fields are ignored.
docker_config parse_docker_config(std::string_view text);

/// $DOCKER_CONFIG/config.json if DOCKER_CONFIG is set, else $HOME/.docker/config.json.
std::filesystem::path default_docker_config_path();

/// The host[:port] of a config key or server URL: scheme and path stripped, lowercase
/// ("https://index.docker.io/v1/" → "index.docker.io").
std::string registry_hostname(std::string_view key_or_url);

/// The server URL Docker uses for a registry domain: "https://index.docker.io/v1/" for Docker
/// Hub (any alias), the domain itself otherwise. Sent to helpers and tried first in `auths`.
std::string credential_server_url(std::string_view registry_domain);

/// Where credentials for a registry come from, decided without I/O.
struct credential_source {
    std::string helper;                ///< helper name ("desktop", "pass"), or empty
    std::string server_url;            ///< what the helper is asked about
    registry_credentials from_config;  ///< from `auths` when no helper applies
};

/// Picks the source for `registry_domain` ("docker.io", "ghcr.io", "localhost:5000").
credential_source find_credential_source(const docker_config& config, std::string_view registry_domain);

/// Parses a helper's stdout for a successful `get`. Throws errc::protocol_error (no secret in
/// the message) if it is not the expected JSON.
registry_credentials parse_helper_output(std::string_view output);

struct credential_options {
    /// The config file; unset: default_docker_config_path().
    std::optional<std::filesystem::path> config_file;
    /// Where docker-credential-* helpers are looked up; unset: PATH.
    std::optional<std::filesystem::path> helper_dir;
    /// A helper still running after this is killed, and the lookup fails with errc::timeout.
    std::chrono::steady_clock::duration helper_timeout = std::chrono::seconds(30);
};

/// Credentials for `registry_domain`: anonymous when the config file does not exist or has
/// nothing for the registry or the helper knows nothing. Throws vmrt::error: errc::invalid_spec
/// for a bad config file or helper name, errc::command_failed when a helper fails (its exit code
/// and a sanitised first line of its output), errc::timeout, errc::protocol_error for a helper
/// answer that is not JSON. Runs the helper through vmrt::io::process on the caller's executor.
boost::asio::awaitable<registry_credentials> load_registry_credentials(std::string registry_domain,
                                                                       credential_options options = {});

}  // namespace vmrt::image
