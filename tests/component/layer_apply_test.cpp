// Applying image layers into a rootfs: a table of hostile layers that must never change anything
// outside it (a sentinel directory beside the rootfs is compared byte for byte, with modes, owners
// and times), whiteouts and opaque directories across layers per the OCI spec, Docker's replace
// semantics, ownership and modes, compressions, apply_layers' all-or-nothing rename, and random
// or corrupted tars that must give a clean error or a clean result.
#include "support/layer_tar.hpp"
#include "support/test_support.hpp"

#include <vmrt/image/layer_apply.hpp>

#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <functional>
#include <map>
#include <optional>
#include <random>

namespace {

namespace fs = std::filesystem;
using namespace vmrt::image;
using namespace vmrt::test;

/// Everything observable about a tree (no symlink followed): type, mode, owner, size, mtime,
/// contents or link target, per path.
std::map<std::string, std::string> snapshot(const fs::path& dir, const std::string& skip = {}) {
    std::map<std::string, std::string> out;
    for (auto it = fs::recursive_directory_iterator(dir); it != fs::recursive_directory_iterator(); ++it) {
        const std::string rel = fs::relative(it->path(), dir).string();
        if (!skip.empty() && rel == skip) {
            it.disable_recursion_pending();
            continue;
        }
        struct stat st {};
        BOOST_REQUIRE(::lstat(it->path().c_str(), &st) == 0);
        std::string d = std::to_string(st.st_mode) + " " + std::to_string(st.st_uid) + ":" +
                        std::to_string(st.st_gid) + " " + std::to_string(st.st_size) + " " +
                        std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec) + " " +
                        std::to_string(st.st_nlink);
        if (S_ISREG(st.st_mode)) d += " " + read_file(it->path());
        if (S_ISLNK(st.st_mode)) d += " -> " + fs::read_symlink(it->path()).string();
        out[rel] = d;
    }
    return out;
}

void set_old_mtime(const fs::path& p) {
    const struct timespec times[2] = {{1000000000, 0}, {1000000000, 0}};
    BOOST_REQUIRE(::utimensat(AT_FDCWD, p.c_str(), times, AT_SYMLINK_NOFOLLOW) == 0);
}

/// <tmp>/rootfs (with etc/passwd from a "base layer"), <tmp>/sentinel (a file, a subdirectory, a
/// symlink, all with old times), <tmp>/layers.
struct sandbox {
    temp_dir tmp;
    fs::path rootfs = tmp / "rootfs";
    fs::path sentinel = tmp / "sentinel";
    fs::path layers = tmp / "layers";
    int layer_count = 0;

    sandbox() {
        fs::create_directories(rootfs / "etc");
        write_file(rootfs / "etc/passwd", "root:x:0:0\n");
        fs::create_directories(sentinel / "sub");
        fs::create_directories(layers);
        write_file(sentinel / "secret", "do not touch\n");
        write_file(sentinel / "sub/inner", "inner\n");
        fs::create_symlink("secret", sentinel / "link");
        for (const auto* p : {"secret", "sub/inner", "sub", "link", ""}) set_old_mtime(sentinel / p);
    }
    /// The tree outside the rootfs and the layer files: must never change.
    std::map<std::string, std::string> outside() const {
        auto s = snapshot(tmp.path(), "rootfs");
        std::erase_if(s, [](const auto& kv) { return kv.first.starts_with("layers"); });
        return s;
    }
    fs::path layer(const std::vector<tar_entry>& entries, tar_compression c = tar_compression::none) {
        const fs::path p = layers / ("layer" + std::to_string(++layer_count) + ".tar");
        write_tar(p, entries, c);
        return p;
    }
};

enum class outcome { refused, inside };

struct hostile_case {
    std::string name;
    std::function<std::vector<std::vector<tar_entry>>(const sandbox&)> layers;
    outcome expected;
    /// For `inside`: what the rootfs must look like afterwards.
    std::function<void(const sandbox&, const layer_summary&)> check;
};

bool is_link(const fs::path& p) { return fs::is_symlink(fs::symlink_status(p)); }

std::vector<hostile_case> hostile_cases() {
    using L = std::vector<std::vector<tar_entry>>;
    const auto refused = outcome::refused;
    const auto inside = outcome::inside;
    return {
        {"dotdot file", [](auto&) { return L{{tar_file("../x", "evil")}}; }, refused, {}},
        {"dotdot to sentinel",
         [](auto&) { return L{{tar_file("../sentinel/secret", "evil")}}; },
         refused,
         {}},
        {"dotdot in the middle", [](auto&) { return L{{tar_file("a/../../x", "evil")}}; }, refused, {}},
        {"dot-slash dotdot", [](auto&) { return L{{tar_file("./../x", "evil")}}; }, refused, {}},
        {"dotdot directory", [](auto&) { return L{{tar_dir("../newdir")}}; }, refused, {}},
        {"dotdot symlink name", [](auto&) { return L{{tar_symlink("../lnk", "/")}}; }, refused, {}},
        {"absolute path stays inside", [](auto&) { return L{{tar_file("/etc/x", "abs")}}; }, inside,
         [](const sandbox& s, auto&) {
             BOOST_TEST(read_file(s.rootfs / "etc/x") == "abs");
         }},
        {"absolute path of the sentinel stays inside",
         [](const sandbox& s) { return L{{tar_file(s.sentinel.string() + "/secret", "planted")}}; }, inside,
         [](const sandbox& s, auto&) {
             BOOST_TEST(read_file(s.rootfs / s.sentinel.relative_path() / "secret") == "planted");
         }},
        {"symlink to / then write through it",
         [](auto&) {
             return L{{tar_symlink("evil", "/")}, {tar_file("evil/x", "through")}};
         },
         inside,
         [](const sandbox& s, auto&) {
             BOOST_TEST(read_file(s.rootfs / "x") == "through");
             BOOST_TEST(is_link(s.rootfs / "evil"));
         }},
        {"symlink to ../.. then write through it (same layer)",
         [](auto&) {
             return L{{tar_symlink("evil", "../.."), tar_file("evil/x", "through")}};
         },
         inside,
         [](const sandbox& s, auto&) {
             BOOST_TEST(read_file(s.rootfs / "x") == "through");
         }},
        {"symlink chain escaping",
         [](auto&) {
             return L{{tar_symlink("a", "b"), tar_symlink("b", "../../../.."), tar_file("a/etc/y", "chain")}};
         },
         inside,
         [](const sandbox& s, auto&) {
             BOOST_TEST(read_file(s.rootfs / "etc/y") == "chain");
         }},
        {"symlink to the sentinel's absolute path then write through it",
         [](const sandbox& s) {
             return L{{tar_symlink("evil", s.sentinel.string())}, {tar_file("evil/secret", "x")}};
         },
         refused,
         {}},
        {"symlink to ../sentinel then write through it",
         [](auto&) {
             return L{{tar_symlink("evil", "../sentinel"), tar_file("evil/secret", "x")}};
         },
         refused,
         {}},
        {"symlink to ../sentinel then mkdir through it",
         [](auto&) {
             return L{{tar_symlink("evil", "../sentinel")}, {tar_dir("evil/sub/newdir")}};
         },
         refused,
         {}},
        {"symlink to an outside file then a hard link to it",
         [](const sandbox& s) {
             return L{{tar_symlink("s", s.sentinel.string() + "/secret"), tar_hardlink("h", "s")}};
         },
         inside,
         [](const sandbox& s, auto&) {
             BOOST_TEST(is_link(s.rootfs / "h"));  // the symlink itself was linked
             BOOST_TEST(fs::read_symlink(s.rootfs / "h") == s.sentinel / "secret");
         }},
        {"hard link through a symlinked directory to outside",
         [](const sandbox& s) {
             return L{{tar_symlink("sdir", s.sentinel.string())}, {tar_hardlink("h", "sdir/secret")}};
         },
         refused,
         {}},
        {"hard link to ../../outside",
         [](auto&) { return L{{tar_hardlink("h", "../../sentinel/secret")}}; },
         refused,
         {}},
        {"hard link to an absolute outside path",
         [](const sandbox& s) { return L{{tar_hardlink("h", s.sentinel.string() + "/secret")}}; },
         refused,
         {}},
        {"hard link to a symlink pointing outside, then a file written to it",
         [](const sandbox& s) {
             return L{{tar_symlink("s", s.sentinel.string() + "/secret"), tar_hardlink("h", "s")},
                      {tar_file("h", "replaced")}};
         },
         inside,
         [](const sandbox& s, auto&) {
             BOOST_TEST(read_file(s.rootfs / "h") == "replaced");
             BOOST_TEST(is_link(s.rootfs / "s"));
         }},
        {"whiteout ../.wh.secret", [](auto&) { return L{{tar_file("../.wh.secret", "")}}; }, refused, {}},
        {"whiteout ../sentinel/.wh.secret",
         [](auto&) { return L{{tar_file("../sentinel/.wh.secret", "")}}; },
         refused,
         {}},
        {"whiteout .wh... (names ..)", [](auto&) { return L{{tar_file(".wh...", "")}}; }, refused, {}},
        {"whiteout dir/.wh... (names ..)",
         [](auto&) {
             return L{{tar_dir("etc"), tar_file("etc/.wh...", "")}};
         },
         refused,
         {}},
        {"whiteout .wh.. (names .)", [](auto&) { return L{{tar_file("etc/.wh..", "")}}; }, refused, {}},
        {"whiteout .wh. (names nothing)", [](auto&) { return L{{tar_file(".wh.", "")}}; }, refused, {}},
        {"whiteout through a symlink to the sentinel",
         [](const sandbox& s) {
             return L{{tar_symlink("link", s.sentinel.string())}, {tar_file("link/.wh.secret", "")}};
         },
         inside,
         [](const sandbox& s, const layer_summary& sum) {
             BOOST_TEST(sum.skipped_count == 1u);
             BOOST_TEST(is_link(s.rootfs / "link"));
         }},
        {"whiteout through a relative symlink to ../sentinel",
         [](auto&) {
             return L{{tar_symlink("link", "../sentinel")}, {tar_file("link/.wh.secret", "")}};
         },
         inside,
         [](const sandbox&, const layer_summary& sum) {
             BOOST_TEST(sum.skipped_count == 1u);
         }},
        {"whiteout through a symlink to a directory inside",
         [](auto&) {
             return L{{tar_symlink("link", "/etc")}, {tar_file("link/.wh.passwd", "")}};
         },
         inside,
         [](const sandbox& s, const layer_summary& sum) {
             BOOST_TEST(sum.skipped_count == 1u);
             BOOST_TEST(fs::exists(s.rootfs / "etc/passwd"));  // not deleted through the symlink
         }},
        {"opaque marker in a symlink to ..",
         [](auto&) {
             return L{{tar_symlink("link", "..")}, {tar_file("link/.wh..wh..opq", "")}};
         },
         inside,
         [](const sandbox& s, const layer_summary& sum) {
             BOOST_TEST(sum.skipped_count == 1u);
             BOOST_TEST(sum.opaque_dirs == 0u);
             BOOST_TEST(fs::exists(s.rootfs / "etc/passwd"));
         }},
        {"opaque marker in a symlink to the sentinel",
         [](const sandbox& s) {
             return L{{tar_symlink("link", s.sentinel.string())}, {tar_opaque("link")}};
         },
         inside,
         [](const sandbox&, const layer_summary& sum) {
             BOOST_TEST(sum.skipped_count == 1u);
         }},
        {"file replacing a symlink that points outside",
         [](const sandbox& s) {
             return L{
                 {tar_symlink("s", s.sentinel.string() + "/secret"), tar_symlink("r", "../sentinel/secret")},
                 {tar_file("s", "new"), tar_file("r", "new too")}};
         },
         inside,
         [](const sandbox& s, auto&) {
             BOOST_TEST(!is_link(s.rootfs / "s"));
             BOOST_TEST(read_file(s.rootfs / "s") == "new");
             BOOST_TEST(read_file(s.rootfs / "r") == "new too");
         }},
        {"directory replacing a symlink that points outside",
         [](auto&) {
             return L{{tar_symlink("d", "../sentinel")}, {tar_dir("d", 0700), tar_file("d/f", "in")}};
         },
         inside,
         [](const sandbox& s, auto&) {
             BOOST_TEST(fs::is_directory(fs::symlink_status(s.rootfs / "d")));
             BOOST_TEST(read_file(s.rootfs / "d/f") == "in");
         }},
        {"device node without permission",
         [](auto&) {
             auto dev = tar_entry{tar_entry::blockdev, "dev/sda", {}, 0660};
             dev.major = 8;
             return L{{dev}};
         },
         inside,
         [](const sandbox& s, const layer_summary& sum) {
             BOOST_TEST(sum.skipped_count == 1u);
             BOOST_TEST(!fs::exists(fs::symlink_status(s.rootfs / "dev/sda")));
         }},
        {"setuid file without permission", [](auto&) { return L{{tar_file("bin/su", "#!", 04755)}}; }, inside,
         [](const sandbox& s, const layer_summary& sum) {
             BOOST_TEST(sum.setid_cleared == 1u);
             struct stat st {};
             BOOST_REQUIRE(::stat((s.rootfs / "bin/su").c_str(), &st) == 0);
             BOOST_TEST((st.st_mode & 07777) == 0755u);
         }},
        {"file capability without permission",
         [](auto&) {
             auto f = tar_file("bin/ping", "elf", 0755);
             f.xattrs = {{"security.capability",
                          std::string("\x01\x00\x00\x02\x00\x20\x00\x00", 8) + std::string(12, '\0')}};
             return L{{f}};
         },
         inside,
         [](const sandbox& s, const layer_summary& sum) {
             BOOST_TEST(sum.setid_cleared == 1u);
             char buf[64];
             BOOST_TEST(::lgetxattr((s.rootfs / "bin/ping").c_str(), "security.capability", buf, sizeof buf) <
                        0);
         }},
    };
}

/// Applies each layer in turn; returns the summed summary, or the error if one was refused.
std::pair<layer_summary, std::optional<vmrt::error>>
apply_all(sandbox& s, const std::vector<std::vector<tar_entry>>& layers) {
    layer_summary total;
    for (const auto& entries : layers) {
        const auto blob = s.layer(entries);
        try {
            total += apply_layer(s.rootfs, blob);
        } catch (const vmrt::error& e) {
            return {total, e};
        }
    }
    return {total, std::nullopt};
}

std::vector<fs::path> whiteout_files(const fs::path& rootfs) {
    std::vector<fs::path> out;
    for (const auto& e : fs::recursive_directory_iterator(rootfs))
        if (e.path().filename().string().starts_with(".wh.")) out.push_back(e.path());
    return out;
}

std::string type_of(const fs::path& p) {
    const auto st = fs::symlink_status(p);
    if (fs::is_symlink(st)) return "symlink";
    if (fs::is_directory(st)) return "dir";
    if (fs::is_regular_file(st)) return "file";
    return fs::exists(st) ? "other" : "missing";
}

}  // namespace

BOOST_AUTO_TEST_SUITE(layer_apply_test)

BOOST_AUTO_TEST_CASE(hostile_layers_never_touch_anything_outside_the_rootfs) {
    BOOST_REQUIRE_MESSAGE(::geteuid() == 0, "these tests check ownership and device nodes: run as root");
    for (const auto& c : hostile_cases()) {
        BOOST_TEST_CONTEXT("case: " << c.name) {
            sandbox s;
            const auto before = s.outside();
            const auto [summary, error] = apply_all(s, c.layers(s));
            BOOST_TEST((s.outside() == before), "something outside the rootfs changed");
            BOOST_TEST(whiteout_files(s.rootfs).empty());
            if (c.expected == outcome::refused) {
                BOOST_TEST_REQUIRE(error.has_value(), "the layer was not refused");
                BOOST_TEST((error->code() == vmrt::errc::protocol_error), error->what());
                BOOST_TEST(std::string(error->what()).find("layer entry") != std::string::npos,
                           error->what());
                BOOST_TEST_MESSAGE(c.name << ": refused: " << error->what());
            } else {
                BOOST_TEST_REQUIRE(!error.has_value(), (error ? error->what() : ""));
                c.check(s, summary);
                for (const auto& sk : summary.skipped)
                    BOOST_TEST_MESSAGE(c.name << ": skipped " << sk.path << ": " << sk.reason);
            }
        }
    }
}

BOOST_AUTO_TEST_CASE(whiteouts_and_opaque_directories_across_three_layers) {
    sandbox s;
    fs::remove_all(s.rootfs);
    fs::create_directory(s.rootfs);
    const auto l1 = s.layer({tar_dir("etc"), tar_file("etc/a", "a1"), tar_file("etc/b", "b1"), tar_dir("opt"),
                             tar_dir("opt/keep"), tar_file("opt/keep/f1", "f1"), tar_file("opt/drop", "d"),
                             tar_dir("var"), tar_dir("var/cache"), tar_file("var/cache/x", "x"),
                             tar_dir("srv"), tar_file("srv/lower", "l")});
    // Layer 2: the opaque marker comes AFTER opt/new and opt/keep/f2 of the same layer, and
    // etc/c is both written and whited out here: the spec says whiteouts only hide lower layers.
    const auto l2 = s.layer({tar_whiteout("etc/a"), tar_dir("opt"), tar_file("opt/new", "n"),
                             tar_file("opt/keep/f2", "f2"), tar_opaque("opt"), tar_whiteout("var/cache"),
                             tar_file("etc/c", "c2"), tar_whiteout("etc/c"), tar_file("srv/upper", "u"),
                             tar_whiteout("srv"), tar_whiteout("nothing/here")});
    const auto l3 = s.layer({tar_file("etc/a", "a3"), tar_whiteout("opt/keep"), tar_opaque("srv")});
    const auto s1 = apply_layer(s.rootfs, l1);
    BOOST_TEST(s1.entries_applied == 12u);
    const auto s2 = apply_layer(s.rootfs, l2);
    BOOST_TEST(s2.whiteouts_applied == 5u);
    BOOST_TEST(s2.opaque_dirs == 1u);
    BOOST_TEST(type_of(s.rootfs / "etc/a") == "missing");
    BOOST_TEST(read_file(s.rootfs / "etc/b") == "b1");
    BOOST_TEST(read_file(s.rootfs / "etc/c") == "c2");  // same layer: not hidden
    BOOST_TEST(read_file(s.rootfs / "opt/new") == "n");
    BOOST_TEST(read_file(s.rootfs / "opt/keep/f2") == "f2");
    BOOST_TEST(type_of(s.rootfs / "opt/keep/f1") == "missing");  // lower content of an opaque dir
    BOOST_TEST(type_of(s.rootfs / "opt/drop") == "missing");
    BOOST_TEST(type_of(s.rootfs / "var/cache") == "missing");
    BOOST_TEST(type_of(s.rootfs / "var") == "dir");
    BOOST_TEST(type_of(s.rootfs / "srv/lower") == "missing");  // srv whited out below...
    BOOST_TEST(read_file(s.rootfs / "srv/upper") == "u");      // ...but this layer's file stays
    apply_layer(s.rootfs, l3);
    BOOST_TEST(read_file(s.rootfs / "etc/a") == "a3");
    BOOST_TEST(type_of(s.rootfs / "opt/keep") == "missing");
    BOOST_TEST(read_file(s.rootfs / "opt/new") == "n");
    BOOST_TEST(type_of(s.rootfs / "srv") == "dir");
    BOOST_TEST(fs::is_empty(s.rootfs / "srv"));
    BOOST_TEST(whiteout_files(s.rootfs).empty());
}

BOOST_AUTO_TEST_CASE(entries_replace_what_is_there_like_docker) {
    sandbox s;
    const auto l1 = s.layer({tar_file("f", "file"), tar_dir("d"), tar_file("d/x", "x"), tar_dir("l-target"),
                             tar_file("l-target/kept", "k"), tar_symlink("l", "l-target"), tar_file("g", "g"),
                             tar_dir("m"), tar_file("m/old", "o"), tar_file("h-src", "h")});
    const auto l2 = s.layer({tar_dir("f"), tar_file("f/inside", "i"), tar_file("d", "now a file"),
                             tar_dir("l"), tar_symlink("g", "f"), tar_dir("m"), tar_file("m/new", "n"),
                             tar_hardlink("h", "h-src"), tar_file("h-src", "replaced")});
    apply_layer(s.rootfs, l1);
    apply_layer(s.rootfs, l2);
    BOOST_TEST(type_of(s.rootfs / "f") == "dir");
    BOOST_TEST(read_file(s.rootfs / "f/inside") == "i");
    BOOST_TEST(read_file(s.rootfs / "d") == "now a file");
    BOOST_TEST(type_of(s.rootfs / "l") == "dir");              // a directory replaced the symlink...
    BOOST_TEST(read_file(s.rootfs / "l-target/kept") == "k");  // ...without touching its target
    BOOST_TEST(fs::is_empty(s.rootfs / "l"));
    BOOST_TEST(type_of(s.rootfs / "g") == "symlink");
    BOOST_TEST(read_file(s.rootfs / "m/old") == "o");  // directories merge
    BOOST_TEST(read_file(s.rootfs / "m/new") == "n");
    BOOST_TEST(read_file(s.rootfs / "h") == "h");             // the link keeps the old inode
    BOOST_TEST(read_file(s.rootfs / "h-src") == "replaced");  // the new file is a new inode
}

BOOST_AUTO_TEST_CASE(modes_owners_times_links_and_nodes_are_kept) {
    BOOST_REQUIRE_MESSAGE(::geteuid() == 0, "ownership and device nodes need root");
    sandbox s;
    auto f = tar_file("srv/data", "payload", 0640);
    f.uid = 1234;
    f.gid = 5678;
    f.mtime = 1600000000;
    auto d = tar_dir("srv", 0750);
    d.uid = 42;
    d.gid = 43;
    d.mtime = 1500000000;
    auto l = tar_symlink("srv/link", "data");
    l.uid = 7;
    l.gid = 8;
    auto su = tar_file("bin/su", "#!", 04755);
    auto null = tar_entry{tar_entry::chardev, "dev/null", {}, 0666};
    null.major = 1;
    null.minor = 3;
    auto fifo = tar_entry{tar_entry::fifo, "run/fifo", {}, 0620};
    auto x = tar_file("srv/attr", "a", 0600);
    x.xattrs = {{"user.vmrt", "value"}};
    const auto blob = s.layer({d, f, l, tar_hardlink("srv/hard", "srv/data"), su, null, fifo, x});
    layer_options o;
    o.allow_device_nodes = true;
    o.allow_setid = true;
    const auto sum = apply_layer(s.rootfs, blob, o);
    BOOST_TEST(sum.skipped_count == 0u);
    BOOST_TEST(sum.bytes_written == 10u);
    struct stat st {};
    BOOST_REQUIRE(::lstat((s.rootfs / "srv/data").c_str(), &st) == 0);
    BOOST_TEST((st.st_mode & 07777) == 0640u);
    BOOST_TEST(st.st_uid == 1234u);
    BOOST_TEST(st.st_gid == 5678u);
    BOOST_TEST(st.st_mtim.tv_sec == 1600000000);
    BOOST_TEST(st.st_nlink == 2u);
    const auto data_ino = st.st_ino;
    BOOST_REQUIRE(::lstat((s.rootfs / "srv/hard").c_str(), &st) == 0);
    BOOST_TEST(st.st_ino == data_ino);
    BOOST_REQUIRE(::lstat((s.rootfs / "srv").c_str(), &st) == 0);
    BOOST_TEST((st.st_mode & 07777) == 0750u);
    BOOST_TEST(st.st_uid == 42u);
    BOOST_TEST(st.st_mtim.tv_sec == 1500000000);  // set after its children were written
    BOOST_REQUIRE(::lstat((s.rootfs / "srv/link").c_str(), &st) == 0);
    BOOST_TEST(S_ISLNK(st.st_mode));
    BOOST_TEST(st.st_uid == 7u);
    BOOST_REQUIRE(::lstat((s.rootfs / "bin/su").c_str(), &st) == 0);
    BOOST_TEST((st.st_mode & 07777) == 04755u);
    BOOST_REQUIRE(::lstat((s.rootfs / "dev/null").c_str(), &st) == 0);
    BOOST_TEST(S_ISCHR(st.st_mode));
    BOOST_TEST(st.st_rdev == makedev(1, 3));
    BOOST_TEST((st.st_mode & 07777) == 0666u);
    BOOST_REQUIRE(::lstat((s.rootfs / "run/fifo").c_str(), &st) == 0);
    BOOST_TEST(S_ISFIFO(st.st_mode));
    BOOST_TEST((st.st_mode & 07777) == 0620u);
    char value[16] = {};
    BOOST_TEST(::lgetxattr((s.rootfs / "srv/attr").c_str(), "user.vmrt", value, sizeof value) == 5);
    BOOST_TEST(std::string(value) == "value");
}

BOOST_AUTO_TEST_CASE(gzip_and_zstd_layers_and_media_types) {
    sandbox s;
    const std::vector<tar_entry> entries{tar_dir("a"), tar_file("a/f", std::string(100000, 'z'))};
    for (auto c : {tar_compression::none, tar_compression::gzip, tar_compression::zstd}) {
        sandbox t;
        const auto blob = t.layer(entries, c);
        const auto sum = apply_layer(t.rootfs, blob);
        BOOST_TEST(sum.bytes_written == 100000u);
        BOOST_TEST(read_file(t.rootfs / "a/f") == std::string(100000, 'z'));
    }
    BOOST_TEST((compression_for_media_type("application/vnd.oci.image.layer.v1.tar+zstd") ==
                blob_compression::zstd));
    BOOST_TEST((compression_for_media_type("application/vnd.oci.image.layer.v1.tar+gzip") ==
                blob_compression::gzip));
    BOOST_TEST((compression_for_media_type("application/vnd.docker.image.rootfs.diff.tar.gzip") ==
                blob_compression::gzip));
    BOOST_TEST(
        (compression_for_media_type("application/vnd.oci.image.layer.v1.tar") == blob_compression::none));
    BOOST_CHECK_THROW(compression_for_media_type("application/x-bzip2"), vmrt::error);
    // A media type that contradicts the blob is refused before anything is written.
    const auto gz = s.layer(entries, tar_compression::gzip);
    layer_options zstd_says;
    zstd_says.compression = blob_compression::zstd;
    try {
        apply_layer(s.rootfs, gz, zstd_says);
        BOOST_FAIL("a gzip blob announced as zstd was applied");
    } catch (const vmrt::error& e) {
        BOOST_TEST((e.code() == vmrt::errc::protocol_error), e.what());
    }
    BOOST_TEST(!fs::exists(s.rootfs / "a"));
}

BOOST_AUTO_TEST_CASE(apply_layers_renames_on_success_and_leaves_nothing_on_failure) {
    sandbox s;
    const auto good1 = s.layer({tar_file("etc/os-release", "ID=test\n"), tar_file("etc/gone", "x")});
    const auto good2 =
        s.layer({tar_whiteout("etc/gone"), tar_file("etc/hostname", "vm\n")}, tar_compression::gzip);
    const auto bad = s.layer({tar_file("ok", "x"), tar_file("../escape", "x")});
    const fs::path out = s.tmp / "image-root";
    const std::vector<layer> both{{good1, {}}, {good2, {}}};
    const std::vector<layer> first{{good1, {}}};
    const std::vector<layer> then_bad{{good1, {}}, {bad, {}}};
    const auto sum = apply_layers(out, both);
    BOOST_TEST(sum.entries_applied == 3u);
    BOOST_TEST(sum.whiteouts_applied == 1u);
    BOOST_TEST(read_file(out / "etc/hostname") == "vm\n");
    BOOST_TEST(!fs::exists(out / "etc/gone"));
    // An existing target is refused; a failing layer leaves neither the target nor a temp dir.
    BOOST_CHECK_THROW(apply_layers(out, first), vmrt::error);
    const auto before = snapshot(s.tmp.path());
    const fs::path failed = s.tmp / "failed-root";
    BOOST_CHECK_THROW(apply_layers(failed, then_bad), vmrt::error);
    BOOST_TEST(!fs::exists(failed));
    BOOST_TEST((snapshot(s.tmp.path()) == before));
}

BOOST_AUTO_TEST_CASE(random_and_corrupted_tars_give_an_error_or_a_result_inside) {
    // Deterministic: the same bytes every run. Each input is random bytes, a valid layer with
    // random bytes overwritten, or a valid layer cut short; each must end in a vmrt::error or a
    // result, with nothing outside the rootfs changed.
    sandbox s;
    const auto valid = s.layer({tar_dir("etc"), tar_file("etc/a", std::string(3000, 'a')),
                                tar_symlink("l", "/"), tar_file("l/etc/b", "b"), tar_hardlink("h", "etc/a"),
                                tar_whiteout("etc/zz"), tar_opaque("etc")});
    const std::string bytes = read_file(valid);
    const auto before = s.outside();
    std::mt19937 rng(1234);
    int errors = 0, results = 0;
    for (int i = 0; i < 400; ++i) {
        std::string input;
        if (i % 3 == 0) {
            input.resize(rng() % 4096);
            for (auto& c : input) c = static_cast<char>(rng());
        } else if (i % 3 == 1) {
            input = bytes;
            for (int k = 0; k < 8; ++k) input[rng() % input.size()] = static_cast<char>(rng());
        } else {
            input = bytes.substr(0, rng() % bytes.size());
        }
        const fs::path blob = s.layers / "fuzz.tar";
        write_file(blob, input);
        fs::remove_all(s.rootfs);
        fs::create_directory(s.rootfs);
        try {
            apply_layer(s.rootfs, blob);
            ++results;
        } catch (const vmrt::error&) {
            ++errors;
        }
    }
    BOOST_TEST_MESSAGE("errors " << errors << ", results " << results);
    BOOST_TEST(errors > 0);
    BOOST_TEST((s.outside() == before));
}

BOOST_AUTO_TEST_SUITE_END()
