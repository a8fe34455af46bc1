// Docker's config.json: parsing and choosing where a registry's credentials come from (no I/O
// except default_docker_config_path's environment lookups).
#include "image/oci_text.hpp"
#include "strict_json.hpp"

#include <vmrt/error.hpp>
#include <vmrt/image/registry_credentials.hpp>

#include <boost/json.hpp>

#include <pwd.h>
#include <unistd.h>

#include <array>
#include <cstdlib>

namespace vmrt::image {

namespace json = boost::json;

namespace {

constexpr std::string_view hub_server_url = "https://index.docker.io/v1/";
constexpr std::array<std::string_view, 3> hub_hosts = {"index.docker.io", "docker.io",
                                                       "registry-1.docker.io"};

bool is_hub(std::string_view host) {
    for (auto h : hub_hosts)
        if (host == h) return true;
    return false;
}

[[noreturn]] void bad_config(const std::string& field, const std::string& why) {
    detail::fail(errc::invalid_spec, "docker config: " + field + " " + why, field);
}

std::optional<std::string> base64_decode(std::string_view in) {
    std::string out;
    std::uint32_t acc = 0;
    int bits = 0;
    std::size_t i = 0;
    for (; i < in.size() && in[i] != '='; ++i) {
        const char c = in[i];
        int v;
        if (c >= 'A' && c <= 'Z')
            v = c - 'A';
        else if (c >= 'a' && c <= 'z')
            v = c - 'a' + 26;
        else if (c >= '0' && c <= '9')
            v = c - '0' + 52;
        else if (c == '+')
            v = 62;
        else if (c == '/')
            v = 63;
        else
            return std::nullopt;
        acc = (acc << 6) | static_cast<std::uint32_t>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += static_cast<char>((acc >> bits) & 0xff);
        }
    }
    const std::size_t data_chars = i;
    for (; i < in.size(); ++i)
        if (in[i] != '=') return std::nullopt;
    if (data_chars % 4 == 1 || (in.size() - data_chars) > 2) return std::nullopt;
    if ((in.size() - data_chars) > 0 && in.size() % 4 != 0) return std::nullopt;
    return out;
}

std::string string_member(const json::object& o, std::string_view key, const std::string& path) {
    const auto* v = o.if_contains(key);
    if (v == nullptr || v->is_null()) return {};
    if (!v->is_string()) bad_config(vmrt::detail::child_path(path, key), "is not a string");
    return std::string(v->get_string());
}

registry_credentials parse_auth_entry(const json::value& v, const std::string& path) {
    if (!v.is_object()) bad_config(path, "is not an object");
    const auto& o = v.get_object();
    registry_credentials c;
    const std::string auth = string_member(o, "auth", path);
    if (!auth.empty()) {
        const auto decoded = base64_decode(auth);
        if (!decoded) bad_config(vmrt::detail::child_path(path, "auth"), "is not valid base64");
        const auto colon = decoded->find(':');
        if (colon == std::string::npos)
            bad_config(vmrt::detail::child_path(path, "auth"), "does not decode to \"user:password\"");
        c.username = decoded->substr(0, colon);
        c.password = decoded->substr(colon + 1);
    } else {
        c.username = string_member(o, "username", path);
        c.password = string_member(o, "password", path);
    }
    c.identity_token = string_member(o, "identitytoken", path);
    return c;
}

}  // namespace

docker_config parse_docker_config(std::string_view text) {
    auto parsed = vmrt::detail::parse_json_strictly(text);
    if (!parsed) bad_config("", parsed.error());  // positions only, never content
    if (!parsed->is_object()) bad_config("", "is not a JSON object");
    const auto& root = parsed->get_object();
    docker_config config;
    if (const auto* auths = root.if_contains("auths"); auths != nullptr && !auths->is_null()) {
        if (!auths->is_object()) bad_config("auths", "is not an object");
        for (const auto& [key, entry] : auths->get_object())
            config.auths.emplace(std::string(key),
                                 parse_auth_entry(entry, "auths[" + detail::quoted(key, 80) + "]"));
    }
    if (const auto* helpers = root.if_contains("credHelpers"); helpers != nullptr && !helpers->is_null()) {
        if (!helpers->is_object()) bad_config("credHelpers", "is not an object");
        for (const auto& [key, name] : helpers->get_object()) {
            if (!name.is_string())
                bad_config("credHelpers[" + detail::quoted(key, 80) + "]", "is not a string");
            config.cred_helpers.emplace(std::string(key), std::string(name.get_string()));
        }
    }
    config.creds_store = string_member(root, "credsStore", "");
    return config;
}

std::filesystem::path default_docker_config_path() {
    if (const char* dir = std::getenv("DOCKER_CONFIG"); dir != nullptr && *dir != '\0')
        return std::filesystem::path(dir) / "config.json";
    std::string home;
    if (const char* h = std::getenv("HOME"); h != nullptr && *h != '\0') {
        home = h;
    } else if (const passwd* pw = ::getpwuid(::getuid()); pw != nullptr && pw->pw_dir != nullptr) {
        home = pw->pw_dir;
    }
    return std::filesystem::path(home) / ".docker" / "config.json";
}

std::string registry_hostname(std::string_view key) {
    if (key.size() >= 8 && detail::iequals(key.substr(0, 8), "https://"))
        key.remove_prefix(8);
    else if (key.size() >= 7 && detail::iequals(key.substr(0, 7), "http://"))
        key.remove_prefix(7);
    return detail::ascii_lowercase(key.substr(0, key.find('/')));
}

std::string credential_server_url(std::string_view registry_domain) {
    const std::string host = registry_hostname(registry_domain);
    return is_hub(host) ? std::string(hub_server_url) : host;
}

credential_source find_credential_source(const docker_config& config, std::string_view registry_domain) {
    const std::string host = registry_hostname(registry_domain);
    const bool hub = is_hub(host);
    credential_source source;
    source.server_url = credential_server_url(registry_domain);

    // credHelpers are keyed by host name; Docker Hub's by any of its aliases.
    const auto helper_for = [&](std::string_view h) -> const std::string* {
        for (const auto& [key, name] : config.cred_helpers)
            if (registry_hostname(key) == h) return &name;
        return nullptr;
    };
    const std::string* helper = nullptr;
    if (hub) {
        for (auto alias : hub_hosts)
            if ((helper = helper_for(alias)) != nullptr) break;
    } else {
        helper = helper_for(host);
    }
    if (helper != nullptr && !helper->empty()) {
        source.helper = *helper;
        return source;
    }
    if (!config.creds_store.empty()) {
        source.helper = config.creds_store;
        return source;
    }
    if (const auto it = config.auths.find(source.server_url); it != config.auths.end()) {
        source.from_config = it->second;
        return source;
    }
    for (const auto& [key, creds] : config.auths) {
        const std::string key_host = registry_hostname(key);
        if (key_host == host || (hub && is_hub(key_host))) {
            source.from_config = creds;
            return source;
        }
    }
    return source;
}

registry_credentials parse_helper_output(std::string_view output) {
    auto parsed = vmrt::detail::parse_json_strictly(output);
    if (!parsed || !parsed->is_object())
        detail::fail(errc::protocol_error, "credential helper: its answer is not a JSON object");
    const auto& o = parsed->get_object();
    const auto field = [&](std::string_view key) {
        const auto* v = o.if_contains(key);
        if (v == nullptr || v->is_null()) return std::string();
        if (!v->is_string())
            detail::fail(errc::protocol_error,
                         "credential helper: \"" + std::string(key) + "\" is not a string");
        return std::string(v->get_string());
    };
    registry_credentials c;
    const std::string user = field("Username");
    const std::string secret = field("Secret");
    if (user == "<token>") {
        c.identity_token = secret;
    } else {
        c.username = user;
        c.password = secret;
    }
    return c;
}

}  // namespace vmrt::image
