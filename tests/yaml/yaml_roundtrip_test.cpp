// Property test: no string can change the structure of the YAML that vmrt emits. Thousands of
// generated hostile strings (hostile_strings.hpp) go into every string position of a document, and
// into every string field of a seed config; the emitted text is parsed back with a real YAML
// parser (yaml-cpp, a test-only dependency) and compared value by value. Strings must come back
// as quoted scalars (yaml-cpp's "!" tag: never resolved to a boolean, number or null), booleans
// and integers as plain scalars, and no key may appear or vanish.
//
// The generator's seed is fixed (reproducible runs); set VMRT_YAML_SEED to try others. Every
// failure message carries the seed and the case number.
#include "image/seed_syntax.hpp"
#include "image/yaml_emitter.hpp"
#include "yaml/hostile_strings.hpp"

#include <vmrt/image/seed.hpp>

#include <boost/test/unit_test.hpp>

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

namespace {

using namespace vmrt::image;
using vmrt::test::yaml::hostile_generator;
namespace y = vmrt::image::yaml;

constexpr int document_cases = 2000;
constexpr int seed_cases = 1000;

std::uint64_t generator_seed() {
    const char* env = std::getenv("VMRT_YAML_SEED");
    return env ? std::strtoull(env, nullptr, 0) : 0x5EED1505ULL;
}

// A string with every byte that is not printable ASCII shown as \xNN, for failure messages.
std::string visible(const std::string& s) {
    std::ostringstream out;
    out << '"';
    for (unsigned char c : s) {
        if (c >= 0x20 && c < 0x7F && c != '\\' && c != '"')
            out << c;
        else
            out << "\\x"
                << "0123456789abcdef"[c >> 4] << "0123456789abcdef"[c & 15];
    }
    out << '"';
    return out.str();
}

// Collects mismatches of one case; the test reports the first few, with the seed.
class comparison {
public:
    comparison(std::string context) : context_(std::move(context)) {}

    void string(const YAML::Node& n, const std::string& expected, const std::string& where) {
        if (!n.IsDefined() || !n.IsScalar())
            return fail(where, "missing or not a scalar (expected " + visible(expected) + ")");
        if (n.Tag() != "!") fail(where, "not a quoted string scalar (tag " + visible(n.Tag()) + ")");
        if (n.Scalar() != expected)
            fail(where, "read " + visible(n.Scalar()) + ", expected " + visible(expected));
    }
    // A mapping key: quoted, or plain and still a string to a YAML 1.1 reader (not a boolean,
    // number or null; yaml-cpp's as<bool> knows the YAML 1.1 spellings y/yes/on/true...).
    void key(const YAML::Node& n, const std::string& expected, const std::string& where) {
        if (!n.IsScalar() || n.Scalar() != expected)
            return fail(where, "read " + visible(n.Scalar()) + ", expected " + visible(expected));
        if (n.Tag() == "!") return;
        bool retyped = n.Scalar().empty() || n.Scalar() == "~" || n.Scalar() == "null" ||
                       n.Scalar() == "Null" || n.Scalar() == "NULL" || n.Scalar() == "<<" ||
                       n.Scalar() == "=";
        bool as_bool = false;
        double as_double = 0;
        retyped =
            retyped || YAML::convert<bool>::decode(n, as_bool) || YAML::convert<double>::decode(n, as_double);
        if (retyped || !(std::isalpha(static_cast<unsigned char>(expected[0])) || expected[0] == '_'))
            fail(where, "plain key " + visible(expected) + " that a YAML 1.1 reader may retype");
    }
    void plain(const YAML::Node& n, const std::string& expected, const std::string& where) {
        if (!n.IsDefined() || !n.IsScalar()) return fail(where, "missing or not a scalar");
        if (n.Tag() != "?" || n.Scalar() != expected)
            fail(where, "read " + visible(n.Scalar()) + " tag " + n.Tag() + ", expected plain " + expected);
    }
    void strings(const YAML::Node& n, const std::vector<std::string>& expected, const std::string& where) {
        if (expected.empty()) return absent(n, where);
        if (!n.IsSequence() || n.size() != expected.size())
            return fail(where, "not a sequence of the right size");
        for (std::size_t i = 0; i < expected.size(); ++i)
            string(n[i], expected[i], where + "[" + std::to_string(i) + "]");
    }
    void absent(const YAML::Node& n, const std::string& where) {
        if (n.IsDefined()) fail(where, "present, expected absent");
    }
    // `n` is a mapping with exactly the keys `keys` (in this order).
    void keys(const YAML::Node& n, const std::vector<std::string>& expected, const std::string& where) {
        if (!n.IsMap()) return fail(where, "not a mapping");
        std::vector<std::string> found;
        for (const auto& kv : n) found.push_back(kv.first.Scalar());
        if (found != expected) {
            std::string list;
            for (const auto& k : found) list += " " + visible(k);
            fail(where, "keys were" + list);
        }
    }
    void fail(const std::string& where, const std::string& what) {
        failures_.push_back(context_ + " " + where + ": " + what);
    }
    const std::vector<std::string>& failures() const { return failures_; }

private:
    std::string context_;
    std::vector<std::string> failures_;
};

// Parses `text`; a parse error is a failure of the case (with the document shown).
YAML::Node parse(const std::string& text, comparison& cmp, const std::string& what) {
    try {
        return YAML::Load(text);
    } catch (const YAML::Exception& e) {
        cmp.fail(what, std::string("YAML parse error: ") + e.what() + " in\n" + text);
        return YAML::Node(YAML::NodeType::Undefined);
    }
}

void report(const std::vector<std::string>& failures, int cases) {
    std::string shown;
    for (std::size_t i = 0; i < failures.size() && i < 10; ++i) shown += "\n  " + failures[i];
    BOOST_TEST(failures.empty(), failures.size() << " mismatches in " << cases << " cases (VMRT_YAML_SEED=0x"
                                                 << std::hex << generator_seed() << ")" << shown);
    BOOST_TEST_MESSAGE(cases << " cases, seed 0x" << std::hex << generator_seed());
}

// ---- documents built directly with the emitter ----------------------------------------------

void check_document_case(hostile_generator& g, int index, std::vector<std::string>& failures) {
    const std::string value = g.text(), key = g.text(), item1 = g.text(), item2 = g.text(), arg = g.text();
    const y::node doc = y::mapping{
        {"value", value},
        {key, y::sequence{item1, y::mapping{{"inner", item2}, {"flag", true}}, y::sequence{arg, item1}}},
        {"number", std::int64_t{-7}},
        {"tail", y::sequence{value}},
    };
    const std::string text = y::emit(doc);
    comparison cmp("document case " + std::to_string(index));
    const auto root = parse(text, cmp, "document");
    if (root.IsDefined()) {
        cmp.keys(root, {"value", key, "number", "tail"}, "root");
        cmp.string(root["value"], value, "value");
        if (root.IsMap() && root.size() == 4) {
            auto it = root.begin();
            ++it;
            cmp.key(it->first, key, "key");
            const auto list = it->second;
            if (list.IsSequence() && list.size() == 3) {
                cmp.string(list[0], item1, "list[0]");
                cmp.keys(list[1], {"inner", "flag"}, "list[1]");
                cmp.string(list[1]["inner"], item2, "list[1].inner");
                cmp.plain(list[1]["flag"], "true", "list[1].flag");
                cmp.strings(list[2], {arg, item1}, "list[2]");
            } else {
                cmp.fail("list", "not a sequence of 3");
            }
        }
        cmp.plain(root["number"], "-7", "number");
        cmp.strings(root["tail"], {value}, "tail");
    }
    if (!cmp.failures().empty()) cmp.fail("document", "\n" + text);
    failures.insert(failures.end(), cmp.failures().begin(), cmp.failures().end());
}

// ---- seed configs ----------------------------------------------------------------------------

std::string random_ipv4(hostile_generator& g) {
    return std::to_string(1 + g.below(254)) + "." + std::to_string(g.below(256)) + "." +
           std::to_string(g.below(256)) + "." + std::to_string(1 + g.below(254));
}

std::string random_address(hostile_generator& g) {
    return g.chance(0.7) ? random_ipv4(g) : "fd00::" + std::to_string(1 + g.below(9999));
}

std::string random_mac(hostile_generator& g) {
    // Digits only half of the time: "10:20:30:40:50:00" is a sexagesimal integer to YAML 1.1.
    std::string mac;
    for (int i = 0; i < 6; ++i) {
        if (i) mac += ':';
        mac += g.chance(0.5) ? std::to_string(10 + g.below(50))
                             : std::string{"aB"[g.below(2)], "9f"[g.below(2)]};
    }
    return mac;
}

std::string name_token(hostile_generator& g, const std::string& fallback, std::size_t index) {
    return g.token(syntax::is_user_name, fallback) + std::to_string(index);
}

seed_config random_seed(hostile_generator& g) {
    seed_config c;
    c.meta_data.instance_id = g.token(syntax::is_instance_id, "i-1");
    c.meta_data.hostname = g.chance(0.2) ? "" : g.token(syntax::is_host_name, "host");
    for (std::size_t u = 0, n = g.below(3); u < n; ++u) {
        seed_user user;
        user.name = name_token(g, "user", u);
        for (std::size_t i = 0, k = g.below(4); i < k; ++i) user.ssh_authorized_keys.push_back(g.line());
        for (std::size_t i = 0, k = g.below(3); i < k; ++i) user.sudo.push_back(g.line());
        if (g.chance(0.5)) user.shell = "/" + g.line();
        for (std::size_t i = 0, k = g.below(3); i < k; ++i) user.groups.push_back(name_token(g, "grp", i));
        user.lock_passwd = g.chance(0.5);
        c.user_data.users.push_back(user);
    }
    for (std::size_t i = 0, k = g.below(4); i < k; ++i) c.user_data.packages.push_back(g.line());
    for (std::size_t i = 0, k = g.below(4); i < k; ++i) {
        seed_file f;
        f.path = "/" + g.text_without_nul();
        f.content = g.chance(0.3) ? g.invalid_utf8() : g.text();
        if (g.chance(0.5)) f.permissions = static_cast<std::uint32_t>(g.below(07777 + 1));
        if (g.chance(0.5))
            f.owner = name_token(g, "own", 0) + (g.chance(0.5) ? ":" + name_token(g, "grp", 1) : "");
        f.append = g.chance(0.3);
        c.user_data.write_files.push_back(f);
    }
    for (auto* list : {&c.user_data.bootcmd, &c.user_data.runcmd}) {
        for (std::size_t i = 0, k = g.below(4); i < k; ++i) {
            seed_argv argv{g.text_without_nul()};
            if (argv[0].empty()) argv[0] = "-";
            for (std::size_t j = 0, m = g.below(5); j < m; ++j) argv.push_back(g.text_without_nul());
            list->push_back(argv);
        }
    }
    if (g.chance(0.7)) {
        seed_network_config net;
        for (std::size_t i = 0, k = 1 + g.below(2); i < k; ++i) {
            seed_ethernet e;
            e.id = g.token(syntax::is_interface_name, "eth") + std::to_string(i);
            if (g.chance(0.6)) e.match_macaddress = random_mac(g);
            if (e.match_macaddress && g.chance(0.5)) e.set_name = g.token(syntax::is_interface_name, "lan");
            e.dhcp4 = g.chance(0.5);
            e.dhcp6 = g.chance(0.3);
            for (std::size_t j = 0, m = g.below(3); j < m; ++j)
                e.addresses.push_back(random_ipv4(g) + "/" + std::to_string(g.below(33)));
            for (std::size_t j = 0, m = g.below(3); j < m; ++j) {
                seed_route r{g.chance(0.5) ? "default"
                                           : random_ipv4(g) + "/" + std::to_string(8 + g.below(25)),
                             random_ipv4(g), std::nullopt};
                if (g.chance(0.5)) r.metric = static_cast<std::uint32_t>(g.below(100000));
                e.routes.push_back(r);
            }
            for (std::size_t j = 0, m = g.below(3); j < m; ++j) e.nameservers.push_back(random_address(g));
            for (std::size_t j = 0, m = g.below(3); j < m; ++j)
                e.search.push_back(g.token(syntax::is_host_name, "lan"));
            if (g.chance(0.3)) e.mtu = static_cast<std::uint32_t>(68 + g.below(9000));
            net.ethernets.push_back(e);
        }
        c.network_config = net;
    }
    return c;
}

std::string octal(std::uint32_t mode) {
    std::ostringstream s;
    s.width(4);
    s.fill('0');
    s << std::oct << mode;
    return s.str();
}

std::string decode_base64(const std::string& text) {
    return YAML::DecodeBase64(text).empty() && !text.empty()
               ? std::string("<bad base64>")
               : std::string(reinterpret_cast<const char*>(YAML::DecodeBase64(text).data()),
                             YAML::DecodeBase64(text).size());
}

void check_user(comparison& cmp, const YAML::Node& n, const seed_user& u, const std::string& where) {
    std::vector<std::string> keys{"name", "lock_passwd"};
    if (u.shell) keys.push_back("shell");
    if (!u.groups.empty()) keys.push_back("groups");
    if (!u.sudo.empty()) keys.push_back("sudo");
    if (!u.ssh_authorized_keys.empty()) keys.push_back("ssh_authorized_keys");
    cmp.keys(n, keys, where);
    cmp.string(n["name"], u.name, where + ".name");
    cmp.plain(n["lock_passwd"], u.lock_passwd ? "true" : "false", where + ".lock_passwd");
    if (u.shell) cmp.string(n["shell"], *u.shell, where + ".shell");
    cmp.strings(n["groups"], u.groups, where + ".groups");
    cmp.strings(n["sudo"], u.sudo, where + ".sudo");
    cmp.strings(n["ssh_authorized_keys"], u.ssh_authorized_keys, where + ".ssh_authorized_keys");
}

void check_file(comparison& cmp, const YAML::Node& n, const seed_file& f, const std::string& where) {
    const bool text = y::is_valid_utf8(f.content);
    std::vector<std::string> keys{"path"};
    if (!text) keys.push_back("encoding");
    keys.push_back("content");
    if (f.permissions) keys.push_back("permissions");
    if (f.owner) keys.push_back("owner");
    if (f.append) keys.push_back("append");
    cmp.keys(n, keys, where);
    cmp.string(n["path"], f.path, where + ".path");
    if (text) {
        cmp.string(n["content"], f.content, where + ".content");
    } else {
        cmp.string(n["encoding"], "b64", where + ".encoding");
        if (n["content"].IsScalar() && decode_base64(n["content"].Scalar()) != f.content)
            cmp.fail(where + ".content", "base64 does not decode to the contents");
    }
    if (f.permissions) cmp.string(n["permissions"], octal(*f.permissions), where + ".permissions");
    if (f.owner) cmp.string(n["owner"], *f.owner, where + ".owner");
    if (f.append) cmp.plain(n["append"], "true", where + ".append");
}

void check_commands(comparison& cmp, const YAML::Node& n, const std::vector<seed_argv>& list,
                    const std::string& where) {
    if (list.empty()) return cmp.absent(n, where);
    if (!n.IsSequence() || n.size() != list.size())
        return cmp.fail(where, "not a sequence of the right size");
    for (std::size_t i = 0; i < list.size(); ++i)
        cmp.strings(n[i], list[i], where + "[" + std::to_string(i) + "]");
}

void check_user_data(comparison& cmp, const YAML::Node& root, const seed_user_data& u) {
    std::vector<std::string> keys;
    if (!u.users.empty()) keys.push_back("users");
    if (!u.packages.empty()) keys.push_back("packages");
    if (!u.write_files.empty()) keys.push_back("write_files");
    if (!u.bootcmd.empty()) keys.push_back("bootcmd");
    if (!u.runcmd.empty()) keys.push_back("runcmd");
    cmp.keys(root, keys, "user-data");
    if (!u.users.empty() && root["users"].IsSequence() && root["users"].size() == u.users.size())
        for (std::size_t i = 0; i < u.users.size(); ++i)
            check_user(cmp, root["users"][i], u.users[i], "users[" + std::to_string(i) + "]");
    cmp.strings(root["packages"], u.packages, "packages");
    if (!u.write_files.empty() && root["write_files"].IsSequence() &&
        root["write_files"].size() == u.write_files.size())
        for (std::size_t i = 0; i < u.write_files.size(); ++i)
            check_file(cmp, root["write_files"][i], u.write_files[i],
                       "write_files[" + std::to_string(i) + "]");
    check_commands(cmp, root["bootcmd"], u.bootcmd, "bootcmd");
    check_commands(cmp, root["runcmd"], u.runcmd, "runcmd");
}

void check_ethernet(comparison& cmp, const YAML::Node& n, const seed_ethernet& e, const std::string& where) {
    std::vector<std::string> keys;
    if (e.match_macaddress) keys.push_back("match");
    if (e.set_name) keys.push_back("set-name");
    keys.push_back("dhcp4");
    if (e.dhcp6) keys.push_back("dhcp6");
    if (!e.addresses.empty()) keys.push_back("addresses");
    if (!e.routes.empty()) keys.push_back("routes");
    if (!e.nameservers.empty() || !e.search.empty()) keys.push_back("nameservers");
    if (e.mtu) keys.push_back("mtu");
    cmp.keys(n, keys, where);
    if (e.match_macaddress) {
        std::string lower = *e.match_macaddress;
        for (auto& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        cmp.keys(n["match"], {"macaddress"}, where + ".match");
        cmp.string(n["match"]["macaddress"], lower, where + ".match.macaddress");
    }
    if (e.set_name) cmp.string(n["set-name"], *e.set_name, where + ".set-name");
    cmp.plain(n["dhcp4"], e.dhcp4 ? "true" : "false", where + ".dhcp4");
    if (e.dhcp6) cmp.plain(n["dhcp6"], "true", where + ".dhcp6");
    cmp.strings(n["addresses"], e.addresses, where + ".addresses");
    if (!e.routes.empty() && n["routes"].IsSequence() && n["routes"].size() == e.routes.size()) {
        for (std::size_t i = 0; i < e.routes.size(); ++i) {
            const auto r = n["routes"][i];
            const auto rw = where + ".routes[" + std::to_string(i) + "]";
            cmp.string(r["to"], e.routes[i].to, rw + ".to");
            cmp.string(r["via"], e.routes[i].via, rw + ".via");
            if (e.routes[i].metric)
                cmp.plain(r["metric"], std::to_string(*e.routes[i].metric), rw + ".metric");
        }
    }
    if (!e.nameservers.empty() || !e.search.empty()) {
        cmp.strings(n["nameservers"]["addresses"], e.nameservers, where + ".nameservers.addresses");
        cmp.strings(n["nameservers"]["search"], e.search, where + ".nameservers.search");
    }
    if (e.mtu) cmp.plain(n["mtu"], std::to_string(*e.mtu), where + ".mtu");
}

void check_seed_case(hostile_generator& g, int index, std::vector<std::string>& failures) {
    const auto config = random_seed(g);
    comparison cmp("seed case " + std::to_string(index));
    seed_documents docs;
    try {
        docs = render_seed(config);
    } catch (const vmrt::error& e) {
        cmp.fail("render", std::string("refused a valid seed: ") + e.what());
        failures.insert(failures.end(), cmp.failures().begin(), cmp.failures().end());
        return;
    }
    if (!docs.user_data.starts_with("#cloud-config\n")) cmp.fail("user-data", "no #cloud-config header");

    const auto meta = parse(docs.meta_data, cmp, "meta-data");
    if (meta.IsDefined()) {
        cmp.keys(meta,
                 config.meta_data.hostname.empty()
                     ? std::vector<std::string>{"instance-id"}
                     : std::vector<std::string>{"instance-id", "local-hostname"},
                 "meta-data");
        cmp.string(meta["instance-id"], config.meta_data.instance_id, "instance-id");
        if (!config.meta_data.hostname.empty())
            cmp.string(meta["local-hostname"], config.meta_data.hostname, "local-hostname");
    }
    const auto user = parse(docs.user_data, cmp, "user-data");
    if (user.IsDefined()) check_user_data(cmp, user, config.user_data);
    if (config.network_config) {
        const auto net = parse(docs.network_config.value_or(""), cmp, "network-config");
        if (net.IsDefined()) {
            cmp.keys(net, {"version", "ethernets"}, "network-config");
            cmp.plain(net["version"], "2", "version");
            std::vector<std::string> ids;
            for (const auto& e : config.network_config->ethernets) ids.push_back(e.id);
            cmp.keys(net["ethernets"], ids, "ethernets");
            std::size_t i = 0;
            if (net["ethernets"].IsMap())
                for (const auto& kv : net["ethernets"])
                    if (i < ids.size()) cmp.key(kv.first, ids[i++], "ethernets key");
            for (const auto& e : config.network_config->ethernets)
                check_ethernet(cmp, net["ethernets"][e.id], e, "ethernets." + e.id);
        }
    } else if (docs.network_config) {
        cmp.fail("network-config", "present without a network config");
    }
    if (!cmp.failures().empty())
        cmp.fail("documents",
                 "\n" + docs.meta_data + "\n" + docs.user_data + "\n" + docs.network_config.value_or(""));
    failures.insert(failures.end(), cmp.failures().begin(), cmp.failures().end());
}

BOOST_AUTO_TEST_SUITE(yaml_roundtrip_test)

BOOST_AUTO_TEST_CASE(hostile_strings_in_every_position_of_a_document) {
    hostile_generator g(generator_seed());
    std::vector<std::string> failures;
    for (int i = 0; i < document_cases; ++i) check_document_case(g, i, failures);
    report(failures, document_cases);
}

BOOST_AUTO_TEST_CASE(hostile_strings_in_every_field_of_a_seed) {
    hostile_generator g(generator_seed() + 1);
    std::vector<std::string> failures;
    for (int i = 0; i < seed_cases; ++i) check_seed_case(g, i, failures);
    report(failures, seed_cases);
}

BOOST_AUTO_TEST_CASE(the_parser_does_retype_unquoted_values) {
    // The check above is meaningful only if the parser distinguishes quoted and plain scalars.
    const auto doc = YAML::Load("a: yes\nb: \"yes\"\n");
    BOOST_TEST(doc["a"].Tag() == "?");
    BOOST_TEST(doc["b"].Tag() == "!");
    BOOST_TEST(doc["a"].as<bool>() == true);
    // And that unquoted YAML syntax in a value really does change a document (vm-rs's bug).
    const auto broken = YAML::Load("runcmd:\n  - echo a: b\n");
    BOOST_TEST(broken["runcmd"][0].IsMap());
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
