// Sans-I/O QMP (QEMU Machine Protocol) client core: bytes in, messages out, no sockets.
//
//  * `decoder` splits the byte stream from QEMU into JSON objects and classifies each one as a
//    greeting, a reply or an event. QEMU writes one object per line ("\r\n"), but the decoder
//    does not rely on lines: it parses the stream itself, so an object split across reads,
//    several objects in one read, and QEMU's `-mon pretty=on` multi-line output all work.
//    Each message is bounded (max_message_bytes, 16 MiB by default) and so is its nesting, so a
//    broken or hostile peer cannot grow memory without limit.
//  * `session` adds the client's state on top: the handshake (greeting -> qmp_capabilities ->
//    its reply -> ready), command ids that increase monotonically, and the matching of replies
//    to the commands that are still waiting for one.
//
// A protocol fault (invalid JSON, a message that is none of the three kinds, a field missing or
// of the wrong type, a reply to an id never sent, an over-long message) breaks the stream for
// good: QMP has no way to resynchronise, and guessing would pair a reply with the wrong command.
// A QMP *error reply* is not a fault: it is a command that QEMU refused, and it is delivered as a
// reply carrying the error's class and description.
//
// The observed transcripts this follows are in /work/shared/reference/real-guests.md §3: events
// interleave with replies (STOP arrives before the return of `stop`; SHUTDOWN before `quit`'s).
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace boost::json {
class stream_parser;
}

namespace vmrt::hv::qmp {

namespace json = boost::json;

inline constexpr std::size_t default_max_message_bytes = 16 * 1024 * 1024;

/// {"QMP": {"version": {"qemu": {"major", "minor", "micro"}, "package"}, "capabilities": [...]}}
struct greeting {
    std::int64_t major = 0;
    std::int64_t minor = 0;
    std::int64_t micro = 0;
    std::string package;                    ///< distribution build ("Debian 1:7.2+dfsg-7+deb12u18+b3")
    std::vector<std::string> capabilities;  ///< offered capabilities ("oob"); vmrt enables none
    friend bool operator==(const greeting&, const greeting&) = default;
};

/// The "error" member of a refused command: {"class": "GenericError", "desc": "..."}.
struct command_error {
    std::string error_class;
    std::string desc;
    friend bool operator==(const command_error&, const command_error&) = default;
};

/// {"return": VALUE, "id": N} or {"error": {...}, "id": N}.
struct reply {
    std::uint64_t id = 0;
    json::value value;                   ///< the "return" member (null for an error reply)
    std::optional<command_error> error;  ///< set for an error reply
    bool ok() const noexcept { return !error.has_value(); }
    friend bool operator==(const reply&, const reply&) = default;
};

/// {"event": NAME, "data": {...}, "timestamp": {"seconds": S, "microseconds": U}}.
struct event {
    std::string name;
    json::object data;  ///< empty when the event has no "data" (STOP, RESUME, POWERDOWN)
    std::int64_t seconds = 0;
    std::int64_t microseconds = 0;
    friend bool operator==(const event&, const event&) = default;
};

using message = std::variant<greeting, reply, event>;

/// Why the stream from the peer cannot be trusted any more; `message` is for diagnostics.
struct protocol_fault {
    std::string message;
    friend bool operator==(const protocol_fault&, const protocol_fault&) = default;
};

/// Classifies one JSON value received from QEMU, or says what is wrong with it.
std::variant<message, protocol_fault> classify(const json::value& v);

/// The wire form of a command: {"execute": NAME, "arguments": {...}, "id": ID} and a newline.
/// "arguments" is left out when empty (QMP makes it optional). Any name is safe: it is escaped.
std::string encode_command(std::string_view name, const json::object& arguments, std::uint64_t id);

/// Stream framing and classification. Not thread-safe (one reader feeds it). Movable; a
/// moved-from decoder may only be destroyed or assigned to.
class decoder {
public:
    explicit decoder(std::size_t max_message_bytes = default_max_message_bytes);
    decoder(decoder&&) noexcept;
    decoder& operator=(decoder&&) noexcept;
    ~decoder();

    /// Parses `bytes`, appending each message they complete to `out` in order. Returns the fault
    /// that broke the stream, if any; messages completed before it are still appended. Once a
    /// fault has been returned, every later call returns it again and parses nothing.
    std::optional<protocol_fault> feed(std::string_view bytes, std::vector<message>& out);

    /// Bytes of the current, unfinished message held so far (at most max_message_bytes + 1).
    std::size_t pending_bytes() const noexcept { return current_bytes_; }

private:
    std::optional<protocol_fault> fail(std::string why);
    void remember_excerpt(std::string_view piece);

    std::size_t max_message_bytes_;
    std::unique_ptr<json::stream_parser> parser_;  // behind a pointer: stream_parser cannot move
    std::size_t current_bytes_ = 0;
    std::string excerpt_;  // start of the current message, quoted in fault messages
    std::optional<protocol_fault> fault_;
};

/// A command that the caller must write to the peer, and the id its reply will carry.
struct outgoing_command {
    std::uint64_t id = 0;
    std::string wire;
};

/// What a chunk of input produced. The greeting and the reply to qmp_capabilities are consumed
/// by the handshake (see session::current_phase and session::peer_greeting), not listed here.
struct received {
    std::vector<std::variant<reply, event>> messages;  ///< in arrival order
    std::optional<protocol_fault> fault;               ///< set when (and every time after) the stream broke
};

/// The client side of one QMP connection. Not thread-safe.
class session {
public:
    enum class phase {
        awaiting_greeting,  ///< nothing received yet
        negotiating,        ///< greeting received, qmp_capabilities sent (or to be sent)
        ready,              ///< commands may be issued
        failed,             ///< a protocol fault broke the stream; nothing more is accepted
    };

    explicit session(std::size_t max_message_bytes = default_max_message_bytes);

    phase current_phase() const noexcept { return phase_; }
    const std::optional<greeting>& peer_greeting() const noexcept { return greeting_; }
    const std::optional<protocol_fault>& fault() const noexcept { return fault_; }

    /// Feeds bytes from the peer. Replies are only returned for ids issued by execute() and not
    /// answered yet; anything else is a fault.
    received receive(std::string_view bytes);

    /// Bytes the session itself needs written (qmp_capabilities once the greeting arrived);
    /// returns them and forgets them. Empty when there is nothing to write.
    std::string take_output();

    /// Issues a command with the next id; its reply is then expected. Precondition: phase ready
    /// (otherwise throws vmrt::error with errc::invalid_state).
    outgoing_command execute(std::string_view name, const json::object& arguments = {});

    /// Ids sent whose reply has not arrived yet.
    const std::set<std::uint64_t>& outstanding() const noexcept { return outstanding_; }

private:
    std::optional<protocol_fault> accept(message&& m, received& out);
    std::optional<protocol_fault> accept_greeting(greeting&& g);
    std::optional<protocol_fault> accept_reply(reply&& r, received& out);
    std::optional<protocol_fault> accept_capabilities_reply(const reply& r);
    void fail(protocol_fault f);

    decoder decoder_;
    phase phase_ = phase::awaiting_greeting;
    std::optional<greeting> greeting_;
    std::optional<protocol_fault> fault_;
    std::uint64_t next_id_ = 1;
    std::uint64_t capabilities_id_ = 0;
    std::set<std::uint64_t> outstanding_;
    std::string output_;
};

std::string_view to_string(session::phase p) noexcept;

}  // namespace vmrt::hv::qmp
