// Seed ISOs written in-process, read back by independent tools: isoinfo (genisoimage) reports the
// volume id, Rock Ridge and Joliet and extracts every file byte for byte through both name
// extensions; blkid finds the "cidata" label; byte 32808 holds what the default guest's init
// compares. Also: atomic replacement, and failures that leave the destination untouched.
// (A real guest mounting the seed is an integration test of the guest image.)
#include "support/test_support.hpp"

#include <vmrt/image/iso9660.hpp>
#include <vmrt/image/seed.hpp>
#include <vmrt/io/process.hpp>

#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace vmrt::image;
using namespace std::string_literals;
using vmrt::test::read_file;
using vmrt::test::temp_dir;

/// A file of the image, extracted by isoinfo through Rock Ridge ("-R") or Joliet ("-J") names.
std::string isoinfo_extract(const fs::path& iso, const std::string& extension, const std::string& name) {
    auto [code, output] =
        vmrt::test::run_to_end("isoinfo", {extension, "-x", "/" + name, "-i", iso.string()});
    BOOST_TEST(code == 0, "isoinfo " << extension << " -x /" << name << ": " << output);
    return output;
}

std::string bytes_at(const fs::path& file, std::streamoff offset, std::size_t count) {
    std::ifstream in(file, std::ios::binary);
    in.seekg(offset);
    std::string out(count, '\0');
    in.read(out.data(), static_cast<std::streamsize>(count));
    out.resize(static_cast<std::size_t>(in.gcount()));
    return out;
}

seed_config sample_seed(bool with_network) {
    seed_config c;
    c.meta_data = {"iid-seed-test", "seed-test"};
    seed_user u;
    u.name = "ops";
    u.ssh_authorized_keys = {"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyMaterial ops@host"};
    u.sudo = {"ALL=(ALL) NOPASSWD:ALL"};
    c.user_data.users = {u};
    c.user_data.write_files = {{"/etc/vmrt/hello", "a: b # not yaml\n- item\n", 0600, "root:root", false}};
    c.user_data.runcmd = {{"sh", "-c", "echo 'a: b' #x > /tmp/y"}};
    if (with_network) {
        seed_ethernet e;
        e.id = "lan0";
        e.match_macaddress = "52:54:00:12:34:56";
        e.set_name = "lan0";
        e.addresses = {"10.0.2.15/24"};
        e.routes = {{"default", "10.0.2.2", std::nullopt}};
        e.nameservers = {"10.0.2.3"};
        c.network_config = seed_network_config{{e}};
    }
    return c;
}

std::vector<std::string> entries_of(const fs::path& dir) {
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(dir)) names.push_back(entry.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(seed_iso_test)

BOOST_AUTO_TEST_CASE(isoinfo_reads_the_seed_back) {
    temp_dir dir;
    const auto iso = dir / "seed.iso";
    const auto config = sample_seed(true);
    write_seed_iso(config, iso);
    const auto docs = render_seed(config);

    auto [code, info] = vmrt::test::run_to_end("isoinfo", {"-d", "-i", iso.string()});
    BOOST_TEST(code == 0, info);
    BOOST_TEST(info.find("Volume id: CIDATA\n") != std::string::npos, info);
    BOOST_TEST(info.find("Joliet with UCS level") != std::string::npos, info);
    BOOST_TEST(info.find("Rock Ridge signatures") != std::string::npos, info);

    auto [list_code, listing] = vmrt::test::run_to_end("isoinfo", {"-R", "-f", "-i", iso.string()});
    BOOST_TEST(list_code == 0, listing);
    BOOST_TEST(listing == "/meta-data\n/network-config\n/user-data\n");

    for (const auto* ext : {"-R", "-J"}) {
        BOOST_TEST(isoinfo_extract(iso, ext, "meta-data") == docs.meta_data);
        BOOST_TEST(isoinfo_extract(iso, ext, "user-data") == docs.user_data);
        BOOST_TEST(isoinfo_extract(iso, ext, "network-config") == *docs.network_config);
    }
    BOOST_TEST(docs.meta_data == "instance-id: \"iid-seed-test\"\nlocal-hostname: \"seed-test\"\n");
}

BOOST_AUTO_TEST_CASE(the_label_is_where_blkid_and_the_guest_init_look) {
    temp_dir dir;
    const auto iso = dir / "seed.iso";
    write_seed_iso(sample_seed(false), iso);
    // The primary volume descriptor: type 1, "CD001", the volume id at byte 32808 (padded with
    // spaces). The default guest's init reads 6 bytes there and lower-cases them.
    BOOST_TEST(bytes_at(iso, 32768, 6) == "\x01"
                                          "CD001");
    auto label = bytes_at(iso, 32808, 32);
    BOOST_TEST(label == "CIDATA" + std::string(26, ' '));
    // blkid reports the Joliet volume id when there is one: "cidata", as with genisoimage -volid cidata.
    auto [code, probe] = vmrt::test::run_to_end("blkid", {"-p", "-o", "export", iso.string()});
    BOOST_TEST(code == 0, probe);
    BOOST_TEST(probe.find("\nLABEL=cidata\n") != std::string::npos, probe);
    BOOST_TEST(probe.find("\nTYPE=iso9660\n") != std::string::npos, probe);
    // Without a network config there is no network-config file.
    auto [list_code, listing] = vmrt::test::run_to_end("isoinfo", {"-R", "-f", "-i", iso.string()});
    BOOST_TEST(list_code == 0);
    BOOST_TEST(listing == "/meta-data\n/user-data\n");
}

BOOST_AUTO_TEST_CASE(raw_images_carry_any_bytes) {
    temp_dir dir;
    const auto iso = dir / "raw.iso";
    std::string big(300000, '\0');
    for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>((i * 7919) % 251);
    const iso_files files{
        {"empty", ""}, {"binary", "\0\xFF\x80\n\r"s}, {"big", big}, {"long-name-with.dots.txt", "x"}};
    write_iso9660(files, "SEED_2", iso);
    auto [code, info] = vmrt::test::run_to_end("isoinfo", {"-d", "-i", iso.string()});
    BOOST_TEST(info.find("Volume id: SEED_2\n") != std::string::npos, info);
    for (const auto& [name, contents] : files) BOOST_TEST(isoinfo_extract(iso, "-R", name) == contents, name);
    // The in-memory form is the same image.
    const auto image = build_iso9660(files, "SEED_2");
    BOOST_TEST(image.size() % 2048 == 0u);
    BOOST_TEST(image.size() == fs::file_size(iso));
}

BOOST_AUTO_TEST_CASE(an_existing_image_is_replaced_atomically) {
    temp_dir dir;
    const auto iso = dir / "seed.iso";
    vmrt::test::write_file(iso, "old contents");
    write_seed_iso(sample_seed(false), iso);
    BOOST_TEST(bytes_at(iso, 32769, 5) == "CD001");
    BOOST_TEST(entries_of(dir.path()) == std::vector<std::string>{"seed.iso"});
    BOOST_TEST(
        ((fs::status(iso).permissions() & fs::perms::all) ==
         (fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read | fs::perms::others_read)));
}

BOOST_AUTO_TEST_CASE(failures_leave_the_destination_untouched) {
    temp_dir dir;
    const auto iso = dir / "seed.iso";
    vmrt::test::write_file(iso, "old contents");

    auto bad = sample_seed(false);
    bad.user_data.runcmd.push_back({});
    try {
        write_seed_iso(bad, iso);
        BOOST_ERROR("wrote a seed with an empty command");
    } catch (const vmrt::error& e) {
        BOOST_TEST((e.code() == vmrt::errc::invalid_spec));
        BOOST_TEST(e.diag().field == "user_data.runcmd[1]");
    }
    BOOST_TEST(read_file(iso) == "old contents");

    try {
        write_iso9660({{"a/b", "x"}}, "cidata", iso);
        BOOST_ERROR("accepted a file name with a slash");
    } catch (const vmrt::error& e) {
        BOOST_TEST((e.code() == vmrt::errc::invalid_spec));
        BOOST_TEST(e.diag().field == "files[a/b]");
    }
    for (const auto* id : {"", "has space", "dash-ed", "123456789012345678901234567890123"}) {
        BOOST_CHECK_THROW(write_iso9660({{"a", "x"}}, id, iso), vmrt::error);
    }
    BOOST_TEST(read_file(iso) == "old contents");

    const auto missing = dir / "no-such-dir" / "seed.iso";
    try {
        write_seed_iso(sample_seed(false), missing);
        BOOST_ERROR("wrote into a missing directory");
    } catch (const vmrt::error& e) {
        BOOST_TEST(e.code().value() == ENOENT);
        BOOST_TEST(std::string(e.what()).find(missing.string()) != std::string::npos, e.what());
    }
    BOOST_TEST(entries_of(dir.path()) == std::vector<std::string>{"seed.iso"});
}

BOOST_AUTO_TEST_SUITE_END()
