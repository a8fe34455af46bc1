// cloud-init seed configs: the exact documents a typed config renders to, and validation of every
// field that ends up in system files or network settings (errc::invalid_spec naming the field).
#include "image/seed_syntax.hpp"

#include <vmrt/image/seed.hpp>

#include <boost/test/unit_test.hpp>

#include <functional>
#include <string>

namespace {

using namespace vmrt::image;
using namespace std::string_literals;

seed_config minimal() {
    seed_config c;
    c.meta_data.instance_id = "iid-0001";
    return c;
}

seed_config full() {
    seed_config c;
    c.meta_data = {"iid-0001", "web-1.example.com"};
    seed_user alice;
    alice.name = "alice";
    alice.ssh_authorized_keys = {"ssh-ed25519 AAAAC3Nza alice@host", "from=\"10.0.0.0/8\" ssh-rsa AAAAB3 k"};
    alice.sudo = {"ALL=(ALL) NOPASSWD:ALL"};
    alice.shell = "/bin/bash";
    alice.groups = {"adm", "sudo"};
    c.user_data.users = {alice};
    c.user_data.packages = {"curl", "nginx=1.22*"};
    c.user_data.write_files = {{"/etc/motd", "hello: world # not a comment\n", 0644, "root:root", false},
                               {"/opt/blob", "\x89PNG\xFF\x00"s, std::nullopt, std::nullopt, true}};
    c.user_data.bootcmd = {{"mkdir", "-p", "/run/x"}};
    c.user_data.runcmd = {{"sh", "-c", "echo \"$HOME\" > /tmp/x; ls | wc -l"}, {"touch", "/tmp/done"}};
    seed_ethernet e;
    e.id = "eth0";
    e.match_macaddress = "52:54:00:AB:cd:01";
    e.set_name = "eth0";
    e.addresses = {"10.0.0.2/24", "fd00::2/64"};
    e.routes = {{"default", "10.0.0.1", std::nullopt}, {"10.9.0.0/16", "10.0.0.254", 100u}};
    e.nameservers = {"1.1.1.1", "2606:4700:4700::1111"};
    e.search = {"example.com"};
    e.mtu = 1500;
    seed_ethernet dhcp;
    dhcp.id = "lan1";
    dhcp.dhcp4 = true;
    dhcp.dhcp6 = true;
    c.network_config = seed_network_config{{e, dhcp}};
    return c;
}

void expect_invalid(const seed_config& c, const std::string& field, const std::string& message_part = {}) {
    try {
        validate_seed(c);
        BOOST_ERROR("accepted a seed with a bad " << field);
    } catch (const vmrt::error& e) {
        BOOST_TEST(e.code() == make_error_code(vmrt::errc::invalid_spec));
        BOOST_TEST(e.diag().field == field);
        BOOST_TEST(e.diag().message.find(field + ": ") != std::string::npos, e.diag().message);
        if (!message_part.empty())
            BOOST_TEST(e.diag().message.find(message_part) != std::string::npos, e.diag().message);
    }
}

seed_config with(std::function<void(seed_config&)> change) {
    auto c = full();
    change(c);
    return c;
}

BOOST_AUTO_TEST_SUITE(seed_config_test)

BOOST_AUTO_TEST_CASE(minimal_seed) {
    const auto docs = render_seed(minimal());
    BOOST_TEST(docs.meta_data == "instance-id: \"iid-0001\"\n");
    BOOST_TEST(docs.user_data == "#cloud-config\n{}\n");
    BOOST_TEST(!docs.network_config.has_value());
    const auto files = seed_iso_files(docs);
    BOOST_TEST(files.size() == 2u);
    BOOST_TEST(files.at("meta-data") == docs.meta_data);
    BOOST_TEST(files.at("user-data") == docs.user_data);
}

BOOST_AUTO_TEST_CASE(full_seed_documents) {
    const auto docs = render_seed(full());
    BOOST_TEST(docs.meta_data == "instance-id: \"iid-0001\"\nlocal-hostname: \"web-1.example.com\"\n");
    const std::string user_data = R"(#cloud-config
users:
  - name: "alice"
    lock_passwd: true
    shell: "/bin/bash"
    groups:
      - "adm"
      - "sudo"
    sudo:
      - "ALL=(ALL) NOPASSWD:ALL"
    ssh_authorized_keys:
      - "ssh-ed25519 AAAAC3Nza alice@host"
      - "from=\"10.0.0.0/8\" ssh-rsa AAAAB3 k"
packages:
  - "curl"
  - "nginx=1.22*"
write_files:
  - path: "/etc/motd"
    content: "hello: world # not a comment\n"
    permissions: "0644"
    owner: "root:root"
  - path: "/opt/blob"
    encoding: "b64"
    content: "iVBOR/8A"
    append: true
bootcmd:
  - - "mkdir"
    - "-p"
    - "/run/x"
runcmd:
  - - "sh"
    - "-c"
    - "echo \"$HOME\" > /tmp/x; ls | wc -l"
  - - "touch"
    - "/tmp/done"
)";
    BOOST_TEST(docs.user_data == user_data);
    const std::string network = R"(version: 2
ethernets:
  eth0:
    match:
      macaddress: "52:54:00:ab:cd:01"
    set-name: "eth0"
    dhcp4: false
    addresses:
      - "10.0.0.2/24"
      - "fd00::2/64"
    routes:
      - to: "default"
        via: "10.0.0.1"
      - to: "10.9.0.0/16"
        via: "10.0.0.254"
        metric: 100
    nameservers:
      addresses:
        - "1.1.1.1"
        - "2606:4700:4700::1111"
      search:
        - "example.com"
    mtu: 1500
  lan1:
    dhcp4: true
    dhcp6: true
)";
    BOOST_REQUIRE(docs.network_config.has_value());
    BOOST_TEST(*docs.network_config == network);
    const auto files = seed_iso_files(docs);
    BOOST_TEST(files.size() == 3u);
    BOOST_TEST(files.at("network-config") == network);
}

BOOST_AUTO_TEST_CASE(meta_data_rules) {
    expect_invalid(with([](auto& c) { c.meta_data.instance_id = ""; }), "meta_data.instance_id");
    expect_invalid(with([](auto& c) { c.meta_data.instance_id = ".."; }), "meta_data.instance_id");
    expect_invalid(with([](auto& c) { c.meta_data.instance_id = "a/b"; }), "meta_data.instance_id");
    expect_invalid(with([](auto& c) { c.meta_data.instance_id = std::string(129, 'a'); }),
                   "meta_data.instance_id");
    expect_invalid(with([](auto& c) { c.meta_data.hostname = "-bad"; }), "meta_data.hostname");
    expect_invalid(with([](auto& c) { c.meta_data.hostname = "a..b"; }), "meta_data.hostname");
    expect_invalid(with([](auto& c) { c.meta_data.hostname = "host: x"; }), "meta_data.hostname",
                   "found \"host: x\"");
}

BOOST_AUTO_TEST_CASE(user_data_rules) {
    expect_invalid(with([](auto& c) { c.user_data.users[0].name = "Alice"; }), "user_data.users[0].name");
    expect_invalid(with([](auto& c) { c.user_data.users.push_back(c.user_data.users[0]); }),
                   "user_data.users[1].name", "duplicate user");
    expect_invalid(
        with([](auto& c) { c.user_data.users[0].ssh_authorized_keys[1] = "ssh-rsa A\nssh-rsa B"; }),
        "user_data.users[0].ssh_authorized_keys[1]");
    expect_invalid(with([](auto& c) { c.user_data.users[0].ssh_authorized_keys[0] = ""; }),
                   "user_data.users[0].ssh_authorized_keys[0]");
    expect_invalid(with([](auto& c) { c.user_data.users[0].sudo[0] = "ALL\r"; }),
                   "user_data.users[0].sudo[0]");
    expect_invalid(with([](auto& c) { c.user_data.users[0].shell = "bash"; }), "user_data.users[0].shell");
    expect_invalid(with([](auto& c) { c.user_data.users[0].groups[1] = "wheel,root"; }),
                   "user_data.users[0].groups[1]");
    expect_invalid(with([](auto& c) { c.user_data.packages[1] = "a\nb"; }), "user_data.packages[1]");
    expect_invalid(with([](auto& c) { c.user_data.packages[0] = "\xFF"; }), "user_data.packages[0]",
                   "found \"\\xff\"");
}

BOOST_AUTO_TEST_CASE(write_files_rules) {
    expect_invalid(with([](auto& c) { c.user_data.write_files[0].path = "etc/motd"; }),
                   "user_data.write_files[0].path");
    expect_invalid(with([](auto& c) { c.user_data.write_files[0].path = "/etc/\0x"s; }),
                   "user_data.write_files[0].path");
    expect_invalid(with([](auto& c) { c.user_data.write_files[0].path = "/etc/\xC0\x80"; }),
                   "user_data.write_files[0].path", "UTF-8");
    expect_invalid(with([](auto& c) { c.user_data.write_files[0].permissions = 010000; }),
                   "user_data.write_files[0].permissions");
    expect_invalid(with([](auto& c) { c.user_data.write_files[0].owner = "root:"; }),
                   "user_data.write_files[0].owner");
    expect_invalid(with([](auto& c) { c.user_data.write_files[0].owner = "root:wheel:x"; }),
                   "user_data.write_files[0].owner");
    // Contents are bytes: anything goes (the unit test above shows the base64 form).
    BOOST_CHECK_NO_THROW(
        validate_seed(with([](auto& c) { c.user_data.write_files[0].content = "\0\xFF\n"s; })));
}

BOOST_AUTO_TEST_CASE(command_rules) {
    expect_invalid(with([](auto& c) { c.user_data.runcmd.push_back({}); }), "user_data.runcmd[2]",
                   "argv list");
    expect_invalid(with([](auto& c) { c.user_data.bootcmd[0][0] = ""; }), "user_data.bootcmd[0]");
    expect_invalid(with([](auto& c) { c.user_data.runcmd[0][2] = "a\0b"s; }), "user_data.runcmd[0][2]",
                   "NUL");
    expect_invalid(with([](auto& c) { c.user_data.runcmd[1][1] = "\xED\xA0\x80"; }),
                   "user_data.runcmd[1][1]");
    // Shell syntax, YAML syntax and line breaks are fine in arguments: they are data.
    BOOST_CHECK_NO_THROW(validate_seed(with([](auto& c) { c.user_data.runcmd[0][2] = "a: b\n- c # d"; })));
}

BOOST_AUTO_TEST_CASE(network_rules) {
    const std::string e0 = "network_config.ethernets[0]";
    expect_invalid(with([](auto& c) { c.network_config->ethernets[0].id = "eth0: x"; }), e0 + ".id");
    expect_invalid(with([](auto& c) { c.network_config->ethernets[1].id = "eth0"; }),
                   "network_config.ethernets[1].id", "duplicate");
    expect_invalid(with([](auto& c) { c.network_config->ethernets[0].match_macaddress = "52:54:00:ab:cd"; }),
                   e0 + ".match_macaddress");
    expect_invalid(
        with([](auto& c) { c.network_config->ethernets[0].match_macaddress = "52-54-00-ab-cd-01"; }),
        e0 + ".match_macaddress");
    expect_invalid(with([](auto& c) { c.network_config->ethernets[1].set_name = "x"; }),
                   "network_config.ethernets[1].set_name", "needs match_macaddress");
    expect_invalid(with([](auto& c) { c.network_config->ethernets[0].addresses[0] = "10.0.0.2"; }),
                   e0 + ".addresses[0]");
    expect_invalid(with([](auto& c) { c.network_config->ethernets[0].addresses[0] = "10.0.0.256/24"; }),
                   e0 + ".addresses[0]");
    expect_invalid(with([](auto& c) { c.network_config->ethernets[0].addresses[1] = "fd00::2/129"; }),
                   e0 + ".addresses[1]");
    expect_invalid(with([](auto& c) { c.network_config->ethernets[0].routes[0].to = "0.0.0.0"; }),
                   e0 + ".routes[0].to");
    expect_invalid(with([](auto& c) { c.network_config->ethernets[0].routes[1].via = "gateway"; }),
                   e0 + ".routes[1].via");
    expect_invalid(with([](auto& c) { c.network_config->ethernets[0].nameservers[0] = "1.1.1"; }),
                   e0 + ".nameservers[0]");
    expect_invalid(with([](auto& c) { c.network_config->ethernets[0].search[0] = "example.com; rm"; }),
                   e0 + ".search[0]");
    expect_invalid(with([](auto& c) { c.network_config->ethernets[0].mtu = 67; }), e0 + ".mtu");
}

BOOST_AUTO_TEST_CASE(every_problem_is_reported_at_once) {
    auto c = full();
    c.meta_data.instance_id = "";
    c.user_data.users[0].name = "0bad";
    c.network_config->ethernets[0].addresses[0] = "x";
    try {
        render_seed(c);
        BOOST_ERROR("accepted a bad seed");
    } catch (const vmrt::error& e) {
        BOOST_TEST(e.diag().field == "meta_data.instance_id");
        for (const auto* f : {"meta_data.instance_id: ", "user_data.users[0].name: ",
                              "network_config.ethernets[0].addresses[0]: "})
            BOOST_TEST(e.diag().message.find(f) != std::string::npos, e.diag().message);
    }
}

BOOST_AUTO_TEST_CASE(syntax_predicates) {
    using namespace syntax;
    BOOST_TEST(is_host_name("a"));
    BOOST_TEST(is_host_name("a-b.c0.example"));
    BOOST_TEST(is_host_name(std::string(63, 'a') + "." + std::string(63, 'b')));
    BOOST_TEST(!is_host_name(std::string(64, 'a')));
    BOOST_TEST(!is_host_name("a."));
    BOOST_TEST(!is_host_name("a_b"));
    BOOST_TEST(is_user_name("_svc-1"));
    BOOST_TEST(!is_user_name("1abc"));
    BOOST_TEST(!is_user_name(std::string(33, 'a')));
    BOOST_TEST(is_ip_address("::1"));
    BOOST_TEST(is_ip_address("192.168.0.1"));
    BOOST_TEST(!is_ip_address("192.168.0.1 "));
    BOOST_TEST(!is_ip_address("abc"));
    BOOST_TEST(!is_ip_address("1.2.3.4\0"s));
    BOOST_TEST(is_ip_prefix("0.0.0.0/0"));
    BOOST_TEST(is_ip_prefix("::/128"));
    BOOST_TEST(!is_ip_prefix("10.0.0.0/33"));
    BOOST_TEST(!is_ip_prefix("10.0.0.0/08"));
    BOOST_TEST(!is_ip_prefix("10.0.0.0/"));
    BOOST_TEST(!is_ip_prefix("10.0.0.0/+8"));
    BOOST_TEST(is_mac_address("52:54:00:AB:cd:ef"));
    BOOST_TEST(!is_mac_address("52:54:00:AB:cd:eg"));
    BOOST_TEST(is_interface_name("enp0s3.100"));
    BOOST_TEST(!is_interface_name("sixteen-chars-xx"));
    BOOST_TEST(!is_interface_name("a/b"));
    BOOST_TEST(is_instance_id("i-0123:abc.X_y"));
    BOOST_TEST(!is_single_line("a\rb"));
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
