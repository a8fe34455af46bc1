// The seed's YAML documents, built as yaml::node trees: keys are fixed names from this file, and
// every value from the config is a string, boolean or integer node, so the emitter decides quoting.
#include "image/yaml_emitter.hpp"

#include <vmrt/image/seed.hpp>

#include <openssl/evp.h>

#include <algorithm>
#include <cctype>

namespace vmrt::image {
namespace {

using yaml::mapping;
using yaml::node;
using yaml::sequence;

sequence strings(const std::vector<std::string>& values) { return sequence(values.begin(), values.end()); }

// Adds `key: [values]` unless there are none (an absent key keeps cloud-init's default).
void add_list(mapping& m, const char* key, sequence values) {
    if (!values.empty()) m.emplace_back(key, std::move(values));
}

std::string base64(std::string_view bytes) {
    std::string out(4 * ((bytes.size() + 2) / 3), '\0');
    const int n =
        EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                        reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
    out.resize(static_cast<std::size_t>(n));
    return out;
}

std::string octal_mode(std::uint32_t mode) {
    std::string digits;
    for (int shift = 9; shift >= 0; shift -= 3) digits += static_cast<char>('0' + ((mode >> shift) & 7));
    return digits;  // "0644": a string, as cloud-init documents it (an integer would be read as decimal)
}

node user_node(const seed_user& u) {
    mapping m;
    m.emplace_back("name", u.name);
    m.emplace_back("lock_passwd", u.lock_passwd);
    if (u.shell) m.emplace_back("shell", *u.shell);
    add_list(m, "groups", strings(u.groups));
    add_list(m, "sudo", strings(u.sudo));
    add_list(m, "ssh_authorized_keys", strings(u.ssh_authorized_keys));
    return m;
}

node file_node(const seed_file& f) {
    mapping m;
    m.emplace_back("path", f.path);
    if (yaml::is_valid_utf8(f.content)) {
        m.emplace_back("content", f.content);
    } else {
        m.emplace_back("encoding", "b64");
        m.emplace_back("content", base64(f.content));
    }
    if (f.permissions) m.emplace_back("permissions", octal_mode(*f.permissions));
    if (f.owner) m.emplace_back("owner", *f.owner);
    if (f.append) m.emplace_back("append", true);
    return m;
}

sequence commands(const std::vector<seed_argv>& list) {
    sequence out;
    for (const auto& argv : list) out.emplace_back(strings(argv));
    return out;
}

node ethernet_node(const seed_ethernet& e) {
    mapping m;
    if (e.match_macaddress) {
        std::string mac = *e.match_macaddress;
        std::transform(mac.begin(), mac.end(), mac.begin(), [](unsigned char c) { return std::tolower(c); });
        m.emplace_back("match", mapping{{"macaddress", mac}});
    }
    if (e.set_name) m.emplace_back("set-name", *e.set_name);
    m.emplace_back("dhcp4", e.dhcp4);
    if (e.dhcp6) m.emplace_back("dhcp6", true);
    add_list(m, "addresses", strings(e.addresses));
    sequence routes;
    for (const auto& r : e.routes) {
        mapping route{{"to", r.to}, {"via", r.via}};
        if (r.metric) route.emplace_back("metric", static_cast<std::int64_t>(*r.metric));
        routes.emplace_back(std::move(route));
    }
    add_list(m, "routes", std::move(routes));
    mapping dns;
    add_list(dns, "addresses", strings(e.nameservers));
    add_list(dns, "search", strings(e.search));
    if (!dns.empty()) m.emplace_back("nameservers", std::move(dns));
    if (e.mtu) m.emplace_back("mtu", static_cast<std::int64_t>(*e.mtu));
    return m;
}

std::string meta_data_yaml(const seed_meta_data& meta) {
    mapping m{{"instance-id", meta.instance_id}};
    if (!meta.hostname.empty()) m.emplace_back("local-hostname", meta.hostname);
    return yaml::emit(m);
}

std::string user_data_yaml(const seed_user_data& u) {
    mapping m;
    sequence users;
    for (const auto& user : u.users) users.push_back(user_node(user));
    add_list(m, "users", std::move(users));
    add_list(m, "packages", strings(u.packages));
    sequence files;
    for (const auto& f : u.write_files) files.push_back(file_node(f));
    add_list(m, "write_files", std::move(files));
    add_list(m, "bootcmd", commands(u.bootcmd));
    add_list(m, "runcmd", commands(u.runcmd));
    return "#cloud-config\n" + yaml::emit(m);
}

std::string network_config_yaml(const seed_network_config& n) {
    mapping ethernets;
    for (const auto& e : n.ethernets) ethernets.emplace_back(e.id, ethernet_node(e));
    return yaml::emit(mapping{{"version", std::int64_t{2}}, {"ethernets", std::move(ethernets)}});
}

}  // namespace

seed_documents render_seed(const seed_config& config) {
    validate_seed(config);
    seed_documents docs;
    docs.meta_data = meta_data_yaml(config.meta_data);
    docs.user_data = user_data_yaml(config.user_data);
    if (config.network_config) docs.network_config = network_config_yaml(*config.network_config);
    return docs;
}

}  // namespace vmrt::image
