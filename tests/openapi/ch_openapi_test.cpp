// Cloud Hypervisor's OpenAPI file against the client and the double (issue 6): every path of
// tests/data/cloud-hypervisor-openapi.yaml (a byte-for-byte copy of CH's
// vmm/src/api/openapi/cloud-hypervisor.yaml, see shared/reference/cloud-hypervisor.md) must be
//  * known to the client: in exactly one of hv::ch::implemented_endpoints() and
//    skipped_endpoints() (with a reason), with the file's method, and no table entry may be
//    missing from the file; the implemented table must equal the requests that api_client's member
//    functions really send (recorded by an in-test peer);
//  * routed by vmrt-fake-cloud-hypervisor with the file's method: never CH's route miss (404
//    ["Not Found"]) nor its wrong-method reply (400 ["Bad Request"]); the other method is refused.
// The file is read at test time (path in VMRT_CH_OPENAPI) and parsed with yaml-cpp, a test-only
// dependency: this suite is its own executable so the component tier does not link yaml-cpp.
#include "hv/ch_api.hpp"
#include "io/http_unix_client.hpp"
#include "support/test_support.hpp"

#include <vmrt/io/process.hpp>
#include <vmrt/io/with_timeout.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/local/connect_pair.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace asio = boost::asio;
namespace ch = vmrt::hv::ch;
using namespace std::chrono_literals;
using socket_type = asio::local::stream_protocol::socket;
using vmrt::test::run_coro;

namespace {

// (path as in the file, method upper-case), e.g. ("/vm.info", "GET").
using endpoint = std::pair<std::string, std::string>;

std::string upper(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return s;
}

// Every (path, operation) of the file's `paths` map. Keys of a path item that are not HTTP methods
// (summary, parameters, ...) are not operations.
std::vector<endpoint> openapi_endpoints() {
    const char* file = std::getenv("VMRT_CH_OPENAPI");
    BOOST_TEST_REQUIRE(file != nullptr, "VMRT_CH_OPENAPI is not set (CTest sets it)");
    YAML::Node doc = YAML::LoadFile(file);
    BOOST_TEST_REQUIRE(doc["paths"].IsMap(), file << " has no `paths` map");
    static const std::set<std::string> methods{"get",   "put",  "post",    "delete",
                                               "patch", "head", "options", "trace"};
    std::vector<endpoint> out;
    for (const auto& path : doc["paths"]) {
        BOOST_TEST_REQUIRE(path.second.IsMap());
        for (const auto& op : path.second)
            if (methods.count(op.first.as<std::string>()))
                out.emplace_back(path.first.as<std::string>(), upper(op.first.as<std::string>()));
    }
    return out;
}

template <typename Entry>
std::vector<endpoint> as_endpoints(std::span<const Entry> table) {
    std::vector<endpoint> out;
    for (const auto& e : table) out.emplace_back(std::string(e.path), std::string(e.method));
    return out;
}

// An fd closed by its destructor.
struct owned_fd {
    int fd = -1;
    explicit owned_fd(int f = -1) : fd(f) {}
    owned_fd(const owned_fd&) = delete;
    owned_fd& operator=(const owned_fd&) = delete;
    ~owned_fd() {
        if (fd >= 0) ::close(fd);
    }
};

// vmrt-fake-cloud-hypervisor on a listening socket bound before it starts (no start-up race).
// `features`: VMRT_FAKE_CH_FEATURES, the CH build the double acts as ("guest_debug" or none).
// io::process kills and reaps it if the test fails half-way.
class fake_ch_process {
public:
    fake_ch_process(asio::any_io_executor ex, const std::string& features) : socket_path_(dir_ / "api.sock") {
        listen_.fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::memcpy(addr.sun_path, socket_path_.c_str(), socket_path_.string().size());
        BOOST_TEST_REQUIRE(::bind(listen_.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
        BOOST_TEST_REQUIRE(::listen(listen_.fd, 16) == 0);
        vmrt::io::process_options opts;
        opts.program = vmrt::test::helper_program("VMRT_FAKE_CLOUD_HYPERVISOR");
        opts.args = vmrt::test::strings("--api-socket", "fd=" + std::to_string(listen_.fd));
        opts.inherited_fds = {listen_.fd};
        opts.log_file = dir_ / "ch.log";
        if (!features.empty()) opts.env_overrides.emplace_back("VMRT_FAKE_CH_FEATURES", features);
        proc_ = vmrt::io::process::spawn(ex, opts);
    }

    vmrt::io::http_unix_client connect(asio::any_io_executor ex) {
        socket_type s(ex);
        s.connect(asio::local::stream_protocol::endpoint(socket_path_.string()));
        vmrt::io::http_unix_client::options o;
        o.request_timeout = 5s;
        return vmrt::io::http_unix_client(std::move(s), o);
    }

    vmrt::io::process& process() { return proc_; }

private:
    vmrt::test::temp_dir dir_;
    std::filesystem::path socket_path_;
    owned_fd listen_;
    vmrt::io::process proc_;
};

const std::string route_miss = R"(["Not Found"])";      // unknown path (reference §2.3)
const std::string wrong_method = R"(["Bad Request"])";  // GET on a PUT route and vice versa (§2.3)

// A peer that records each request's "METHOD target" and answers every one with a 500 error
// chain (the client then throws api_error; only what it sent matters here).
asio::awaitable<void> record_requests(socket_type peer, std::vector<endpoint>& seen) {
    std::string buf;
    const std::string reply =
        "HTTP/1.1 500 \r\nServer: Cloud Hypervisor API\r\nConnection: keep-alive\r\nContent-Type: "
        "application/json\r\nContent-Length: 12\r\n\r\n[\"recorded\"]";
    for (;;) {
        boost::system::error_code ec;
        auto head_end = co_await asio::async_read_until(peer, asio::dynamic_buffer(buf), "\r\n\r\n",
                                                        asio::redirect_error(asio::use_awaitable, ec));
        if (ec) co_return;  // the client closed its end
        std::string head = upper(buf.substr(0, head_end));
        buf.erase(0, head_end);
        std::size_t length = 0;
        if (auto at = head.find("\r\nCONTENT-LENGTH:"); at != std::string::npos)
            length = std::strtoull(head.c_str() + at + 17, nullptr, 10);
        if (buf.size() < length) {
            std::string more(length - buf.size(), '\0');
            co_await asio::async_read(peer, asio::buffer(more),
                                      asio::redirect_error(asio::use_awaitable, ec));
            if (ec) co_return;
            buf += more;
        }
        buf.erase(0, length);
        // "PUT /API/V1/VM.BOOT HTTP/1.1" (upper-cased above; paths are compared upper-cased too).
        auto sp1 = head.find(' '), sp2 = head.find(' ', sp1 + 1);
        std::string target = head.substr(sp1 + 1, sp2 - sp1 - 1);
        const std::string prefix = "/API/V1";
        BOOST_TEST(target.starts_with(prefix));
        seen.emplace_back(target.substr(prefix.size()), head.substr(0, sp1));
        co_await asio::async_write(peer, asio::buffer(reply), asio::use_awaitable);
    }
}

using client_call = std::function<asio::awaitable<void>(ch::api_client&)>;

// One call of every api_client member function that talks to CH (built outside a coroutine body).
std::vector<client_call> every_client_call() {
    std::vector<client_call> calls;
    auto add = [&](client_call c) {
        calls.push_back(std::move(c));
    };
    add([](ch::api_client& a) -> asio::awaitable<void> { co_await a.vmm_ping(); });
    add([](ch::api_client& a) -> asio::awaitable<void> { co_await a.vmm_shutdown(); });
    add([](ch::api_client& a) -> asio::awaitable<void> {
        ch::vm_config config;
        co_await a.vm_create(config);
    });
    add([](ch::api_client& a) -> asio::awaitable<void> { co_await a.vm_boot(); });
    add([](ch::api_client& a) -> asio::awaitable<void> { co_await a.vm_shutdown(); });
    add([](ch::api_client& a) -> asio::awaitable<void> { co_await a.vm_reboot(); });
    add([](ch::api_client& a) -> asio::awaitable<void> { co_await a.vm_power_button(); });
    add([](ch::api_client& a) -> asio::awaitable<void> { co_await a.vm_pause(); });
    add([](ch::api_client& a) -> asio::awaitable<void> { co_await a.vm_resume(); });
    add([](ch::api_client& a) -> asio::awaitable<void> { co_await a.vm_snapshot("file:///tmp/snap"); });
    add([](ch::api_client& a) -> asio::awaitable<void> {
        ch::restore_request r;
        r.source_url = "file:///tmp/snap";
        co_await a.vm_restore(r);
    });
    add([](ch::api_client& a) -> asio::awaitable<void> { co_await a.vm_info(); });
    add([](ch::api_client& a) -> asio::awaitable<void> { co_await a.vm_counters(); });
    add([](ch::api_client& a) -> asio::awaitable<void> { co_await a.vm_delete(); });
    add([](ch::api_client& a) -> asio::awaitable<void> {
        ch::resize_request r;
        r.desired_vcpus = 2;
        co_await a.vm_resize(r);
    });
    add([](ch::api_client& a) -> asio::awaitable<void> { co_await a.vm_resize_zone("mem0", 1ull << 30); });
    add([](ch::api_client& a) -> asio::awaitable<void> {
        ch::disk_config d;
        d.path = "/images/d.img";
        co_await a.vm_add_disk(d);
    });
    add([](ch::api_client& a) -> asio::awaitable<void> {
        ch::fs_config f;
        f.tag = "share";
        f.socket = "/run/virtiofsd.sock";
        co_await a.vm_add_fs(f);
    });
    add([](ch::api_client& a) -> asio::awaitable<void> {
        ch::net_config n;
        co_await a.vm_add_net(n);
    });
    add([](ch::api_client& a) -> asio::awaitable<void> {
        ch::pmem_config p;
        p.file = "/images/pmem.img";
        co_await a.vm_add_pmem(p);
    });
    add([](ch::api_client& a) -> asio::awaitable<void> {
        ch::vsock_config v;
        v.socket = "/run/vsock.sock";
        co_await a.vm_add_vsock(v);
    });
    add([](ch::api_client& a) -> asio::awaitable<void> { co_await a.vm_remove_device("_disk0"); });
    return calls;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(ch_openapi_test)

BOOST_AUTO_TEST_CASE(the_file_is_read_at_test_time) {
    auto file = openapi_endpoints();
    // Sanity of the parse itself, not a pinned list: CH's file has GET and PUT operations only.
    BOOST_TEST(file.size() >= 20u);
    BOOST_TEST((std::count(file.begin(), file.end(), endpoint{"/vm.info", "GET"}) == 1));
    BOOST_TEST((std::count(file.begin(), file.end(), endpoint{"/vm.boot", "PUT"}) == 1));
}

BOOST_AUTO_TEST_CASE(every_path_is_implemented_or_skipped_with_its_method) {
    auto file = openapi_endpoints();
    auto implemented = as_endpoints(ch::implemented_endpoints());
    auto skipped = as_endpoints(ch::skipped_endpoints());
    std::map<std::string, int> listed;  // path -> how many table entries name it
    for (const auto& e : implemented) ++listed[e.first];
    for (const auto& e : skipped) ++listed[e.first];
    std::set<std::string> file_paths;
    for (const auto& e : file) file_paths.insert(e.first);

    for (const auto& [path, method] : file) {
        BOOST_TEST_CONTEXT(method << " " << path) {
            BOOST_TEST(listed[path] == 1, "in " << listed[path] << " table entries (want exactly one)");
            bool in_implemented =
                std::count(implemented.begin(), implemented.end(), endpoint{path, method}) > 0;
            bool in_skipped = std::count(skipped.begin(), skipped.end(), endpoint{path, method}) > 0;
            BOOST_TEST((in_implemented || in_skipped), "no table entry with the file's method");
        }
    }
    for (const auto& [path, count] : listed)
        BOOST_TEST(file_paths.count(path) == 1u,
                   path << " is in a table but not in the OpenAPI file (stale)");
    for (const auto& s : ch::skipped_endpoints())
        BOOST_TEST(s.why.size() > 20u, s.path << " is skipped without a reason");
}

BOOST_AUTO_TEST_CASE(the_implemented_table_is_what_the_client_sends) {
    std::vector<endpoint> seen;
    auto calls = every_client_call();
    run_coro([&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        socket_type client_end(ex), peer_end(ex);
        asio::local::connect_pair(client_end, peer_end);
        asio::co_spawn(ex, record_requests(std::move(peer_end), seen), asio::detached);
        ch::api_client api{vmrt::io::http_unix_client(std::move(client_end))};
        for (auto& call : calls) {
            try {
                co_await call(api);
                BOOST_ERROR("a 500 reply did not fail the call");
            } catch (const ch::api_error& e) {
                BOOST_TEST(e.status() == 500);
            }
        }
        api.http().close();  // ends the peer
    });
    BOOST_TEST(seen.size() == calls.size());
    std::set<endpoint> sent(seen.begin(), seen.end());
    std::set<endpoint> table;
    for (const auto& [path, method] : as_endpoints(ch::implemented_endpoints()))
        table.emplace(upper(path), method);
    BOOST_TEST(sent.size() == seen.size(), "a client call sent the same request as another one");
    BOOST_TEST((sent == table), "requests the client sends differ from implemented_endpoints()");
    for (const auto& e : table)
        BOOST_TEST(sent.count(e) == 1u, e.second << " " << e.first << " is in the table but never sent");
    for (const auto& e : sent)
        BOOST_TEST(table.count(e) == 1u, e.second << " " << e.first << " is sent but not in the table");
}

BOOST_AUTO_TEST_CASE(the_double_routes_every_path_with_its_method) {
    auto file = openapi_endpoints();
    run_coro([&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        // As a guest_debug build, the one kind of CH build that has every route of the file.
        fake_ch_process vmm(ex, "guest_debug");
        auto http = vmm.connect(ex);

        // The check below can fail: an unknown path is CH's route miss.
        auto miss = co_await http.async_request("GET", "/api/v1/vm.no-such-endpoint");
        BOOST_TEST(miss.status == 404);
        BOOST_TEST(miss.body == route_miss);

        std::optional<endpoint> shutdown;  // vmm.shutdown ends the double: sent last
        for (const auto& e : file) {
            const auto& [path, method] = e;
            std::string target = "/api/v1" + path;
            // The other method is refused: the double knows the route's method, not just its path.
            std::string other = method == "GET" ? "PUT" : "GET";
            auto refused = co_await http.async_request(other, target);
            BOOST_TEST_CONTEXT(other << " " << path << " -> " << refused.status << " " << refused.body) {
                BOOST_TEST(refused.status == 400);
                BOOST_TEST(refused.body == wrong_method);
            }
            if (path == "/vmm.shutdown") {
                shutdown = e;
                continue;
            }
            // No body: a route that needs one answers 400 with a deserialisation error or an empty
            // body, never the wrong-method reply (reference §2.3).
            auto r = co_await http.async_request(method, target);
            BOOST_TEST_CONTEXT(method << " " << path << " -> " << r.status << " " << r.body) {
                BOOST_TEST(!(r.status == 404 && r.body == route_miss), "the double has no such route");
                BOOST_TEST(!(r.status == 400 && r.body == wrong_method), "the double refuses the method");
            }
        }
        BOOST_TEST_REQUIRE(shutdown.has_value(), "the OpenAPI file has no /vmm.shutdown");
        auto r = co_await http.async_request(shutdown->second, "/api/v1" + shutdown->first);
        BOOST_TEST(r.status == 200);  // CH's real code, not the file's 204 (§1.3)
        auto [ec, status] = co_await vmrt::io::with_timeout(vmm.process().async_wait(asio::deferred), 5s);
        BOOST_TEST_REQUIRE(!ec, "the double did not exit after vmm.shutdown: " << ec.message());
        BOOST_TEST(status.success());
    });
}

// vm.coredump is a route of the file that a release build of CH does not have (§1.3): the double
// acts as a release build unless told otherwise, and as a guest_debug build it answers CH's state
// errors.
BOOST_AUTO_TEST_CASE(coredump_exists_only_in_a_guest_debug_build) {
    run_coro([&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        const std::string body = R"({"destination_url":"file:///tmp/core"})";
        {
            fake_ch_process release(ex, "");
            auto http = release.connect(ex);
            auto r = co_await http.async_request("PUT", "/api/v1/vm.coredump", body);
            BOOST_TEST(r.status == 404);
            BOOST_TEST(r.body == route_miss);
            auto ping = co_await http.async_request("GET", "/api/v1/vmm.ping");
            BOOST_TEST(ping.body.find("guest_debug") == std::string::npos);
        }
        fake_ch_process debug(ex, "guest_debug");
        auto http = debug.connect(ex);
        auto ping = co_await http.async_request("GET", "/api/v1/vmm.ping");
        BOOST_TEST(ping.body.find("\"guest_debug\"") != std::string::npos);
        auto r = co_await http.async_request("PUT", "/api/v1/vm.coredump", body);
        BOOST_TEST(r.status == 500);  // no VM: VmNotRunning
        BOOST_TEST(r.body == R"(["Error from API","The VM could not be coredumped","VM is not running"])");
    });
}

BOOST_AUTO_TEST_SUITE_END()
