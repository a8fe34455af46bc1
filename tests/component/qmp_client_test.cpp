// The QMP client against a scripted fake peer (the other end of a socketpair), then against a
// real QEMU that is given its end of a socketpair as `-chardev socket,fd=N`.
#include "hv/qmp_client.hpp"
#include "support/test_support.hpp"

#include <vmrt/io/process.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/local/connect_pair.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/json.hpp>
#include <boost/test/unit_test.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <optional>
#include <string>
#include <variant>

namespace asio = boost::asio;
namespace json = boost::json;
namespace qmp = vmrt::hv::qmp;
using namespace asio::experimental::awaitable_operators;
using namespace std::chrono_literals;
using socket_type = asio::local::stream_protocol::socket;
using vmrt::test::run_coro;

namespace {

const std::string greeting_line =
    R"({"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian 1:7.2+dfsg-7+deb12u18+b3"}, "capabilities": ["oob"]}})"
    "\r\n";

std::string stop_event_line() {
    return R"({"timestamp": {"seconds": 1795757853, "microseconds": 158804}, "event": "STOP"})"
           "\r\n";
}

std::string event_line(const std::string& name, int n) {
    return R"({"timestamp": {"seconds": 1, "microseconds": )" + std::to_string(n) + R"(}, "event": ")" +
           name + "\"}\r\n";
}

std::string return_line(std::uint64_t id, const std::string& value_json = "{}") {
    return "{\"return\": " + value_json + ", \"id\": " + std::to_string(id) + "}\r\n";
}

json::object device_arguments() {
    json::object args;
    args["device"] = "virtio0";
    return args;
}

// The QEMU side, scripted by each test. It reads the client's commands (one JSON object per
// line: the client ends each with '\n') and writes whatever the test tells it to.
class fake_peer {
public:
    explicit fake_peer(socket_type s) : socket_(std::move(s)) {}

    asio::awaitable<void> send(std::string text) {
        co_await asio::async_write(socket_, asio::buffer(text), asio::use_awaitable);
    }

    asio::awaitable<json::object> next_command() {
        auto n = co_await asio::async_read_until(socket_, buffer_, '\n', asio::use_awaitable);
        std::string line(asio::buffers_begin(buffer_.data()), asio::buffers_begin(buffer_.data()) + n);
        buffer_.consume(n);
        co_return json::parse(line).as_object();
    }

    // Greeting, then the answer to qmp_capabilities.
    asio::awaitable<void> handshake() {
        co_await send(greeting_line);
        auto caps = co_await next_command();
        BOOST_TEST(caps.at("execute").as_string() == "qmp_capabilities");
        BOOST_TEST(!caps.contains("arguments"));
        co_await send(return_line(id_of(caps)));
    }

    static std::uint64_t id_of(const json::object& command) {
        return command.at("id").to_number<std::uint64_t>();
    }

    // True once the client has closed its end.
    asio::awaitable<bool> sees_eof() {
        std::array<char, 256> scratch{};
        auto [ec, n] =
            co_await socket_.async_read_some(asio::buffer(scratch), asio::as_tuple(asio::use_awaitable));
        co_return ec == asio::error::eof;
    }

    void close() { socket_.close(); }

private:
    socket_type socket_;
    asio::streambuf buffer_;
};

struct connection {
    qmp::client client;
    fake_peer peer;
};

connection connect(const asio::any_io_executor& ex) {
    socket_type ours(ex), theirs(ex);
    asio::local::connect_pair(ours, theirs);
    return {qmp::client(std::move(ours)), fake_peer(std::move(theirs))};
}

// Runs `op`, keeping its value or its exception. (`||` waits for the first *success*: an
// operation that throws must not leave the race to the timer.)
template <typename T>
asio::awaitable<void> capture(asio::awaitable<T> op,
                              std::optional<std::conditional_t<std::is_void_v<T>, bool, T>>& value,
                              std::exception_ptr& error) {
    try {
        if constexpr (std::is_void_v<T>) {
            co_await std::move(op);
            value.emplace(true);
        } else {
            value.emplace(co_await std::move(op));
        }
    } catch (...) {
        error = std::current_exception();
    }
}

// Awaits `op` for at most `limit`; a timeout fails the test with `what` instead of a hang.
template <typename T>
asio::awaitable<T> within(asio::awaitable<T> op, std::chrono::milliseconds limit, std::string what) {
    asio::steady_timer timer(co_await asio::this_coro::executor, limit);
    std::optional<std::conditional_t<std::is_void_v<T>, bool, T>> value;
    std::exception_ptr error;
    auto result = co_await (capture(std::move(op), value, error) || timer.async_wait(asio::use_awaitable));
    if (result.index() == 1) throw std::runtime_error("timed out: " + what);
    if (error) std::rethrow_exception(error);
    if constexpr (!std::is_void_v<T>) co_return std::move(*value);
}

// What a failed operation threw (default-constructible, unlike vmrt::error, so that it can be
// a result of the awaitable operators).
struct failure {
    vmrt::error_code code;
    std::string message;
};

// Runs `op`, which must throw a vmrt::error.
asio::awaitable<failure> failure_of(asio::awaitable<json::value> op) {
    failure f;
    try {
        auto v = co_await std::move(op);
        BOOST_ERROR("expected a failure, got " << json::serialize(v));
    } catch (const vmrt::error& e) {
        f = {e.code(), e.diag().message};
    }
    co_return f;
}

bool contains(const std::string& text, const std::string& piece) {
    return text.find(piece) != std::string::npos;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(qmp_client_test)

BOOST_AUTO_TEST_CASE(handshake_and_execute) {
    run_coro([]() -> asio::awaitable<void> {
        auto conn = connect(co_await asio::this_coro::executor);
        auto& client = conn.client;
        auto& peer = conn.peer;
        auto greeting = co_await (client.async_handshake() && peer.handshake());
        BOOST_TEST(greeting.major == 7);
        BOOST_TEST(greeting.package == "Debian 1:7.2+dfsg-7+deb12u18+b3");
        BOOST_TEST(client.peer_greeting()->micro == 22);

        auto answer = [&]() -> asio::awaitable<void> {
            auto cmd = co_await peer.next_command();
            BOOST_TEST(cmd.at("execute").as_string() == "query-status");
            co_await peer.send(
                return_line(fake_peer::id_of(cmd), R"({"status": "running", "running": true})"));
            cmd = co_await peer.next_command();
            BOOST_TEST(cmd.at("execute").as_string() == "eject");
            BOOST_TEST(cmd.at("arguments").at("device").as_string() == "virtio0");
            co_await peer.send(return_line(fake_peer::id_of(cmd)));
        };
        auto run = [&]() -> asio::awaitable<json::value> {
            auto status = co_await client.async_execute("query-status");
            BOOST_TEST(status.at("status").as_string() == "running");
            co_return co_await client.async_execute("eject", device_arguments());
        };
        auto last = co_await within(run() && answer(), 5000ms, "two commands");
        BOOST_TEST(last.as_object().empty());
        BOOST_TEST(client.is_open());
    });
}

BOOST_AUTO_TEST_CASE(error_reply_carries_class_and_desc) {
    run_coro([]() -> asio::awaitable<void> {
        auto conn = connect(co_await asio::this_coro::executor);
        auto& client = conn.client;
        auto& peer = conn.peer;
        co_await (client.async_handshake() && peer.handshake());
        auto answer = [&]() -> asio::awaitable<void> {
            auto cmd = co_await peer.next_command();
            co_await peer.send(
                "{\"id\": " + std::to_string(fake_peer::id_of(cmd)) +
                ", \"error\": {\"class\": \"CommandNotFound\", \"desc\": \"The command nope has not "
                "been found\"}}\r\n");
        };
        auto attempt = [&]() -> asio::awaitable<void> {
            try {
                co_await client.async_execute("nope");
                BOOST_ERROR("an error reply must throw");
            } catch (const qmp::command_failure& e) {
                BOOST_TEST((e.code() == vmrt::errc::command_failed));
                BOOST_TEST(e.diag().message == "The command nope has not been found");
                BOOST_TEST(e.error_class() == "CommandNotFound");
                BOOST_TEST(e.command() == "nope");
            }
        };
        co_await within(attempt() && answer(), 5000ms, "error reply");
        // A refused command does not break the connection.
        BOOST_TEST(client.is_open());
        auto again = [&]() -> asio::awaitable<void> {
            auto cmd = co_await peer.next_command();
            co_await peer.send(return_line(fake_peer::id_of(cmd), "42"));
        };
        auto v =
            co_await within(client.async_execute("query-x") && again(), 5000ms, "command after an error");
        BOOST_TEST(v == json::value(42));
    });
}

BOOST_AUTO_TEST_CASE(events_in_order_and_before_the_reply) {
    run_coro([]() -> asio::awaitable<void> {
        auto conn = connect(co_await asio::this_coro::executor);
        auto& client = conn.client;
        auto& peer = conn.peer;
        auto events = client.subscribe_events();
        co_await (client.async_handshake() && peer.handshake());

        // As QEMU does it: STOP is written before stop's return.
        auto answer = [&]() -> asio::awaitable<void> {
            auto cmd = co_await peer.next_command();
            co_await peer.send(stop_event_line() + return_line(fake_peer::id_of(cmd)));
        };
        co_await within(client.async_execute("stop") && answer(), 5000ms, "stop");
        auto queued = events.try_next();  // already there when the command completes
        BOOST_REQUIRE(queued.has_value());
        BOOST_TEST(queued->name == "STOP");
        BOOST_TEST(queued->seconds == 1795757853);

        // Many events, some sharing a write, some split across writes: all in order.
        std::string burst;
        for (int i = 0; i < 50; ++i) burst += event_line("E", i);
        co_await peer.send(burst.substr(0, 1001));
        co_await peer.send(burst.substr(1001));
        for (int i = 0; i < 50; ++i) {
            auto [ec, ev] = co_await events.async_next(asio::as_tuple(asio::use_awaitable));
            BOOST_REQUIRE(!ec);
            BOOST_TEST(ev.microseconds == i);
        }
        // The event stream ends with the connection.
        peer.close();
        auto [ec, ev] =
            co_await within(events.async_next(asio::as_tuple(asio::use_awaitable)), 5000ms, "eof");
        BOOST_TEST((ec == asio::error::eof));
        BOOST_TEST((client.end_reason()->code() == asio::error::eof));
    });
}

BOOST_AUTO_TEST_CASE(concurrent_commands_answered_out_of_order) {
    run_coro([]() -> asio::awaitable<void> {
        auto conn = connect(co_await asio::this_coro::executor);
        auto& client = conn.client;
        auto& peer = conn.peer;
        co_await (client.async_handshake() && peer.handshake());
        auto answer = [&]() -> asio::awaitable<void> {
            auto a = co_await peer.next_command();
            auto b = co_await peer.next_command();
            auto c = co_await peer.next_command();
            // Reverse order, with an event in between, all in one write.
            co_await peer.send(
                return_line(fake_peer::id_of(c), "\"" + std::string(c.at("execute").as_string()) + "\"") +
                event_line("X", 1) +
                return_line(fake_peer::id_of(b), "\"" + std::string(b.at("execute").as_string()) + "\"") +
                return_line(fake_peer::id_of(a), "\"" + std::string(a.at("execute").as_string()) + "\""));
        };
        // (The void operand goes first: Boost 1.81's `tuple && void` operator does not compile.)
        auto [x, y, z] =
            co_await within(answer() && (client.async_execute("one") && client.async_execute("two") &&
                                         client.async_execute("three")),
                            5000ms, "three commands");
        BOOST_TEST(x == json::value("one"));
        BOOST_TEST(y == json::value("two"));
        BOOST_TEST(z == json::value("three"));
    });
}

BOOST_AUTO_TEST_CASE(malformed_reply_is_a_protocol_error_and_nothing_hangs) {
    run_coro([]() -> asio::awaitable<void> {
        auto conn = connect(co_await asio::this_coro::executor);
        auto& client = conn.client;
        auto& peer = conn.peer;
        auto events = client.subscribe_events();
        co_await (client.async_handshake() && peer.handshake());
        auto answer = [&]() -> asio::awaitable<void> {
            co_await peer.next_command();
            co_await peer.next_command();
            co_await peer.send("{\"return\": {,}}\r\n");
        };
        auto [e1, e2] = co_await within(
            answer() && (failure_of(client.async_execute("a")) && failure_of(client.async_execute("b"))),
            5000ms, "malformed reply");
        BOOST_TEST((e1.code == vmrt::errc::protocol_error));
        BOOST_TEST((e2.code == vmrt::errc::protocol_error));
        BOOST_TEST(contains(e1.message, "invalid JSON"), e1.message);
        BOOST_TEST(contains(e1.message, "\"a\""), e1.message);  // names the command
        BOOST_TEST(!client.is_open());
        BOOST_TEST((client.end_reason()->code() == vmrt::errc::protocol_error));
        // Later commands fail at once with the same reason; the event stream has ended.
        auto later =
            co_await within(failure_of(client.async_execute("c")), 5000ms, "command after the fault");
        BOOST_TEST((later.code == vmrt::errc::protocol_error));
        auto [ec, ev] =
            co_await within(events.async_next(asio::as_tuple(asio::use_awaitable)), 5000ms, "eof");
        BOOST_TEST((ec == asio::error::eof));
        const bool peer_eof =
            co_await within(peer.sees_eof(), 5000ms, "peer eof");  // the client closed its end
        BOOST_TEST(peer_eof);
    });
}

BOOST_AUTO_TEST_CASE(reply_to_an_unknown_id_is_a_protocol_error) {
    run_coro([]() -> asio::awaitable<void> {
        auto conn = connect(co_await asio::this_coro::executor);
        auto& client = conn.client;
        auto& peer = conn.peer;
        co_await (client.async_handshake() && peer.handshake());
        auto answer = [&]() -> asio::awaitable<void> {
            co_await peer.next_command();
            co_await peer.send(return_line(999));
        };
        auto e = co_await within(failure_of(client.async_execute("query-status")) && answer(), 5000ms,
                                 "unknown id");
        BOOST_TEST((e.code == vmrt::errc::protocol_error));
        BOOST_TEST(contains(e.message, "id 999"), e.message);
    });
}

BOOST_AUTO_TEST_CASE(eof_fails_every_pending_command) {
    run_coro([]() -> asio::awaitable<void> {
        auto conn = connect(co_await asio::this_coro::executor);
        auto& client = conn.client;
        auto& peer = conn.peer;
        co_await (client.async_handshake() && peer.handshake());
        auto hang_up = [&]() -> asio::awaitable<void> {
            co_await peer.next_command();
            co_await peer.next_command();
            peer.close();  // QEMU exited mid-command
        };
        auto [e1, e2] = co_await within(hang_up() && (failure_of(client.async_execute("system_powerdown")) &&
                                                      failure_of(client.async_execute("query-status"))),
                                        5000ms, "eof");
        BOOST_TEST((e1.code == asio::error::eof));
        BOOST_TEST((e2.code == asio::error::eof));
        BOOST_TEST(contains(e1.message, "QMP connection closed (QEMU exited?)"), e1.message);
        BOOST_TEST(contains(e1.message, "system_powerdown"), e1.message);
        BOOST_TEST(contains(e2.message, "query-status"), e2.message);
        auto later = co_await within(failure_of(client.async_execute("cont")), 5000ms, "command after eof");
        BOOST_TEST((later.code == asio::error::eof));
    });
}

BOOST_AUTO_TEST_CASE(cancelled_wait_leaves_the_connection_usable) {
    run_coro([]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        auto conn = connect(ex);
        auto& client = conn.client;
        auto& peer = conn.peer;
        co_await (client.async_handshake() && peer.handshake());

        // 1. Through an explicit cancellation slot.
        asio::cancellation_signal cancel;
        std::optional<std::exception_ptr> outcome;
        asio::co_spawn(ex, client.async_execute("slow"),
                       asio::bind_cancellation_slot(cancel.slot(),
                                                    [&](std::exception_ptr e, json::value) { outcome = e; }));
        auto slow = co_await peer.next_command();  // the command was sent; no reply yet
        cancel.emit(asio::cancellation_type::terminal);
        asio::steady_timer settle(ex, 50ms);
        co_await settle.async_wait(asio::use_awaitable);
        BOOST_REQUIRE(outcome.has_value());
        try {
            std::rethrow_exception(*outcome);
        } catch (const boost::system::system_error& e) {
            BOOST_TEST((e.code() == asio::error::operation_aborted));
        }

        // 2. Raced against a timer, as a caller's timeout does.
        asio::steady_timer deadline(ex, 30ms);
        auto raced = co_await (client.async_execute("slower") || deadline.async_wait(asio::use_awaitable));
        BOOST_TEST(raced.index() == 1u);
        auto slower = co_await peer.next_command();

        // The late replies are dropped quietly, and the next command works.
        auto answer = [&]() -> asio::awaitable<void> {
            auto cmd = co_await peer.next_command();
            co_await peer.send(return_line(fake_peer::id_of(slow)) + return_line(fake_peer::id_of(slower)) +
                               return_line(fake_peer::id_of(cmd), "7"));
        };
        auto v =
            co_await within(client.async_execute("next") && answer(), 5000ms, "command after cancellations");
        BOOST_TEST(v == json::value(7));
        BOOST_TEST(client.is_open());
    });
}

BOOST_AUTO_TEST_CASE(handshake_failures) {
    run_coro([]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        {  // garbage instead of a greeting
            auto conn = connect(ex);
            auto& client = conn.client;
            auto& peer = conn.peer;
            co_await peer.send("Welcome to the monitor\r\n");
            try {
                co_await within(client.async_handshake(), 5000ms, "handshake");
                BOOST_ERROR("handshake must fail");
            } catch (const vmrt::error& e) {
                BOOST_TEST((e.code() == vmrt::errc::protocol_error));
            }
        }
        {  // QEMU gone before it greeted
            auto conn = connect(ex);
            auto& client = conn.client;
            auto& peer = conn.peer;
            peer.close();
            try {
                co_await within(client.async_handshake(), 5000ms, "handshake");
                BOOST_ERROR("handshake must fail");
            } catch (const vmrt::error& e) {
                BOOST_TEST((e.code() == asio::error::eof));
            }
        }
        {  // a command before the handshake, a second handshake, capabilities refused
            auto conn = connect(ex);
            auto& client = conn.client;
            auto& peer = conn.peer;
            auto early = co_await failure_of(client.async_execute("query-status"));
            BOOST_TEST((early.code == vmrt::errc::invalid_state));
            auto refuse = [&]() -> asio::awaitable<void> {
                co_await peer.send(greeting_line);
                auto caps = co_await peer.next_command();
                co_await peer.send("{\"error\": {\"class\": \"GenericError\", \"desc\": \"nope\"}, \"id\": " +
                                   std::to_string(fake_peer::id_of(caps)) + "}\r\n");
            };
            auto attempt = [&]() -> asio::awaitable<void> {
                try {
                    co_await client.async_handshake();
                    BOOST_ERROR("handshake must fail");
                } catch (const vmrt::error& e) {
                    BOOST_TEST((e.code() == vmrt::errc::protocol_error));
                    BOOST_TEST(contains(e.diag().message, "refused qmp_capabilities: GenericError: nope"));
                }
            };
            co_await within(attempt() && refuse(), 5000ms, "refused handshake");
        }
        {  // no greeting at all: the caller's deadline cancels the handshake, which closes the connection
            auto conn = connect(ex);
            auto& client = conn.client;
            auto& peer = conn.peer;
            asio::steady_timer deadline(ex, 30ms);
            auto raced = co_await (client.async_handshake() || deadline.async_wait(asio::use_awaitable));
            BOOST_TEST(raced.index() == 1u);
            BOOST_TEST(!client.is_open());
            const bool peer_eof = co_await within(peer.sees_eof(), 5000ms, "peer eof");
            BOOST_TEST(peer_eof);
        }
    });
}

BOOST_AUTO_TEST_CASE(close_aborts_waits_and_ends_events) {
    run_coro([]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        auto conn = connect(ex);
        auto& client = conn.client;
        auto& peer = conn.peer;
        auto events = client.subscribe_events();
        co_await (client.async_handshake() && peer.handshake());
        auto closer = [&]() -> asio::awaitable<void> {
            co_await peer.next_command();
            client.close();
        };
        auto e =
            co_await within(failure_of(client.async_execute("query-status")) && closer(), 5000ms, "close");
        BOOST_TEST((e.code == asio::error::operation_aborted));
        auto [ec, ev] =
            co_await within(events.async_next(asio::as_tuple(asio::use_awaitable)), 5000ms, "eof");
        BOOST_TEST((ec == asio::error::eof));
        const bool peer_eof = co_await within(peer.sees_eof(), 5000ms, "peer eof");
        BOOST_TEST(peer_eof);
    });
}

// ---- a real QEMU ---------------------------------------------------------------------------

namespace {

const std::filesystem::path qemu_program = "/usr/bin/qemu-system-x86_64";

// No machine, no devices, no guest: just QEMU and its monitor on the inherited fd.
std::vector<std::string> qemu_args(int fd) {
    std::vector<std::string> args;
    for (const char* a :
         {"-machine", "none", "-nodefaults", "-no-user-config", "-display", "none", "-accel", "tcg"})
        args.emplace_back(a);
    args.emplace_back("-chardev");
    args.emplace_back("socket,id=qmp,fd=" + std::to_string(fd));
    args.emplace_back("-mon");
    args.emplace_back("chardev=qmp,mode=control");
    return args;
}

}  // namespace

BOOST_AUTO_TEST_CASE(real_qemu_over_socketpair) {
    BOOST_REQUIRE_MESSAGE(std::filesystem::exists(qemu_program),
                          qemu_program.string()
                              << " is missing: run tools/setup (it installs qemu-system-x86)");
    vmrt::test::temp_dir dir;
    run_coro([&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        int fds[2];
        BOOST_REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
        socket_type ours(ex, asio::local::stream_protocol(), fds[0]);
        vmrt::io::process_options opts;
        opts.program = qemu_program;
        opts.args = qemu_args(fds[1]);
        opts.inherited_fds.push_back(fds[1]);
        opts.log_file = dir / "qemu.log";
        vmrt::error_code spawn_ec;
        auto proc = vmrt::io::process::spawn(ex, opts, spawn_ec);
        ::close(fds[1]);  // QEMU has its copy; ours would hide QEMU's exit from the reader
        BOOST_REQUIRE_MESSAGE(!spawn_ec, "cannot start QEMU: " << spawn_ec.message());

        qmp::client client(std::move(ours));
        auto events = client.subscribe_events();
        qmp::greeting greeting;
        try {
            greeting = co_await within(client.async_handshake(), 10000ms, "QMP greeting from QEMU");
        } catch (const std::exception& e) {
            BOOST_FAIL("QMP handshake over a socketpair fd failed: "
                       << e.what() << "; QEMU log: " << vmrt::io::read_file_tail(dir / "qemu.log"));
        }
        BOOST_TEST(greeting.major >= 7);
        BOOST_TEST_MESSAGE("QEMU " << greeting.major << "." << greeting.minor << "." << greeting.micro << " ("
                                   << greeting.package << ") accepted the socketpair as -chardev socket,fd=");

        auto status = co_await within(client.async_execute("query-status"), 10000ms, "query-status");
        BOOST_TEST(status.at("status").as_string() == "running");
        BOOST_TEST(status.at("running").as_bool());

        auto version = co_await within(client.async_execute("query-version"), 10000ms, "query-version");
        BOOST_TEST(version.at("qemu").at("major").to_number<std::int64_t>() == greeting.major);
        BOOST_TEST(version.at("package").as_string() == greeting.package);

        // A refused command is a command failure with QEMU's description.
        auto refused = co_await failure_of(client.async_execute("no-such-command"));
        BOOST_TEST((refused.code == vmrt::errc::command_failed));
        BOOST_TEST(contains(refused.message, "no-such-command"), refused.message);

        auto bye = co_await within(client.async_execute("quit"), 10000ms, "quit");
        BOOST_TEST(bye.as_object().empty());
        // SHUTDOWN{guest: false, reason: host-qmp-quit} (QEMU 7.2 writes it before quit's return),
        // then the stream ends because QEMU exited.
        auto [ec, shutdown] = co_await within(events.async_next(asio::as_tuple(asio::use_awaitable)), 10000ms,
                                              "SHUTDOWN event");
        BOOST_REQUIRE(!ec);
        BOOST_TEST(shutdown.name == "SHUTDOWN");
        BOOST_TEST(shutdown.data.at("reason").as_string() == "host-qmp-quit");
        BOOST_TEST(!shutdown.data.at("guest").as_bool());
        auto [end_ec, none] = co_await within(events.async_next(asio::as_tuple(asio::use_awaitable)), 10000ms,
                                              "end of the event stream");
        BOOST_TEST((end_ec == asio::error::eof));
        BOOST_TEST((client.end_reason()->code() == asio::error::eof));
        auto [wait_ec, exited] = co_await within(proc.async_wait(asio::as_tuple(asio::use_awaitable)),
                                                 10000ms, "QEMU exit after quit");
        BOOST_TEST(!wait_ec);
        BOOST_TEST(exited.success(), exited.to_string());
    });
}

BOOST_AUTO_TEST_SUITE_END()
