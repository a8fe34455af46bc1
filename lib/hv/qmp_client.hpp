// QMP client: the I/O runner around qmp::session (qmp_codec.hpp) over a connected Unix stream
// socket (one end of a socketpair handed to QEMU as `-chardev socket,id=qmp,fd=N`, or a
// connection to QEMU's `-qmp unix:PATH,server=on`).
//
//   qmp::client qmp(std::move(socket));
//   auto events = qmp.subscribe_events();             // before the handshake: see every event
//   co_await qmp.async_handshake();
//   json::value status = co_await qmp.async_execute("query-status");
//
// One reader coroutine reads the socket and dispatches: each reply completes the command that
// waits for its id, each event is published to the subscribers. Any number of commands may be
// outstanding at once, and they may be answered in any order. Writes are queued, so commands
// reach the socket whole and in the order they were issued.
//
// Ordering: an event that QEMU sent before a reply (STOP before the return of `stop`) is already
// queued in every subscription when that command's co_await resumes.
//
// Errors, thrown as vmrt::error (a boost::system::system_error):
//  * command_failure (errc::command_failed): QEMU answered with an error; diag().message is the
//    QMP "desc", error_class() the QMP "class". The connection stays usable.
//  * errc::protocol_error: the peer broke the protocol (invalid JSON, unknown reply id, ...).
//    The connection is closed, and every waiting and later command fails with the same error.
//  * boost::asio::error::eof: the connection closed ("QMP connection closed (QEMU exited?)");
//    a connection reset or a broken pipe is reported the same way.
//  * boost::asio::error::operation_aborted: the wait was cancelled (the command itself cannot be
//    withdrawn: QEMU still runs it and its late reply is discarded; the connection stays usable),
//    or close() was called. Cancelling async_handshake closes the connection: half a handshake
//    leaves nothing to reuse.
//  * errc::invalid_state: a command before the handshake completed, or a second handshake.
//
// Thread safety: none. Use a client, and emit the cancellations bound to its waits, from one
// executor (a strand if its io_context runs on several threads): the socket's.
#pragma once

#include "hv/qmp_codec.hpp"

#include <vmrt/error.hpp>
#include <vmrt/io/broadcast_channel.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/local/stream_protocol.hpp>

#include <memory>
#include <optional>
#include <string>

namespace vmrt::hv::qmp {

/// A command that QEMU refused (an error reply). diag().message is QEMU's description.
class command_failure : public vmrt::error {
public:
    command_failure(std::string command, command_error qmp_error);
    const std::string& command() const noexcept { return command_; }
    const std::string& error_class() const noexcept { return qmp_error_.error_class; }
    const std::string& desc() const noexcept { return qmp_error_.desc; }

private:
    std::string command_;
    command_error qmp_error_;
};

class client {
public:
    using socket_type = boost::asio::local::stream_protocol::socket;
    using executor_type = socket_type::executor_type;

    /// Takes a connected socket. Nothing is read until async_handshake().
    explicit client(socket_type socket, std::size_t max_message_bytes = default_max_message_bytes);
    client(client&&) noexcept = default;
    client& operator=(client&& other) noexcept;
    client(const client&) = delete;
    client& operator=(const client&) = delete;
    /// Closes the connection: waiting operations complete with operation_aborted.
    ~client();

    executor_type get_executor() const;

    /// A subscription to the events received from now on, in order. It ends (eof) when the
    /// connection ends; end_reason() then says why.
    io::subscription<event> subscribe_events();

    /// Reads the greeting, negotiates capabilities (none are enabled) and starts the reader.
    /// Returns the greeting.
    boost::asio::awaitable<greeting> async_handshake();

    /// Runs one command and returns its "return" value. Errors: see the top of this file.
    boost::asio::awaitable<json::value> async_execute(std::string name, json::object arguments = {});

    /// True from construction until the connection ends (EOF, fault, close()).
    bool is_open() const noexcept;
    /// The greeting, once received.
    std::optional<greeting> peer_greeting() const;
    /// Why the connection ended; empty while it is open.
    std::optional<vmrt::error> end_reason() const;

    /// Closes the socket; waiting operations complete with operation_aborted, subscriptions end.
    void close();

    struct impl;

private:
    std::shared_ptr<impl> impl_;
};

}  // namespace vmrt::hv::qmp
