// validate_seed: every rule of seed.hpp, all problems reported at once (like validate_spec), so
// that a caller fixes a seed in one round.
#include "image/seed_syntax.hpp"
#include "image/yaml_emitter.hpp"

#include <vmrt/image/seed.hpp>

#include <set>
#include <string>

namespace vmrt::image {
namespace {

// A value for an error message: printable ASCII as is, other bytes as \xNN, long values cut, so
// that hostile input cannot garble the message.
std::string printable(std::string_view value) {
    constexpr std::size_t max_shown = 80;
    std::string out = "\"";
    for (std::size_t i = 0; i < value.size() && i < max_shown; ++i) {
        const auto c = static_cast<unsigned char>(value[i]);
        if (c >= 0x20 && c < 0x7F && c != '"' && c != '\\') {
            out += static_cast<char>(c);
        } else {
            constexpr std::string_view hex = "0123456789abcdef";
            out += "\\x";
            out += hex[c >> 4];
            out += hex[c & 0xF];
        }
    }
    out += value.size() > max_shown ? "\"..." : "\"";
    return out;
}

std::string at(std::string_view list, std::size_t index) {
    return std::string(list) + "[" + std::to_string(index) + "]";
}

class checker {
public:
    void require(bool ok, const std::string& field, const std::string& rule, std::string_view value) {
        if (!ok) problems_.push_back({field, rule + ", found " + printable(value)});
    }
    void require(bool ok, const std::string& field, const std::string& message) {
        if (!ok) problems_.push_back({field, message});
    }
    // Free text: anything YAML can carry, that is valid UTF-8.
    void text(const std::string& field, std::string_view value) {
        require(yaml::is_valid_utf8(value), field, "must be valid UTF-8", value);
    }
    void line(const std::string& field, std::string_view value) {
        require(!value.empty() && syntax::is_single_line(value) && yaml::is_valid_utf8(value), field,
                "must be one non-empty line of UTF-8 text (no line feed, carriage return or NUL)", value);
    }

    [[noreturn]] void fail() const {
        diagnostics diag;
        diag.message = "invalid cloud-init seed:";
        for (const auto& [field, message] : problems_) diag.message += "\n" + field + ": " + message;
        diag.field = problems_.front().first;
        throw error(errc::invalid_spec, std::move(diag));
    }
    bool ok() const noexcept { return problems_.empty(); }

private:
    std::vector<std::pair<std::string, std::string>> problems_;
};

void check_meta_data(checker& c, const seed_meta_data& m) {
    c.require(syntax::is_instance_id(m.instance_id), "meta_data.instance_id",
              "must be 1 to 128 characters of [A-Za-z0-9._:-], not \".\" or \"..\"", m.instance_id);
    c.require(m.hostname.empty() || syntax::is_host_name(m.hostname), "meta_data.hostname",
              "must be an RFC 1123 host name", m.hostname);
}

void check_user(checker& c, const std::string& f, const seed_user& u, std::set<std::string>& names) {
    c.require(syntax::is_user_name(u.name), f + ".name",
              "must be a user name ([a-z_][a-z0-9_-]*, at most 32)", u.name);
    c.require(names.insert(u.name).second, f + ".name", "duplicate user " + printable(u.name));
    for (std::size_t i = 0; i < u.ssh_authorized_keys.size(); ++i)
        c.line(at(f + ".ssh_authorized_keys", i), u.ssh_authorized_keys[i]);
    for (std::size_t i = 0; i < u.sudo.size(); ++i) c.line(at(f + ".sudo", i), u.sudo[i]);
    if (u.shell) {
        c.line(f + ".shell", *u.shell);
        c.require(u.shell->starts_with('/'), f + ".shell", "must be an absolute path", *u.shell);
    }
    for (std::size_t i = 0; i < u.groups.size(); ++i)
        c.require(syntax::is_user_name(u.groups[i]), at(f + ".groups", i), "must be a group name",
                  u.groups[i]);
}

void check_file(checker& c, const std::string& f, const seed_file& file) {
    c.text(f + ".path", file.path);
    c.require(file.path.starts_with('/') && file.path.find('\0') == std::string::npos, f + ".path",
              "must be an absolute path without NUL", file.path);
    if (file.permissions)
        c.require(*file.permissions <= 07777, f + ".permissions",
                  "must be at most 07777, found " + std::to_string(*file.permissions));
    if (file.owner) {
        const auto colon = file.owner->find(':');
        const bool ok = syntax::is_user_name(file.owner->substr(0, colon)) &&
                        (colon == std::string::npos || syntax::is_user_name(file.owner->substr(colon + 1)));
        c.require(ok, f + ".owner", "must be \"user\" or \"user:group\"", *file.owner);
    }
}

void check_commands(checker& c, const std::string& list, const std::vector<seed_argv>& commands) {
    for (std::size_t i = 0; i < commands.size(); ++i) {
        const auto f = at(list, i);
        c.require(!commands[i].empty() && !commands[i][0].empty(), f,
                  "must be an argv list with a non-empty program name");
        for (std::size_t j = 0; j < commands[i].size(); ++j) {
            c.text(at(f, j), commands[i][j]);
            c.require(commands[i][j].find('\0') == std::string::npos, at(f, j),
                      "an argument cannot contain NUL", commands[i][j]);
        }
    }
}

void check_user_data(checker& c, const seed_user_data& u) {
    std::set<std::string> names;
    for (std::size_t i = 0; i < u.users.size(); ++i)
        check_user(c, at("user_data.users", i), u.users[i], names);
    for (std::size_t i = 0; i < u.packages.size(); ++i) c.line(at("user_data.packages", i), u.packages[i]);
    for (std::size_t i = 0; i < u.write_files.size(); ++i)
        check_file(c, at("user_data.write_files", i), u.write_files[i]);
    check_commands(c, "user_data.bootcmd", u.bootcmd);
    check_commands(c, "user_data.runcmd", u.runcmd);
}

void check_ethernet(checker& c, const std::string& f, const seed_ethernet& e, std::set<std::string>& ids) {
    c.require(syntax::is_interface_name(e.id), f + ".id", "must be 1 to 15 characters of [A-Za-z0-9_.-]",
              e.id);
    c.require(ids.insert(e.id).second, f + ".id", "duplicate ethernet id " + printable(e.id));
    if (e.match_macaddress)
        c.require(syntax::is_mac_address(*e.match_macaddress), f + ".match_macaddress",
                  "must be a MAC address (52:54:00:12:34:56)", *e.match_macaddress);
    if (e.set_name) {
        c.require(syntax::is_interface_name(*e.set_name), f + ".set_name", "must be an interface name",
                  *e.set_name);
        c.require(e.match_macaddress.has_value(), f + ".set_name", "needs match_macaddress (netplan)");
    }
    for (std::size_t i = 0; i < e.addresses.size(); ++i)
        c.require(syntax::is_ip_prefix(e.addresses[i]), at(f + ".addresses", i),
                  "must be an address with prefix (10.0.0.2/24, fd00::2/64)", e.addresses[i]);
    for (std::size_t i = 0; i < e.routes.size(); ++i) {
        const auto& r = e.routes[i];
        const auto rf = at(f + ".routes", i);
        c.require(r.to == "default" || syntax::is_ip_prefix(r.to), rf + ".to",
                  "must be \"default\" or an address with prefix", r.to);
        c.require(syntax::is_ip_address(r.via), rf + ".via", "must be an IP address", r.via);
    }
    for (std::size_t i = 0; i < e.nameservers.size(); ++i)
        c.require(syntax::is_ip_address(e.nameservers[i]), at(f + ".nameservers", i), "must be an IP address",
                  e.nameservers[i]);
    for (std::size_t i = 0; i < e.search.size(); ++i)
        c.require(syntax::is_host_name(e.search[i]), at(f + ".search", i), "must be a domain name",
                  e.search[i]);
    if (e.mtu)
        c.require(*e.mtu >= 68 && *e.mtu <= 65535, f + ".mtu",
                  "must be between 68 and 65535, found " + std::to_string(*e.mtu));
}

}  // namespace

void validate_seed(const seed_config& config) {
    checker c;
    check_meta_data(c, config.meta_data);
    check_user_data(c, config.user_data);
    if (config.network_config) {
        std::set<std::string> ids;
        const auto& ethernets = config.network_config->ethernets;
        for (std::size_t i = 0; i < ethernets.size(); ++i)
            check_ethernet(c, at("network_config.ethernets", i), ethernets[i], ids);
    }
    if (!c.ok()) c.fail();
}

}  // namespace vmrt::image
