// async_hybrid_vsock_connect: the `CONNECT <port>\n` / `OK <port>\n` handshake with retries
// (see include/vmrt/net/hybrid_vsock.hpp). Each step runs against the remaining overall deadline
// through io::with_timeout, so one deadline covers connects, reads and backoff pauses alike.
#include "net/hybrid_vsock_codec.hpp"

#include <vmrt/error.hpp>
#include <vmrt/io/with_timeout.hpp>
#include <vmrt/net/hybrid_vsock.hpp>

#include <boost/asio/deferred.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <sys/un.h>

#include <algorithm>
#include <optional>
#include <string>

namespace vmrt::net {

namespace asio = boost::asio;
using stream_protocol = asio::local::stream_protocol;
using clock = std::chrono::steady_clock;

namespace {

// A Unix socket path must fit sun_path with its terminating NUL.
void check_socket_path(const std::filesystem::path& p, const char* what) {
    if (p.empty() || p.native().size() >= sizeof(sockaddr_un::sun_path))
        throw vmrt::error(
            errc::invalid_spec,
            {.message = std::string(what) + " '" + p.string() + "' is " +
                        (p.empty() ? std::string("empty")
                                   : std::to_string(p.native().size()) +
                                         " bytes long; a Unix "
                                         "socket path must be shorter than " +
                                         std::to_string(sizeof(sockaddr_un::sun_path)) + " bytes"),
             .field = "vsock_socket"});
}

// Failures that mean "not yet": the VM's socket is missing or not listening (the VM is not up),
// or CH closed the connection before `OK` (the guest is not listening or did not answer in 2 s).
bool worth_retrying(const error_code& ec) {
    return ec == boost::system::errc::no_such_file_or_directory || ec == asio::error::connection_refused ||
           ec == asio::error::try_again || ec == asio::error::eof || ec == asio::error::connection_reset ||
           ec == asio::error::broken_pipe;
}

struct attempt_result {
    enum class kind { connected, retry, fatal } what = kind::retry;
    std::string reason;  // for retry/fatal
    error_code ec;       // for fatal
    std::uint32_t host_port = 0;
};

class handshake {
public:
    handshake(std::filesystem::path socket, std::uint32_t port, hybrid_vsock_connect_options opts)
        : socket_path_(std::move(socket)), port_(port), opts_(opts), deadline_(clock::now() + opts.timeout) {}

    asio::awaitable<hybrid_vsock_stream> run() {
        auto ex = co_await asio::this_coro::executor;
        auto backoff = opts_.initial_backoff;
        for (;;) {
            ++attempts_;
            stream_protocol::socket s(ex);
            attempt_result r = co_await attempt(s);
            if (r.what == attempt_result::kind::connected) {
                hybrid_vsock_stream out{std::move(s), r.host_port, attempts_};
                co_return out;
            }
            if (r.what == attempt_result::kind::fatal)
                throw vmrt::error(r.ec, {.message = where() + r.reason});
            last_reason_ = std::move(r.reason);
            s.close();
            const auto now = clock::now();
            if (now >= deadline_) throw timed_out();
            asio::steady_timer pause(ex, std::min(backoff, deadline_ - now));
            error_code ec;
            co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
            co_await throw_if_cancelled();
            backoff = std::min(backoff * 2, opts_.max_backoff);
        }
    }

private:
    std::string where() const {
        return "hybrid vsock connect to guest port " + std::to_string(port_) + " through " +
               socket_path_.string() + ": ";
    }

    vmrt::error timed_out() const {
        return vmrt::error(
            errc::timeout,
            {.message = where() + "no connection within " +
                        std::to_string(
                            std::chrono::duration_cast<std::chrono::milliseconds>(opts_.timeout).count()) +
                        " ms after " + std::to_string(attempts_) + " attempt(s); last: " + last_reason_});
    }

    asio::awaitable<void> throw_if_cancelled() {
        asio::cancellation_state cs = co_await asio::this_coro::cancellation_state;
        if (cs.cancelled() != asio::cancellation_type::none)
            throw vmrt::error(errc::cancelled, {.message = where() + "cancelled"});
    }

    clock::duration remaining() const { return std::max(deadline_ - clock::now(), clock::duration::zero()); }

    // Step errors: a cancellation, the deadline, a reason to retry, or a fatal error.
    asio::awaitable<std::optional<attempt_result>> classify(error_code ec, const char* step) {
        if (!ec) co_return std::nullopt;
        co_await throw_if_cancelled();
        if (ec == errc::timeout) {
            // Keep why the attempt before failed: "guest not listening" matters more than "cut short".
            last_reason_ = std::string(step) + ": still waiting at the deadline" +
                           (attempts_ > 1 ? "; the attempt before: " + last_reason_ : std::string());
            throw timed_out();
        }
        attempt_result r;
        r.reason = std::string(step) + ": " + ec.message();
        if (worth_retrying(ec)) {
            if (ec == asio::error::eof || ec == asio::error::connection_reset ||
                ec == asio::error::broken_pipe)
                r.reason += " (the guest is not listening on that port, or did not answer)";
            co_return r;
        }
        r.what = attempt_result::kind::fatal;
        r.ec = ec;
        co_return r;
    }

    // For the error message only (the connection is dropped): the rest of a malformed reply line,
    // as far as it arrives within a moment.
    asio::awaitable<std::string> rest_of_line(stream_protocol::socket& s, std::string seen) {
        const auto limit = std::min(remaining(), clock::duration(std::chrono::milliseconds(100)));
        const auto until = clock::now() + limit;
        while (seen.size() < hybrid_vsock::max_line_bytes && seen.back() != '\n' && clock::now() < until) {
            char byte = 0;
            auto [ec, n] = co_await io::with_timeout(
                s.async_read_some(asio::buffer(&byte, 1), asio::deferred), until - clock::now());
            if (ec || n != 1) break;
            seen.push_back(byte);
        }
        co_return seen;
    }

    asio::awaitable<attempt_result> attempt(stream_protocol::socket& s) {
        const stream_protocol::endpoint ep(socket_path_.string());
        auto [connect_ec] = co_await io::with_timeout(s.async_connect(ep, asio::deferred), remaining());
        if (auto r = co_await classify(connect_ec, "connect")) co_return *r;

        const std::string command = hybrid_vsock::connect_command(port_);
        auto [write_ec, written] = co_await io::with_timeout(
            asio::async_write(s, asio::buffer(command), asio::deferred), remaining());
        if (auto r = co_await classify(write_ec, "sending CONNECT")) co_return *r;

        // One byte per read: whatever follows the `\n` belongs to the guest service's stream.
        hybrid_vsock::reply_parser parser;
        while (parser.state() == hybrid_vsock::reply_parser::status::incomplete) {
            char byte = 0;
            auto [read_ec, n] = co_await io::with_timeout(
                s.async_read_some(asio::buffer(&byte, 1), asio::deferred), remaining());
            if (auto r = co_await classify(read_ec,
                                           parser.line().empty() ? "waiting for OK" : "reading OK line")) {
                if (!parser.line().empty())
                    r->reason += " after \"" + hybrid_vsock::printable(parser.line()) + "\"";
                co_return *r;
            }
            if (n == 1) parser.feed(byte);
        }
        if (parser.state() == hybrid_vsock::reply_parser::status::malformed) {
            const std::string seen = co_await rest_of_line(s, parser.line());
            throw vmrt::error(errc::protocol_error,
                              {.message = where() + "malformed reply \"" + hybrid_vsock::printable(seen) +
                                          "\": " + parser.error() + " (expected \"OK <port>\\n\")"});
        }
        attempt_result ok;
        ok.what = attempt_result::kind::connected;
        ok.host_port = parser.host_port();
        co_return ok;
    }

    std::filesystem::path socket_path_;
    std::uint32_t port_;
    hybrid_vsock_connect_options opts_;
    clock::time_point deadline_;
    unsigned attempts_ = 0;
    std::string last_reason_ = "none";
};

}  // namespace

asio::awaitable<hybrid_vsock_stream> async_hybrid_vsock_connect(std::filesystem::path vsock_socket,
                                                                std::uint32_t port,
                                                                hybrid_vsock_connect_options opts) {
    check_socket_path(vsock_socket, "vsock socket");
    const std::string what = vsock_socket.string();
    handshake h(std::move(vsock_socket), port, opts);
    try {
        co_return co_await h.run();
    } catch (const vmrt::error&) {
        throw;
    } catch (const boost::system::system_error& e) {
        // Once the coroutine is cancelled, Asio throws operation_aborted from the next co_await.
        if (e.code() != asio::error::operation_aborted) throw;
    }
    throw vmrt::error(errc::cancelled,
                      {.message = "hybrid vsock connect to guest port " + std::to_string(port) + " through " +
                                  what + ": cancelled"});
}

asio::awaitable<hybrid_vsock_stream> async_hybrid_vsock_connect(std::filesystem::path vsock_socket,
                                                                std::uint32_t port) {
    return async_hybrid_vsock_connect(std::move(vsock_socket), port, hybrid_vsock_connect_options{});
}

}  // namespace vmrt::net
