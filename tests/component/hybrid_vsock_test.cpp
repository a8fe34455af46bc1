// The host side of hybrid vsock (vmrt/net/hybrid_vsock.hpp) against vmrt-fake-cloud-hypervisor's
// emulation of CH's vsock muxer (tests/helpers/fake_ch/vsock_muxer.hpp; real CH cannot run here:
// not packaged for Debian 12, needs KVM). The double runs as a child process in CLI mode with
// `--vsock cid=3,socket=<dir>/ch.vsock`; its emulated guest is configured through
// VMRT_FAKE_CH_VSOCK_LISTEN / VMRT_FAKE_CH_VSOCK_GUEST_CONNECT / VMRT_FAKE_CH_FAULTS.
#include "io/http_unix_client.hpp"
#include "support/test_support.hpp"

#include <vmrt/io/process.hpp>
#include <vmrt/io/with_timeout.hpp>
#include <vmrt/net/hybrid_vsock.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/test/unit_test.hpp>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <optional>
#include <regex>
#include <string>
#include <vector>

namespace asio = boost::asio;
namespace net = vmrt::net;
using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;
using stream_socket = asio::local::stream_protocol::socket;
using vmrt::errc;
using vmrt::test::run_coro;

namespace {

// The double in CLI mode with a vsock device at dir/ch.vsock. io::process's destructor kills and
// reaps it if a test fails half-way; the directory (declared first) goes after it.
class fake_ch_vsock {
public:
    struct options {
        std::string listen;         // VMRT_FAKE_CH_VSOCK_LISTEN
        std::string guest_connect;  // VMRT_FAKE_CH_VSOCK_GUEST_CONNECT
        std::string faults;         // VMRT_FAKE_CH_FAULTS
    };

    explicit fake_ch_vsock(const vmrt::test::temp_dir& dir) : dir_(dir) {}

    void start(asio::any_io_executor ex, const options& o) {
        vmrt::test::write_file(dir_ / "vmlinux", "not a kernel: the double does not run it");
        vmrt::io::process_options opts;
        opts.program = vmrt::test::helper_program("VMRT_FAKE_CLOUD_HYPERVISOR");
        opts.args = vmrt::test::strings("--kernel", (dir_ / "vmlinux").string(), "--vsock",
                                        "cid=3,socket=" + vsock().string(), "--api-socket",
                                        "path=" + (dir_ / "api.sock").string());
        opts.log_file = dir_ / "ch.log";
        if (!o.listen.empty()) opts.env_overrides.emplace_back("VMRT_FAKE_CH_VSOCK_LISTEN", o.listen);
        if (!o.guest_connect.empty())
            opts.env_overrides.emplace_back("VMRT_FAKE_CH_VSOCK_GUEST_CONNECT", o.guest_connect);
        if (!o.faults.empty()) opts.env_overrides.emplace_back("VMRT_FAKE_CH_FAULTS", o.faults);
        proc_ = vmrt::io::process::spawn(ex, opts);
    }

    std::filesystem::path vsock() const { return dir_ / "ch.vsock"; }
    vmrt::io::process& process() { return proc_; }
    std::string log() const { return vmrt::io::read_file_tail(dir_ / "ch.log"); }

private:
    const vmrt::test::temp_dir& dir_;
    vmrt::io::process proc_;
};

fake_ch_vsock::options listen_on(std::string ports, std::string faults = "") {
    fake_ch_vsock::options o;
    o.listen = std::move(ports);
    o.faults = std::move(faults);
    return o;
}

net::hybrid_vsock_connect_options within(std::chrono::milliseconds timeout) {
    net::hybrid_vsock_connect_options o;
    o.timeout = timeout;
    return o;
}

// Runs `connect` and returns the vmrt::error it throws (the test fails if it does not).
template <typename Call>
asio::awaitable<std::optional<vmrt::error>> error_of(Call call) {
    try {
        co_await call();
    } catch (const vmrt::error& e) {
        co_return e;
    }
    co_return std::nullopt;
}

unsigned attempts_in(const std::string& message) {
    std::smatch m;
    if (!std::regex_search(message, m, std::regex("after ([0-9]+) attempt"))) return 0;
    return static_cast<unsigned>(std::stoul(m[1]));
}

bool contains(const std::string& haystack, const std::string& needle) {
    return haystack.find(needle) != std::string::npos;
}

asio::awaitable<std::string> read_exactly(stream_socket& s, std::size_t n) {
    std::string buf(n, '\0');
    auto [ec, got] =
        co_await vmrt::io::with_timeout(asio::async_read(s, asio::buffer(buf), asio::deferred), 5s);
    BOOST_TEST_REQUIRE(!ec, "read: " << ec.message());
    co_return buf;
}

asio::awaitable<void> write_all(stream_socket& s, const std::string& bytes) {
    co_await asio::async_write(s, asio::buffer(bytes), asio::use_awaitable);
}

asio::awaitable<vmrt::exit_status> wait_exit(vmrt::io::process& p) {
    auto [ec, status] = co_await vmrt::io::with_timeout(p.async_wait(asio::deferred), 5s);
    BOOST_TEST_REQUIRE(!ec, "the double did not exit: " << ec.message());
    co_return status;
}

asio::awaitable<void> sleep_for(std::chrono::milliseconds d) {
    asio::steady_timer t(co_await asio::this_coro::executor, d);
    co_await t.async_wait(asio::use_awaitable);
}

// Polls until `path` exists (the double binds the vsock socket while booting the VM).
asio::awaitable<bool> appears(const std::filesystem::path& path) {
    for (int i = 0; i < 250; ++i) {
        if (std::filesystem::exists(path)) co_return true;
        co_await sleep_for(20ms);
    }
    co_return false;
}

// A Unix socket file that nothing listens on: what a crashed process leaves behind.
void make_stale_socket(const std::filesystem::path& path) {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.c_str(), path.native().size());
    BOOST_TEST_REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    ::close(fd);
    BOOST_TEST_REQUIRE(std::filesystem::is_socket(path));
}

}  // namespace

BOOST_AUTO_TEST_SUITE(hybrid_vsock_test)

BOOST_AUTO_TEST_CASE(connect_handshake_then_echo_round_trip) {
    vmrt::test::temp_dir dir;
    fake_ch_vsock fake(dir);
    run_coro([&]() -> asio::awaitable<void> {
        fake.start(co_await asio::this_coro::executor, listen_on("1234,5000"));
        auto first = co_await net::async_hybrid_vsock_connect(fake.vsock(), 1234);
        BOOST_TEST(first.host_port >= (1u << 30));  // CH's allocator sets bit 30 (§4)
        BOOST_TEST(first.attempts >= 1u);
        // The guest service's bytes start right after the OK line: nothing was over-read.
        const std::string payload = "hello over hybrid vsock\n";
        co_await write_all(first.socket, payload);
        BOOST_TEST(co_await read_exactly(first.socket, payload.size()) == payload);

        auto second = co_await net::async_hybrid_vsock_connect(fake.vsock(), 5000);
        BOOST_TEST(second.host_port == first.host_port + 1);
        BOOST_TEST(second.attempts == 1u);  // the VM is up now: no retry
        co_await write_all(second.socket, "x");
        BOOST_TEST(co_await read_exactly(second.socket, 1) == "x");
        co_await write_all(first.socket, "still open");
        BOOST_TEST(co_await read_exactly(first.socket, 10) == "still open");
    });
}

// The double's muxer itself, driven with raw bytes: what CH accepts and what it closes silently (§4).
BOOST_AUTO_TEST_CASE(double_reads_commands_as_ch_does) {
    vmrt::test::temp_dir dir;
    fake_ch_vsock fake(dir);
    run_coro([&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        fake.start(ex, listen_on("1234"));
        BOOST_TEST_REQUIRE(co_await appears(fake.vsock()));
        // Everything a peer answers before closing, up to 64 bytes.
        auto exchange = [&](std::string bytes) -> asio::awaitable<std::string> {
            stream_socket raw(ex);
            raw.connect(asio::local::stream_protocol::endpoint(fake.vsock().string()));
            co_await write_all(raw, bytes);
            std::string got;
            for (;;) {
                char buf[64];
                auto [ec, n] = co_await vmrt::io::with_timeout(
                    raw.async_read_some(asio::buffer(buf), asio::deferred), 1s);
                got.append(buf, n);
                if (ec || got.size() >= 64 || got.find("tail") != std::string::npos) break;
            }
            co_return got;
        };
        // Case-insensitive keyword, spaces around the port; data right after the `\n` is not swallowed.
        const std::string lenient = co_await exchange("connect   1234  \ntail");
        BOOST_TEST(std::regex_match(lenient, std::regex("OK [0-9]+\ntail")), lenient);
        // Not listening, malformed, or too long: closed without a message.
        BOOST_TEST(co_await exchange("CONNECT 99\n") == "");
        BOOST_TEST(co_await exchange("HELLO 1234\n") == "");
        BOOST_TEST(co_await exchange("CONNECT 12x4\n") == "");
        BOOST_TEST(co_await exchange("CONNECT 1234" + std::string(20, ' ') + "\n") == "");  // 33 bytes
    });
}

BOOST_AUTO_TEST_CASE(guest_not_listening_is_retried_until_the_deadline) {
    vmrt::test::temp_dir dir;
    fake_ch_vsock fake(dir);
    run_coro([&]() -> asio::awaitable<void> {
        fake.start(co_await asio::this_coro::executor, listen_on("1234"));
        BOOST_TEST_REQUIRE(co_await appears(fake.vsock()));
        const auto began = std::chrono::steady_clock::now();
        auto e = co_await error_of(
            [&] { return net::async_hybrid_vsock_connect(fake.vsock(), 999, within(700ms)); });
        const auto took = std::chrono::steady_clock::now() - began;
        BOOST_TEST_REQUIRE(e.has_value());
        BOOST_TEST((e->code() == errc::timeout), e->what());
        const std::string what = e->what();
        // 20, 40, 80, 160, 320 ms of backoff fit in 700 ms: at least 4 attempts.
        BOOST_TEST(attempts_in(what) >= 4u, what);
        BOOST_TEST(contains(what, "not listening"), what);
        BOOST_TEST(contains(what, fake.vsock().string()), what);
        BOOST_TEST((took >= 650ms));
        BOOST_TEST((took < 3s));
    });
}

BOOST_AUTO_TEST_CASE(socket_appearing_late_is_waited_for) {
    vmrt::test::temp_dir dir;
    fake_ch_vsock fake(dir);
    run_coro([&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        std::optional<net::hybrid_vsock_stream> stream;
        auto connect = [&]() -> asio::awaitable<void> {
            auto s = co_await net::async_hybrid_vsock_connect(fake.vsock(), 1234, within(5s));
            stream.emplace(std::move(s));
        };
        auto start_later = [&]() -> asio::awaitable<void> {
            co_await sleep_for(300ms);
            fake.start(ex, listen_on("1234"));
        };
        co_await (connect() && start_later());
        BOOST_TEST_REQUIRE(stream.has_value());
        BOOST_TEST(stream->attempts > 1u);  // ENOENT / ECONNREFUSED were retried
        co_await write_all(stream->socket, "late");
        BOOST_TEST(co_await read_exactly(stream->socket, 4) == "late");
    });
}

BOOST_AUTO_TEST_CASE(malformed_reply_is_a_protocol_error_at_once) {
    vmrt::test::temp_dir dir;
    fake_ch_vsock fake(dir);
    run_coro([&]() -> asio::awaitable<void> {
        fake.start(co_await asio::this_coro::executor, listen_on("1234", "vsock-bad-reply"));
        BOOST_TEST_REQUIRE(co_await appears(fake.vsock()));
        const auto began = std::chrono::steady_clock::now();
        auto e = co_await error_of(
            [&] { return net::async_hybrid_vsock_connect(fake.vsock(), 1234, within(5s)); });
        BOOST_TEST_REQUIRE(e.has_value());
        BOOST_TEST((e->code() == errc::protocol_error), e->what());
        BOOST_TEST(contains(e->what(), "\"NOPE\\n\""), e->what());      // the reply, sanitised
        BOOST_TEST(((std::chrono::steady_clock::now() - began) < 1s));  // no retries until the deadline
    });
}

BOOST_AUTO_TEST_CASE(silent_guest_is_closed_after_2s_then_retried_until_the_deadline) {
    vmrt::test::temp_dir dir;
    fake_ch_vsock fake(dir);
    run_coro(
        [&]() -> asio::awaitable<void> {
            auto ex = co_await asio::this_coro::executor;
            fake.start(ex, listen_on("1234", "vsock-silent"));
            BOOST_TEST_REQUIRE(co_await appears(fake.vsock()));

            // The double itself: a valid CONNECT gets no answer, and the connection ends after ~2 s.
            stream_socket raw(ex);
            raw.connect(asio::local::stream_protocol::endpoint(fake.vsock().string()));
            co_await write_all(raw, "CONNECT 1234\n");
            const auto began = std::chrono::steady_clock::now();
            char byte = 0;
            vmrt::error_code ec;
            auto n = co_await raw.async_read_some(asio::buffer(&byte, 1),
                                                  asio::redirect_error(asio::use_awaitable, ec));
            const auto closed_after = std::chrono::steady_clock::now() - began;
            BOOST_TEST(n == 0u);
            BOOST_TEST((ec == asio::error::eof || ec == asio::error::connection_reset), ec.message());
            BOOST_TEST((closed_after >= 1900ms));
            BOOST_TEST((closed_after < 4s));

            // The client: EOF after 2 s, one retry, then the 3 s deadline passes during the second wait.
            auto e = co_await error_of(
                [&] { return net::async_hybrid_vsock_connect(fake.vsock(), 1234, within(3s)); });
            BOOST_TEST_REQUIRE(e.has_value());
            BOOST_TEST((e->code() == errc::timeout), e->what());
            BOOST_TEST(attempts_in(e->what()) == 2u, e->what());
        },
        30s);
}

BOOST_AUTO_TEST_CASE(connect_honours_cancellation) {
    vmrt::test::temp_dir dir;
    run_coro([&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        // Nothing ever listens: the connect would retry for 10 s.
        asio::cancellation_signal cancel;
        std::optional<vmrt::error> failure;
        bool done = false;
        const auto path = dir / "nobody.vsock";
        asio::co_spawn(
            ex,
            [&]() -> asio::awaitable<void> {
                auto e = co_await error_of([&] { return net::async_hybrid_vsock_connect(path, 1234); });
                failure = e;
                done = true;
            },
            asio::bind_cancellation_slot(cancel.slot(), [](std::exception_ptr) {}));
        co_await sleep_for(150ms);
        const auto began = std::chrono::steady_clock::now();
        cancel.emit(asio::cancellation_type::terminal);
        while (!done) co_await sleep_for(5ms);
        BOOST_TEST_REQUIRE(failure.has_value());
        BOOST_TEST((failure->code() == errc::cancelled), failure->what());
        BOOST_TEST(((std::chrono::steady_clock::now() - began) < 500ms));
    });
}

BOOST_AUTO_TEST_CASE(bad_arguments_are_refused_clearly) {
    vmrt::test::temp_dir dir;
    run_coro([&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        const std::filesystem::path too_long = dir / std::string(120, 'v');
        auto e = co_await error_of([&] { return net::async_hybrid_vsock_connect(too_long, 1); });
        BOOST_TEST_REQUIRE(e.has_value());
        BOOST_TEST((e->code() == errc::invalid_spec));
        BOOST_TEST(contains(e->what(), "must be shorter than 108 bytes"), e->what());
        // The listener's path is longer by `_<port>`: a socket path that fits may not fit with it.
        const std::string room(107 - dir.path().native().size() - 1 - 3, 'v');  // "_65535" does not fit
        BOOST_CHECK_EXCEPTION(net::hybrid_vsock_listener::bind(ex, dir / room, 65535), vmrt::error,
                              [](const vmrt::error& err) { return err.code() == errc::invalid_spec; });
        co_return;
    });
}

BOOST_AUTO_TEST_CASE(listener_receives_the_guests_connection) {
    vmrt::test::temp_dir dir;
    fake_ch_vsock fake(dir);
    run_coro([&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        auto listener = net::hybrid_vsock_listener::bind(ex, fake.vsock(), 5000);
        BOOST_TEST(listener.path() == fake.vsock().string() + "_5000");
        BOOST_TEST(listener.port() == 5000u);
        BOOST_TEST(std::filesystem::is_socket(listener.path()));
        fake_ch_vsock::options o;
        o.guest_connect = "5000:hello from the guest";
        fake.start(ex, o);
        auto s = co_await listener.accept();  // run_coro's time limit bounds the wait
        BOOST_TEST(co_await read_exactly(s, 20) == "hello from the guest");  // no handshake line first
        co_await write_all(s, "ping");
        BOOST_TEST(co_await read_exactly(s, 4) == "ping");
    });
}

BOOST_AUTO_TEST_CASE(listener_removes_its_file_and_only_its_own) {
    vmrt::test::temp_dir dir;
    run_coro([&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        const auto vsock = dir / "ch.vsock";
        {
            auto a = net::hybrid_vsock_listener::bind(ex, vsock, 7);
            auto moved = std::move(a);  // the moved-to object owns the file now
            BOOST_TEST(std::filesystem::is_socket(dir / "ch.vsock_7"));
        }
        BOOST_TEST(!std::filesystem::exists(dir / "ch.vsock_7"));

        // Someone replaced the file meanwhile: the destructor leaves the newcomer alone.
        {
            auto b = net::hybrid_vsock_listener::bind(ex, vsock, 8);
            std::filesystem::remove(b.path());
            vmrt::test::write_file(b.path(), "someone else's");
        }
        BOOST_TEST(vmrt::test::read_file(dir / "ch.vsock_8") == "someone else's");
        co_return;
    });
}

BOOST_AUTO_TEST_CASE(stale_listener_file_is_replaced_but_a_live_one_is_not) {
    vmrt::test::temp_dir dir;
    run_coro([&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        const auto vsock = dir / "ch.vsock";
        make_stale_socket(dir / "ch.vsock_9");
        auto first = net::hybrid_vsock_listener::bind(ex, vsock, 9);  // stale: nobody listened
        BOOST_CHECK_EXCEPTION(net::hybrid_vsock_listener::bind(ex, vsock, 9), vmrt::error,
                              [](const vmrt::error& e) { return e.code() == errc::already_exists; });
        BOOST_TEST(std::filesystem::is_socket(first.path()));  // the live one was not touched

        vmrt::test::write_file(dir / "ch.vsock_10", "not a socket");
        BOOST_CHECK_EXCEPTION(net::hybrid_vsock_listener::bind(ex, vsock, 10), vmrt::error,
                              [](const vmrt::error& e) { return e.code() == errc::already_exists; });
        BOOST_TEST(vmrt::test::read_file(dir / "ch.vsock_10") == "not a socket");

        // The first one still accepts.
        stream_socket c(ex);
        c.connect(asio::local::stream_protocol::endpoint(first.path().string()));
        auto accepted = co_await first.accept();
        BOOST_TEST(accepted.is_open());
    });
}

BOOST_AUTO_TEST_CASE(vsock_socket_removed_when_the_vmm_exits_cleanly) {
    vmrt::test::temp_dir dir;
    fake_ch_vsock fake(dir);
    run_coro([&]() -> asio::awaitable<void> {
        fake.start(co_await asio::this_coro::executor, listen_on("1234"));
        BOOST_TEST_REQUIRE(co_await appears(fake.vsock()));
        auto open = co_await net::async_hybrid_vsock_connect(fake.vsock(), 1234);
        BOOST_TEST(!fake.process().signal(SIGTERM));
        auto status = co_await wait_exit(fake.process());
        BOOST_TEST(status.success(), status.to_string());
        BOOST_TEST(!std::filesystem::exists(fake.vsock()));
        // The open stream ended with the VMM.
        char byte = 0;
        vmrt::error_code ec;
        co_await open.socket.async_read_some(asio::buffer(&byte, 1),
                                             asio::redirect_error(asio::use_awaitable, ec));
        BOOST_TEST(ec, "the stream outlived the VMM");
    });
}

BOOST_AUTO_TEST_CASE(existing_vsock_socket_fails_the_boot_in_cli_mode) {
    vmrt::test::temp_dir dir;
    fake_ch_vsock fake(dir);
    make_stale_socket(fake.vsock());  // CH never removes it itself (§10.2)
    run_coro([&]() -> asio::awaitable<void> {
        fake.start(co_await asio::this_coro::executor, listen_on("1234"));
        auto status = co_await wait_exit(fake.process());
        BOOST_TEST(status.code == 1, status.to_string());
        BOOST_TEST(contains(fake.log(), "Address already in use"), fake.log());
        BOOST_TEST(std::filesystem::is_socket(fake.vsock()));  // left as it was
    });
}

BOOST_AUTO_TEST_CASE(api_mode_binds_at_boot_and_unbinds_at_shutdown) {
    vmrt::test::temp_dir dir;
    run_coro([&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        vmrt::io::process_options opts;
        opts.program = vmrt::test::helper_program("VMRT_FAKE_CLOUD_HYPERVISOR");
        const auto api_sock = dir / "api.sock", vsock = dir / "ch.vsock";
        opts.args = vmrt::test::strings("--api-socket", "path=" + api_sock.string());
        opts.log_file = dir / "ch.log";
        opts.env_overrides.emplace_back("VMRT_FAKE_CH_VSOCK_LISTEN", "1234");
        auto proc = vmrt::io::process::spawn(ex, opts);
        BOOST_TEST_REQUIRE(co_await appears(api_sock));
        vmrt::io::http_unix_client api(ex, api_sock);

        const std::string config = R"({"payload":{"kernel":"/boot/vmlinuz"},"vsock":{"cid":3,"socket":")" +
                                   vsock.string() + R"("}})";
        auto created = co_await api.async_request("PUT", "/api/v1/vm.create", config);
        BOOST_TEST(created.status == 204);
        BOOST_TEST(!std::filesystem::exists(vsock));  // bound when the VM object is built, not at create

        make_stale_socket(vsock);
        auto refused = co_await api.async_request("PUT", "/api/v1/vm.boot");
        BOOST_TEST(refused.status == 500);
        BOOST_TEST(contains(refused.body, "The VM could not boot"), refused.body);
        BOOST_TEST(contains(refused.body, "Address already in use"), refused.body);

        std::filesystem::remove(vsock);
        auto booted = co_await api.async_request("PUT", "/api/v1/vm.boot");
        BOOST_TEST(booted.status == 204);
        auto s = co_await net::async_hybrid_vsock_connect(vsock, 1234, within(5s));
        co_await write_all(s.socket, "api");
        BOOST_TEST(co_await read_exactly(s.socket, 3) == "api");

        auto down = co_await api.async_request("PUT", "/api/v1/vm.shutdown");
        BOOST_TEST(down.status == 204);
        BOOST_TEST(!std::filesystem::exists(vsock));

        // Hot-plug on a booted VM binds at once; removing the device unbinds.
        BOOST_TEST((co_await api.async_request("PUT", "/api/v1/vm.delete")).status == 204);
        const std::string bare = R"({"payload":{"kernel":"/boot/vmlinuz"}})";
        BOOST_TEST((co_await api.async_request("PUT", "/api/v1/vm.create", bare)).status == 204);
        BOOST_TEST((co_await api.async_request("PUT", "/api/v1/vm.boot")).status == 204);
        const std::string device = R"({"cid":3,"socket":")" + vsock.string() + R"(","id":"vsock0"})";
        auto added = co_await api.async_request("PUT", "/api/v1/vm.add-vsock", device);
        BOOST_TEST(added.status == 200, added.body);
        BOOST_TEST(std::filesystem::is_socket(vsock));
        const std::string remove_body = R"({"id":"vsock0"})";
        auto removed = co_await api.async_request("PUT", "/api/v1/vm.remove-device", remove_body);
        BOOST_TEST(removed.status == 204, removed.body);
        BOOST_TEST(!std::filesystem::exists(vsock));

        BOOST_TEST(!proc.signal(SIGTERM));
        auto status = co_await wait_exit(proc);
        BOOST_TEST(status.success(), status.to_string());
    });
}

BOOST_AUTO_TEST_SUITE_END()
