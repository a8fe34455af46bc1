// The OCI content-addressed store on a real file system: blob writes, resume after a SIGKILLed
// writer, concurrent writers (coroutines and processes), tags, verify, gc, size accounting.
// Child processes are forked (they only use the store) and owned by a child_guard that kills and
// reaps them, so a failing test leaves no process behind; every store lives in a temp_dir.
#include "support/test_support.hpp"

#include <vmrt/image/oci_store.hpp>
#include <vmrt/io/sha256.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using vmrt::errc;
using vmrt::image::blob_writer;
using vmrt::image::oci_store;
using vmrt::image::tag_ref;
using vmrt::test::run_coro;
using vmrt::test::temp_dir;

std::string digest_of(const std::string& content) { return "sha256:" + vmrt::io::sha256_hex(content); }

std::string pattern(std::size_t size, unsigned seed) {
    std::string s(size, '\0');
    unsigned x = seed * 2654435761u + 1;
    for (auto& c : s) {
        x = x * 1103515245u + 12345u;
        c = static_cast<char>(x >> 16);
    }
    return s;
}

std::vector<std::string> names_in(const fs::path& dir) {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
    return out;
}

/// Runs `f` and checks that it throws a vmrt::error with `code`; returns its message.
std::string expect_error(const std::function<void()>& f, errc code) {
    try {
        f();
    } catch (const vmrt::error& e) {
        BOOST_TEST(e.code() == make_error_code(code), "got " << e.code().message() << ": " << e.what());
        return e.what();
    }
    BOOST_FAIL("no error thrown, expected " << make_error_code(code).message());
    return {};
}

/// Nothing left behind by writers: no partial, no lock file.
void check_no_leftovers(const oci_store& store) {
    BOOST_TEST(names_in(store.root() / "tmp").empty());
    BOOST_TEST(names_in(store.root() / "locks").empty());
}

blob_writer begin(const oci_store& store, const std::string& digest, std::uint64_t size) {
    std::optional<blob_writer> w;
    run_coro([&]() -> asio::awaitable<void> { w.emplace(co_await store.begin_blob(digest, size)); });
    return std::move(*w);
}

std::string write_blob(const oci_store& store, const std::string& content) {
    auto digest = digest_of(content);
    auto w = begin(store, digest, content.size());
    w.write(content);
    w.commit();
    return digest;
}

void set_mtime_ago(const fs::path& file, std::chrono::seconds ago) {
    timespec times[2];
    times[0].tv_sec = times[1].tv_sec = std::time(nullptr) - static_cast<time_t>(ago.count());
    times[0].tv_nsec = times[1].tv_nsec = 0;
    BOOST_REQUIRE(::utimensat(AT_FDCWD, file.c_str(), times, 0) == 0);
}

/// A pipe whose ends close on destruction.
struct pipe_pair {
    int fds[2] = {-1, -1};
    pipe_pair() { BOOST_REQUIRE(::pipe2(fds, O_CLOEXEC) == 0); }
    ~pipe_pair() {
        for (int fd : fds)
            if (fd >= 0) ::close(fd);
    }
    void close_read() { ::close(std::exchange(fds[0], -1)); }
    void close_write() { ::close(std::exchange(fds[1], -1)); }
};

/// Waits (bounded) for one byte on `fd`; false on EOF, error or timeout.
bool read_byte(int fd, int timeout_ms = 10000) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) != 1) return false;
    char c;
    return ::read(fd, &c, 1) == 1;
}

/// A forked child that is SIGKILLed and reaped on destruction unless it was already reaped.
struct child_guard {
    pid_t pid = -1;
    ~child_guard() {
        if (pid > 0) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, nullptr, 0);
        }
    }
    /// Waits for the exit; returns the raw wait status.
    int wait() {
        int status = 0;
        ::waitpid(std::exchange(pid, -1), &status, 0);
        return status;
    }
};

/// Forks a child that runs `body` with a private io_context and exits with its result (1 if it
/// throws); the child never returns into the test framework.
pid_t fork_child(const std::function<int(asio::io_context&)>& body) {
    pid_t pid = ::fork();
    BOOST_REQUIRE(pid >= 0);
    if (pid == 0) {
        int code = 1;
        try {
            asio::io_context ctx;
            code = body(ctx);
        } catch (...) {
        }
        ::_exit(code);
    }
    return pid;
}

const tag_ref ref_a{"registry.example:5000", "library/app", "v1"};
const tag_ref ref_b{"registry.example:5000", "library/app", "v2"};

std::string manifest_json(const std::string& config, const std::vector<std::string>& layers) {
    boost::json::array l;
    for (const auto& d : layers)
        l.push_back(boost::json::object{
            {"mediaType", "application/vnd.oci.image.layer.v1.tar+gzip"}, {"digest", d}, {"size", 1}});
    boost::json::object m{{"schemaVersion", 2},
                          {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                          {"config", boost::json::object{{"digest", config}, {"size", 1}}},
                          {"layers", std::move(l)}};
    return boost::json::serialize(m);
}

std::string index_json(const std::vector<std::string>& manifests) {
    boost::json::array a;
    for (const auto& d : manifests) a.push_back(boost::json::object{{"digest", d}, {"size", 1}});
    return boost::json::serialize(boost::json::object{{"schemaVersion", 2}, {"manifests", std::move(a)}});
}

}  // namespace

BOOST_AUTO_TEST_SUITE(oci_store_test)

BOOST_AUTO_TEST_CASE(layout_and_version_marker) {
    temp_dir dir;
    {
        oci_store store(dir / "store");
        for (const char* sub : {"blobs/sha256", "refs", "tmp", "locks"})
            BOOST_TEST(fs::is_directory(store.root() / sub));
        BOOST_TEST(vmrt::test::read_file(store.root() / "store.json").find("\"version\":1") !=
                   std::string::npos);
    }
    oci_store again(dir / "store");  // an existing store of this version opens
    vmrt::test::write_file(dir / "store" / "store.json", R"({"format":"vmrt-oci-store","version":2})");
    expect_error([&] { oci_store s(dir / "store"); }, errc::unsupported);
}

BOOST_AUTO_TEST_CASE(write_commit_read) {
    temp_dir dir;
    oci_store store(dir / "store");
    const auto content = pattern(300000, 1);
    const auto digest = digest_of(content);
    BOOST_TEST(!store.has_blob(digest));
    {
        auto w = begin(store, digest, content.size());
        BOOST_TEST(!w.already_present());
        BOOST_TEST(w.offset() == 0u);
        BOOST_TEST(!w.resumed());
        for (std::size_t at = 0; at < content.size(); at += 70000) w.write(content.substr(at, 70000));
        BOOST_TEST(w.offset() == content.size());
        BOOST_TEST(w.commit() == store.blob_path(digest));
    }
    BOOST_TEST(store.has_blob(digest));
    BOOST_TEST(store.blob_size(digest) == content.size());
    BOOST_TEST(vmrt::test::read_file(store.blob_path(digest)) == content);
    BOOST_TEST(store.read_small_blob(digest) == content);
    expect_error([&] { store.read_small_blob(digest, 1000); }, errc::protocol_error);
    auto fd = store.open_blob(digest);
    char first = 0;
    BOOST_TEST(::read(fd.get(), &first, 1) == 1);
    BOOST_TEST(first == content[0]);
    // Committed blobs are read-only.
    BOOST_TEST(
        ((fs::status(store.blob_path(digest)).permissions() & fs::perms::owner_write) == fs::perms::none));
    check_no_leftovers(store);

    auto again = begin(store, digest, content.size());
    BOOST_TEST(again.already_present());
    BOOST_TEST(again.commit() == store.blob_path(digest));

    // put_blob for small content held in memory (a manifest fetched by tag).
    BOOST_TEST(store.put_blob("{}") == digest_of("{}"));
    BOOST_TEST(store.read_small_blob(digest_of("{}")) == "{}");
    expect_error([&] { store.put_blob("{ }", digest_of("{}")); }, errc::digest_mismatch);

    const auto missing = digest_of("absent");
    expect_error([&] { store.open_blob(missing); }, errc::not_found);
    expect_error([&] { store.read_small_blob(missing); }, errc::not_found);
    expect_error([&] { store.blob_path("sha256:ABC"); }, errc::invalid_spec);
    expect_error([&] { store.blob_path("sha256:" + std::string(64, 'A')); }, errc::invalid_spec);
    expect_error([&] { store.blob_path("sha256:../../etc/passwd"); }, errc::invalid_spec);
    expect_error([&] { store.blob_path("sha512:" + std::string(128, 'a')); }, errc::unsupported);
}

BOOST_AUTO_TEST_CASE(wrong_digest_leaves_nothing) {
    temp_dir dir;
    oci_store store(dir / "store");
    const auto content = pattern(5000, 2);
    const auto wrong = digest_of("something else");
    auto w = begin(store, wrong, content.size());
    w.write(content);
    auto message = expect_error([&] { w.commit(); }, errc::digest_mismatch);
    BOOST_TEST(message.find(wrong) != std::string::npos);
    BOOST_TEST(message.find(digest_of(content)) != std::string::npos);
    BOOST_TEST(names_in(store.root() / "blobs" / "sha256").empty());
    check_no_leftovers(store);
}

BOOST_AUTO_TEST_CASE(wrong_size) {
    temp_dir dir;
    oci_store store(dir / "store");
    const auto content = pattern(5000, 3);
    const auto digest = digest_of(content);
    {
        auto w = begin(store, digest, content.size() + 10);  // the body ends short
        w.write(content);
        auto message = expect_error([&] { w.commit(); }, errc::incomplete_body);
        BOOST_TEST(message.find("5000 bytes, expected 5010") != std::string::npos);
    }
    {
        auto w = begin(store, digest, content.size() - 1);  // the body runs long
        auto message = expect_error([&] { w.write(content); }, errc::protocol_error);
        BOOST_TEST(message.find("expected 4999") != std::string::npos);
        expect_error([&] { w.write("x"); }, errc::invalid_state);
    }
    BOOST_TEST(names_in(store.root() / "blobs" / "sha256").empty());
    check_no_leftovers(store);
}

BOOST_AUTO_TEST_CASE(abandoned_writer_keeps_resumable_partial_and_restart) {
    temp_dir dir;
    oci_store store(dir / "store");
    const auto content = pattern(100000, 4);
    const auto digest = digest_of(content);
    {
        auto w = begin(store, digest, content.size());
        w.write(content.substr(0, 40000));
    }  // dropped connection, the writer goes away
    BOOST_TEST(names_in(store.root() / "locks").empty());
    auto w = begin(store, digest, content.size());
    BOOST_TEST(w.resumed());
    BOOST_TEST(w.offset() == 40000u);
    // The server ignored the Range: start again from zero.
    w.restart();
    BOOST_TEST(w.offset() == 0u);
    w.write(content);
    w.commit();
    BOOST_TEST(store.read_small_blob(digest) == content);
    check_no_leftovers(store);
    // A writer that wrote nothing leaves no partial.
    { auto empty = begin(store, digest_of("x"), 1); }
    check_no_leftovers(store);
}

BOOST_AUTO_TEST_CASE(resume_after_sigkill) {
    temp_dir dir;
    const auto root = dir / "store";
    oci_store store(root);
    const auto content = pattern(1 << 20, 5);
    const auto digest = digest_of(content);
    const std::size_t half = content.size() / 2;
    pipe_pair ready;
    child_guard child;
    child.pid = fork_child([&](asio::io_context& ctx) {
        oci_store s(root);
        std::optional<blob_writer> w;
        asio::co_spawn(
            ctx, [&]() -> asio::awaitable<void> { w.emplace(co_await s.begin_blob(digest, content.size())); },
            asio::detached);
        ctx.run();
        w->write(content.substr(0, half));
        char c = 'r';
        if (::write(ready.fds[1], &c, 1) != 1) return 2;
        ::pause();  // killed here, holding the lock with half a blob written
        return 3;
    });
    ready.close_write();
    BOOST_REQUIRE(read_byte(ready.fds[0]));
    // While the child lives it holds the blob: nobody else may take it.
    BOOST_TEST(!store.try_begin_blob(digest, content.size()).has_value());
    ::kill(child.pid, SIGKILL);
    int status = child.wait();
    BOOST_TEST(WIFSIGNALED(status));
    const auto partial = root / "tmp" / (digest.substr(7) + ".partial");
    BOOST_TEST(fs::file_size(partial) == half);

    auto w = begin(store, digest, content.size());  // the kernel dropped the dead child's flock
    BOOST_TEST(w.resumed());
    BOOST_TEST(w.offset() == half);
    BOOST_TEST(w.partial_path() == partial);
    w.write(content.substr(w.offset()));
    w.commit();
    BOOST_TEST(vmrt::test::read_file(store.blob_path(digest)) == content);
    // The dead child's lock file stays until someone takes and releases the lock: ours did.
    check_no_leftovers(store);
}

BOOST_AUTO_TEST_CASE(concurrent_coroutines_one_writer) {
    temp_dir dir;
    oci_store store(dir / "store");
    const auto content = pattern(200000, 6);
    const auto digest = digest_of(content);
    int writers = 0, present = 0;
    bool first_committed = false, second_saw_commit = false;
    std::set<std::string> temp_names_seen;
    run_coro([&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        auto pull = [&](bool first) -> asio::awaitable<void> {
            asio::steady_timer t(ex);
            if (!first) {  // start once the first holds the lock
                t.expires_after(20ms);
                co_await t.async_wait(asio::use_awaitable);
            }
            auto w = co_await store.begin_blob(digest, content.size());
            if (w.already_present()) {
                ++present;
                second_saw_commit = first_committed;
                co_return;
            }
            ++writers;
            w.write(content.substr(0, 1000));
            for (const auto& n : names_in(store.root() / "tmp")) temp_names_seen.insert(n);
            t.expires_after(150ms);  // a slow download: the other pull waits meanwhile
            co_await t.async_wait(asio::use_awaitable);
            for (const auto& n : names_in(store.root() / "tmp")) temp_names_seen.insert(n);
            w.write(content.substr(1000));
            w.commit();
            first_committed = true;
        };
        // A cancelled wait gives up cleanly while the blob is held.
        auto probe = [&]() -> asio::awaitable<void> {
            asio::steady_timer t(ex);
            t.expires_after(40ms);
            co_await t.async_wait(asio::use_awaitable);
            using namespace asio::experimental::awaitable_operators;
            asio::steady_timer limit(ex);
            limit.expires_after(30ms);
            auto raced =
                co_await (store.begin_blob(digest, content.size()) || limit.async_wait(asio::use_awaitable));
            BOOST_TEST(raced.index() == 1u);  // the timer won: the wait was cancelled
        };
        asio::co_spawn(ex, pull(true), asio::detached);
        asio::co_spawn(ex, probe(), asio::detached);
        co_await pull(false);
    });
    BOOST_TEST(writers == 1);
    BOOST_TEST(present == 1);
    BOOST_TEST(second_saw_commit);
    BOOST_TEST(temp_names_seen.size() == 1u);  // one partial, never two writers' temp files
    BOOST_TEST(vmrt::test::read_file(store.blob_path(digest)) == content);
    check_no_leftovers(store);
}

BOOST_AUTO_TEST_CASE(concurrent_processes_one_writer) {
    temp_dir dir;
    const auto root = dir / "store";
    oci_store store(root);
    const auto content = pattern(300000, 7);
    const auto digest = digest_of(content);
    pipe_pair ready, go;
    child_guard child;
    child.pid = fork_child([&](asio::io_context& ctx) {
        oci_store s(root);
        std::optional<blob_writer> w;
        asio::co_spawn(
            ctx, [&]() -> asio::awaitable<void> { w.emplace(co_await s.begin_blob(digest, content.size())); },
            asio::detached);
        ctx.run();
        if (w->already_present()) return 4;
        w->write(content.substr(0, 1000));
        char c = 'r';
        if (::write(ready.fds[1], &c, 1) != 1) return 2;
        if (!read_byte(go.fds[0])) return 5;
        w->write(content.substr(1000));
        w->commit();
        return 0;
    });
    ready.close_write();
    go.close_read();
    BOOST_REQUIRE(read_byte(ready.fds[0]));

    bool done = false, present = false, returned_before_go = false;
    std::vector<std::string> temp_names;
    run_coro([&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        asio::co_spawn(
            ex,
            [&]() -> asio::awaitable<void> {
                auto w = co_await store.begin_blob(digest, content.size());
                present = w.already_present();
                done = true;
            },
            asio::detached);
        asio::steady_timer t(ex);
        t.expires_after(300ms);
        co_await t.async_wait(asio::use_awaitable);
        returned_before_go = done;
        temp_names = names_in(root / "tmp");
        char c = 'g';
        BOOST_REQUIRE(::write(go.fds[1], &c, 1) == 1);
        while (!done) {
            t.expires_after(10ms);
            co_await t.async_wait(asio::use_awaitable);
        }
    });
    int status = child.wait();
    BOOST_TEST((WIFEXITED(status) && WEXITSTATUS(status) == 0), "child wait status " << status);
    BOOST_TEST(!returned_before_go);  // we waited for the other process
    BOOST_TEST(present);              // and then did not write: it was there
    BOOST_TEST(temp_names == vmrt::test::strings(digest.substr(7) + ".partial"));
    BOOST_TEST(vmrt::test::read_file(store.blob_path(digest)) == content);
    check_no_leftovers(store);
}

BOOST_AUTO_TEST_CASE(tags) {
    temp_dir dir;
    oci_store store(dir / "store");
    const auto d1 = digest_of("m1"), d2 = digest_of("m2");
    BOOST_TEST(!store.resolve_tag(ref_a).has_value());
    store.set_tag(ref_a, d1);
    store.set_tag(ref_b, d1);
    BOOST_TEST(*store.resolve_tag(ref_a) == d1);
    store.set_tag(ref_b, d2);  // retag
    BOOST_TEST(*store.resolve_tag(ref_b) == d2);
    // A repository that is also the prefix of another repository's path.
    const tag_ref nested{"registry.example:5000", "library/app/v1", "latest"};
    store.set_tag(nested, d2);
    auto images = store.list_images();
    BOOST_REQUIRE(images.size() == 3u);
    BOOST_TEST(vmrt::image::to_string(images[0].ref) == vmrt::image::to_string(ref_a));
    BOOST_TEST(images[0].digest == d1);
    BOOST_TEST(vmrt::image::to_string(images[1].ref) == vmrt::image::to_string(ref_b));
    BOOST_TEST(vmrt::image::to_string(images[2].ref) == vmrt::image::to_string(nested));
    BOOST_TEST(vmrt::image::to_string(ref_a) == "registry.example:5000/library/app:v1");
    BOOST_TEST(store.remove_tag(ref_b));
    BOOST_TEST(!store.remove_tag(ref_b));
    BOOST_TEST(store.list_images().size() == 2u);

    expect_error([&] { store.set_tag({"reg", "../etc", "x"}, d1); }, errc::invalid_spec);
    expect_error([&] { store.set_tag({"reg", "Upper/case", "x"}, d1); }, errc::invalid_spec);
    expect_error([&] { store.set_tag({"reg", "a//b", "x"}, d1); }, errc::invalid_spec);
    expect_error([&] { store.set_tag({"..", "a", "x"}, d1); }, errc::invalid_spec);
    expect_error([&] { store.set_tag({"reg", "a", "../x"}, d1); }, errc::invalid_spec);
    expect_error([&] { store.set_tag({"reg", "a", ".x"}, d1); }, errc::invalid_spec);
    expect_error([&] { store.set_tag(ref_a, "sha256:nothex"); }, errc::invalid_spec);
    // A damaged tag file is reported, and list_images skips it.
    vmrt::test::write_file(dir / "store" / "refs" / "registry.example:5000" / "library" / "app" / ":v1",
                           "junk");
    expect_error([&] { store.resolve_tag(ref_a); }, errc::protocol_error);
    BOOST_TEST(store.list_images().size() == 1u);
}

BOOST_AUTO_TEST_CASE(verify_detects_flipped_byte) {
    temp_dir dir;
    oci_store store(dir / "store");
    const auto good = write_blob(store, pattern(3 << 20, 8));  // several verify chunks
    const auto bad_content = pattern(10000, 9);
    const auto bad = write_blob(store, bad_content);
    const auto path = store.blob_path(bad);
    fs::permissions(path, fs::perms::owner_write, fs::perm_options::add);
    {
        auto flipped = bad_content;
        flipped[5000] ^= 0x01;
        vmrt::test::write_file(path, flipped);
    }
    expect_error([&] { store.read_small_blob(bad); }, errc::digest_mismatch);
    run_coro([&]() -> asio::awaitable<void> {
        auto ok = co_await store.verify(good);
        BOOST_TEST(ok.ok);
        auto r = co_await store.verify(bad);
        BOOST_TEST(!r.ok);
        BOOST_TEST(r.actual != bad);
        auto report = co_await store.verify_all();
        BOOST_TEST(report.blobs_checked == 2u);
        BOOST_TEST(report.bytes_checked == (3u << 20) + 10000u);
        BOOST_REQUIRE(report.corrupt.size() == 1u);
        BOOST_TEST(report.corrupt[0].digest == bad);
        auto quarantined = co_await store.verify_all(vmrt::image::verify_action::quarantine);
        BOOST_TEST(quarantined.corrupt.size() == 1u);
    });
    BOOST_TEST(!store.has_blob(bad));
    BOOST_TEST(store.has_blob(good));
    auto q = names_in(dir / "store" / "quarantine");
    BOOST_REQUIRE(q.size() == 1u);
    BOOST_TEST(q[0].rfind(bad.substr(7), 0) == 0u);
    // A blob that was flipped and is removed outright.
    const auto other = write_blob(store, "tiny");
    fs::permissions(store.blob_path(other), fs::perms::owner_write, fs::perm_options::add);
    vmrt::test::write_file(store.blob_path(other), "tinY");
    run_coro([&]() -> asio::awaitable<void> {
        auto r = co_await store.verify(other, vmrt::image::verify_action::remove);
        BOOST_TEST(!r.ok);
    });
    BOOST_TEST(!store.has_blob(other));
}

struct image_graph {
    std::string l1, l2, l3, c1, c2, m1, m2, index;
    std::uint64_t m1_bytes = 0, m2_bytes = 0, index_bytes = 0, l2_size = 0;
};

// tag → index → {m1: c1 + l1 + l2, m2: c2 + l2 + l3}; l2 is shared.
image_graph build_graph(const oci_store& store) {
    image_graph g;
    const auto l1 = pattern(10000, 11), l2 = pattern(20000, 12), l3 = pattern(40000, 13);
    g.l1 = write_blob(store, l1);
    g.l2 = write_blob(store, l2);
    g.l3 = write_blob(store, l3);
    g.l2_size = l2.size();
    const std::string c1 = R"({"architecture":"amd64","config":{"Env":["A=1"]}})";
    const std::string c2 = R"({"architecture":"arm64","config":{"Env":["A=2"]}})";
    g.c1 = store.put_blob(c1);
    g.c2 = store.put_blob(c2);
    const auto m1 = manifest_json(g.c1, {g.l1, g.l2});
    const auto m2 = manifest_json(g.c2, {g.l2, g.l3});
    g.m1 = store.put_blob(m1);
    g.m2 = store.put_blob(m2);
    const auto index = index_json({g.m1, g.m2});
    g.index = store.put_blob(index);
    g.m1_bytes = m1.size() + c1.size() + l1.size() + l2.size();
    g.m2_bytes = m2.size() + c2.size() + l2.size() + l3.size();
    g.index_bytes = index.size();
    return g;
}

BOOST_AUTO_TEST_CASE(gc_keeps_reachable_removes_the_rest) {
    temp_dir dir;
    oci_store store(dir / "store");
    auto g = build_graph(store);
    store.set_tag(ref_a, g.index);
    // Unreferenced: a lone blob, and an untagged manifest with a layer of its own.
    const auto lone_content = pattern(7000, 14), orphan_layer_content = pattern(9000, 15);
    const auto lone = write_blob(store, lone_content);
    const auto orphan_layer = write_blob(store, orphan_layer_content);
    const auto orphan_manifest_json = manifest_json(g.c1, {orphan_layer, g.l1});
    const auto orphan_manifest = store.put_blob(orphan_manifest_json);
    // A manifest kept by keep_roots (a pull whose tag is not written yet) and its layer.
    const auto pending_layer = write_blob(store, pattern(3000, 16));
    const auto pending = store.put_blob(manifest_json(g.c2, {pending_layer}));
    // A stale partial (its writer died long ago) and a partial whose writer is alive.
    const auto stale_digest = digest_of("stale");
    {
        auto w = begin(store, stale_digest, 100);
        w.write("stale");
    }
    const auto stale_partial = store.root() / "tmp" / (stale_digest.substr(7) + ".partial");
    set_mtime_ago(stale_partial, 2h);
    const auto live_digest = digest_of("live");
    auto live = begin(store, live_digest, 100);
    live.write("li");
    set_mtime_ago(live.partial_path(), 2h);

    // Within the grace period nothing unreferenced goes.
    auto young = store.gc();
    BOOST_TEST(young.removed_blobs.empty());
    BOOST_TEST(young.bytes_freed == 5u);  // only the stale partial
    BOOST_TEST(!fs::exists(stale_partial));
    BOOST_TEST(fs::exists(live.partial_path()));

    vmrt::image::gc_options options;
    options.min_age = 0s;
    options.keep_roots = vmrt::test::strings(pending);
    options.dry_run = true;
    auto dry = store.gc(options);
    BOOST_TEST(dry.removed_blobs.size() == 3u);
    BOOST_TEST(store.has_blob(lone));
    options.dry_run = false;
    auto result = store.gc(options);
    std::set<std::string> removed(result.removed_blobs.begin(), result.removed_blobs.end());
    BOOST_TEST((removed == std::set<std::string>{lone, orphan_layer, orphan_manifest}));
    BOOST_TEST(result.bytes_freed ==
               lone_content.size() + orphan_layer_content.size() + orphan_manifest_json.size());
    BOOST_TEST(dry.bytes_freed == result.bytes_freed);
    for (const auto& d : {g.l1, g.l2, g.l3, g.c1, g.c2, g.m1, g.m2, g.index, pending, pending_layer})
        BOOST_TEST(store.has_blob(d), d);
    BOOST_TEST(result.kept_blobs == 10u);
    BOOST_TEST(fs::exists(live.partial_path()));  // locked: in use

    live.discard();
    // Without the tag everything goes except what keep_roots reaches.
    store.remove_tag(ref_a);
    options.keep_roots.clear();
    auto all = store.gc(options);
    BOOST_TEST(all.removed_blobs.size() == 10u);
    BOOST_TEST(names_in(store.root() / "blobs" / "sha256").empty());
    check_no_leftovers(store);
}

BOOST_AUTO_TEST_CASE(gc_removes_dead_lock_files) {
    temp_dir dir;
    const auto root = dir / "store";
    oci_store store(root);
    const auto digest = digest_of("x");
    pipe_pair ready;
    child_guard child;
    child.pid = fork_child([&](asio::io_context&) {
        oci_store s(root);
        auto w = s.try_begin_blob(digest, 1);
        if (!w) return 2;
        char c = 'r';
        if (::write(ready.fds[1], &c, 1) != 1) return 2;
        ::pause();
        return 3;
    });
    ready.close_write();
    BOOST_REQUIRE(read_byte(ready.fds[0]));
    BOOST_TEST(names_in(root / "locks").size() == 1u);
    store.gc();
    BOOST_TEST(names_in(root / "locks").size() == 1u);  // held: left alone
    ::kill(child.pid, SIGKILL);
    child.wait();
    // The dead writer's empty partial goes too once it is older than the grace period (0 here).
    vmrt::image::gc_options options;
    options.min_age = 0s;
    auto result = store.gc(options);
    BOOST_TEST(result.removed_temp_files.size() == 1u);
    check_no_leftovers(store);
}

BOOST_AUTO_TEST_CASE(size_accounting_counts_shared_layers_once) {
    temp_dir dir;
    oci_store store(dir / "store");
    auto g = build_graph(store);
    store.set_tag(ref_a, g.m1);
    store.set_tag(ref_b, g.m2);
    const auto loose = write_blob(store, pattern(5000, 17));
    const auto missing_layer = digest_of("never pulled");
    const tag_ref partial_ref{"registry.example:5000", "library/partial", "v1"};
    store.set_tag(partial_ref, store.put_blob(manifest_json(g.c1, {missing_layer})));

    auto u = store.usage();
    BOOST_REQUIRE(u.images.size() == 3u);
    const auto& a = u.images[0];
    const auto& b = u.images[1];
    const auto& p = u.images[2];
    BOOST_TEST(vmrt::image::to_string(a.image.ref) == vmrt::image::to_string(ref_a));
    BOOST_TEST(a.bytes == g.m1_bytes);
    BOOST_TEST(a.blobs == 4u);
    BOOST_TEST(b.bytes == g.m2_bytes);
    BOOST_TEST(vmrt::image::to_string(p.image.ref) == vmrt::image::to_string(partial_ref));
    BOOST_TEST(p.missing == vmrt::test::strings(missing_layer));
    const auto partial_manifest_size = store.blob_size(*store.resolve_tag(partial_ref));
    // l2 is in both images but counted once; c1 is shared with the partial image.
    BOOST_TEST(u.referenced_bytes == g.m1_bytes + g.m2_bytes - g.l2_size + partial_manifest_size);
    BOOST_TEST(u.blob_bytes == u.referenced_bytes + g.index_bytes + store.blob_size(loose));
    BOOST_TEST(u.blob_count == 10u);
    BOOST_TEST(u.temp_bytes == 0u);
}

BOOST_AUTO_TEST_SUITE_END()
