// QMP framing, classification and the client session (see qmp_codec.hpp for the rules).
//
// Framing uses Boost.JSON's incremental parser instead of splitting on '\n': write_some() stops
// right after a complete value, so one parser turns any chunking of the stream into whole
// values, and the whitespace between them ("\r\n" included) is simply skipped. Classification
// is strict: every field vmrt reads must be present with the right JSON type, because a
// message that only looks like a reply could complete the wrong command.
#include "hv/qmp_codec.hpp"

#include <vmrt/error.hpp>

#include <boost/json/serialize.hpp>
#include <boost/json/stream_parser.hpp>

#include <limits>
#include <utility>

namespace vmrt::hv::qmp {
namespace {

// Deep enough for every QMP reply (query-qmp-schema nests about six levels), shallow enough
// that the parser's stack stays small whatever the peer sends.
constexpr std::size_t max_nesting = 64;
// How much of a broken message is quoted in a fault's message.
constexpr std::size_t excerpt_bytes = 160;

// Thrown by the field readers below and caught in classify(): malformed input is expected
// here, and one catch site keeps each reader a one-liner instead of a chain of checks.
struct malformed {
    std::string what;
};

[[noreturn]] void reject(std::string what) { throw malformed{std::move(what)}; }

// Bytes of peer data made safe to put into a one-line diagnostic.
std::string printable(std::string_view bytes, std::size_t limit = excerpt_bytes) {
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    for (std::size_t i = 0; i < bytes.size() && i < limit; ++i) {
        auto c = static_cast<unsigned char>(bytes[i]);
        if (c >= 0x20 && c < 0x7f) {
            out.push_back(static_cast<char>(c));
        } else {
            out += "\\x";
            out.push_back(hex[c >> 4]);
            out.push_back(hex[c & 0xf]);
        }
    }
    if (bytes.size() > limit) out += "...";
    return out;
}

std::string excerpt_of(const json::value& v) { return printable(json::serialize(v)); }

std::string quoted(std::string_view where, std::string_view key) {
    return "\"" + std::string(where) + (where.empty() ? "" : ".") + std::string(key) + "\"";
}

const json::value& need(const json::object& o, std::string_view where, std::string_view key) {
    const auto* v = o.if_contains(key);
    if (!v) reject(quoted(where, key) + " is missing");
    return *v;
}

const json::object& need_object(const json::object& o, std::string_view where, std::string_view key) {
    const auto& v = need(o, where, key);
    if (!v.is_object()) reject(quoted(where, key) + " is not an object");
    return v.get_object();
}

std::string need_string(const json::object& o, std::string_view where, std::string_view key) {
    const auto& v = need(o, where, key);
    if (!v.is_string()) reject(quoted(where, key) + " is not a string");
    return std::string(v.get_string());
}

std::int64_t need_int(const json::object& o, std::string_view where, std::string_view key) {
    const auto& v = need(o, where, key);
    if (v.is_int64()) return v.get_int64();
    if (v.is_uint64() &&
        v.get_uint64() <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
        return static_cast<std::int64_t>(v.get_uint64());
    reject(quoted(where, key) + " is not an integer");
}

greeting parse_greeting(const json::object& root) {
    const auto& qmp = need_object(root, "", "QMP");
    const auto& version = need_object(qmp, "QMP", "version");
    const auto& qemu = need_object(version, "QMP.version", "qemu");
    greeting g;
    g.major = need_int(qemu, "QMP.version.qemu", "major");
    g.minor = need_int(qemu, "QMP.version.qemu", "minor");
    g.micro = need_int(qemu, "QMP.version.qemu", "micro");
    g.package = need_string(version, "QMP.version", "package");
    const auto& caps = need(qmp, "QMP", "capabilities");
    if (!caps.is_array()) reject("\"QMP.capabilities\" is not an array");
    for (const auto& c : caps.get_array()) {
        if (!c.is_string()) reject("\"QMP.capabilities\" holds a non-string");
        g.capabilities.emplace_back(c.get_string());
    }
    return g;
}

std::optional<std::uint64_t> as_id(const json::value& v) {
    if (v.is_uint64()) return v.get_uint64();
    if (v.is_int64() && v.get_int64() >= 0) return static_cast<std::uint64_t>(v.get_int64());
    return std::nullopt;
}

reply parse_reply(const json::object& root) {
    reply r;
    if (root.contains("error")) {
        const auto& e = need_object(root, "", "error");
        r.error = command_error{need_string(e, "error", "class"), need_string(e, "error", "desc")};
    } else {
        r.value = need(root, "", "return");
    }
    const auto* id = root.if_contains("id");
    // QEMU answers a command it could not even parse with an id-less error: say what it was.
    if (!id && r.error) reject("error reply without an id: " + r.error->error_class + ": " + r.error->desc);
    if (!id) reject("reply without an id");
    auto n = as_id(*id);
    if (!n) reject("reply id " + excerpt_of(*id) + " is not one vmrt sends (a non-negative integer)");
    r.id = *n;
    return r;
}

event parse_event(const json::object& root) {
    event e;
    e.name = need_string(root, "", "event");
    if (root.contains("data")) e.data = need_object(root, "", "data");
    const auto& ts = need_object(root, "", "timestamp");
    e.seconds = need_int(ts, "timestamp", "seconds");
    e.microseconds = need_int(ts, "timestamp", "microseconds");
    return e;
}

// Which kind of message an object is, from its one distinguishing key.
enum class kind { greeting, reply, event };

kind kind_of(const json::object& o) {
    const bool is_greeting = o.contains("QMP");
    const bool is_return = o.contains("return");
    const bool is_error = o.contains("error");
    const bool is_event = o.contains("event");
    const int found = int(is_greeting) + int(is_return) + int(is_error) + int(is_event);
    if (found == 0) reject("neither a greeting, a reply nor an event");
    if (found > 1) reject("ambiguous: more than one of \"QMP\", \"return\", \"error\", \"event\"");
    if (is_greeting) return kind::greeting;
    return is_event ? kind::event : kind::reply;
}

message parse_message(const json::object& o) {
    switch (kind_of(o)) {
    case kind::greeting:
        return parse_greeting(o);
    case kind::reply:
        return parse_reply(o);
    case kind::event:
        return parse_event(o);
    }
    reject("unreachable message kind");
}

}  // namespace

std::variant<message, protocol_fault> classify(const json::value& v) {
    if (!v.is_object()) return protocol_fault{"QMP message is not a JSON object: " + excerpt_of(v)};
    try {
        return parse_message(v.get_object());
    } catch (malformed& m) {
        return protocol_fault{"malformed QMP message (" + m.what + "): " + excerpt_of(v)};
    }
}

std::string encode_command(std::string_view name, const json::object& arguments, std::uint64_t id) {
    json::object command;
    command["execute"] = name;
    if (!arguments.empty()) command["arguments"] = arguments;
    command["id"] = id;
    // QEMU does not need the newline; it keeps a captured transcript readable.
    return json::serialize(command) + "\n";
}

// ---- decoder ----

namespace {
json::parse_options strict_options() {
    json::parse_options opts;
    opts.max_depth = max_nesting;
    return opts;
}
}  // namespace

decoder::decoder(std::size_t max_message_bytes)
    : max_message_bytes_(max_message_bytes),
      parser_(std::make_unique<json::stream_parser>(json::storage_ptr(), strict_options())) {}

decoder::decoder(decoder&&) noexcept = default;
decoder& decoder::operator=(decoder&&) noexcept = default;
decoder::~decoder() = default;

std::optional<protocol_fault> decoder::fail(std::string why) {
    fault_ = protocol_fault{std::move(why)};
    // The parser may hold up to a whole message; a broken stream does not need it any more.
    parser_->reset();
    return fault_;
}

void decoder::remember_excerpt(std::string_view piece) {
    if (excerpt_.empty()) {
        // The blank lines between messages are not part of the next one.
        auto first = piece.find_first_not_of(" \t\r\n");
        piece = first == std::string_view::npos ? std::string_view{} : piece.substr(first);
    }
    auto room = excerpt_bytes + 1 - std::min(excerpt_.size(), excerpt_bytes + 1);
    excerpt_.append(piece.substr(0, room));
}

std::optional<protocol_fault> decoder::feed(std::string_view bytes, std::vector<message>& out) {
    if (fault_) return fault_;
    while (!bytes.empty()) {
        // Never hand the parser more than one byte beyond the limit: that byte proves the message
        // too long, and memory stays bounded however much the peer sends in one go.
        auto piece = bytes.substr(0, max_message_bytes_ - current_bytes_ + 1);
        boost::system::error_code ec;
        auto used = parser_->write_some(piece.data(), piece.size(), ec);
        // On an error `used` is the offset of the offending byte: quote up to and including it
        // (and no further, so that the message does not depend on how the input was split).
        remember_excerpt(piece.substr(0, ec ? used + 1 : used));
        current_bytes_ += used;
        bytes.remove_prefix(used);
        if (ec)
            return fail("invalid JSON from the QMP peer (" + ec.message() + ") in: " + printable(excerpt_));
        if (current_bytes_ > max_message_bytes_)
            return fail("QMP message longer than " + std::to_string(max_message_bytes_) +
                        " bytes, starting: " + printable(excerpt_));
        if (!parser_->done()) {
            if (used == 0) return fail("the JSON parser made no progress (a vmrt bug)");
            continue;
        }
        auto value = parser_->release();
        parser_->reset();
        current_bytes_ = 0;
        excerpt_.clear();
        auto classified = classify(value);
        if (auto* f = std::get_if<protocol_fault>(&classified)) return fail(std::move(f->message));
        out.push_back(std::move(std::get<message>(classified)));
    }
    return std::nullopt;
}

// ---- session ----

session::session(std::size_t max_message_bytes) : decoder_(max_message_bytes) {}

received session::receive(std::string_view bytes) {
    received out;
    if (fault_) {
        out.fault = fault_;
        return out;
    }
    std::vector<message> parsed;
    auto framing_fault = decoder_.feed(bytes, parsed);
    // Messages that precede a framing fault are valid and are delivered first.
    for (auto& m : parsed) {
        if (auto f = accept(std::move(m), out)) {
            fail(std::move(*f));
            out.fault = fault_;
            return out;
        }
    }
    if (framing_fault) {
        fail(std::move(*framing_fault));
        out.fault = fault_;
    }
    return out;
}

std::string session::take_output() { return std::exchange(output_, std::string{}); }

outgoing_command session::execute(std::string_view name, const json::object& arguments) {
    if (phase_ != phase::ready)
        throw error(make_error_code(errc::invalid_state),
                    {.message = "QMP command \"" + std::string(name) + "\" issued while the session is " +
                                std::string(to_string(phase_))});
    outgoing_command cmd{next_id_++, {}};
    cmd.wire = encode_command(name, arguments, cmd.id);
    outstanding_.insert(cmd.id);
    return cmd;
}

std::optional<protocol_fault> session::accept(message&& m, received& out) {
    if (auto* g = std::get_if<greeting>(&m)) return accept_greeting(std::move(*g));
    if (phase_ == phase::awaiting_greeting)
        return protocol_fault{"QMP peer sent a message before its greeting"};
    if (auto* r = std::get_if<reply>(&m)) return accept_reply(std::move(*r), out);
    out.messages.emplace_back(std::move(std::get<event>(m)));
    return std::nullopt;
}

std::optional<protocol_fault> session::accept_greeting(greeting&& g) {
    if (phase_ != phase::awaiting_greeting) return protocol_fault{"QMP peer sent a second greeting"};
    greeting_ = std::move(g);
    // The handshake's one command is sent by the session itself, with an id of its own, so
    // that its reply cannot be mistaken for the reply to a caller's command.
    capabilities_id_ = next_id_++;
    output_ += encode_command("qmp_capabilities", {}, capabilities_id_);
    phase_ = phase::negotiating;
    return std::nullopt;
}

std::optional<protocol_fault> session::accept_reply(reply&& r, received& out) {
    if (phase_ == phase::negotiating && r.id == capabilities_id_) return accept_capabilities_reply(r);
    if (outstanding_.erase(r.id) == 0)
        return protocol_fault{"QMP reply to id " + std::to_string(r.id) + ", which has no command waiting"};
    out.messages.emplace_back(std::move(r));
    return std::nullopt;
}

std::optional<protocol_fault> session::accept_capabilities_reply(const reply& r) {
    if (r.error)
        return protocol_fault{"QEMU refused qmp_capabilities: " + r.error->error_class + ": " +
                              r.error->desc};
    phase_ = phase::ready;
    return std::nullopt;
}

void session::fail(protocol_fault f) {
    fault_ = std::move(f);
    phase_ = phase::failed;
    outstanding_.clear();
}

std::string_view to_string(session::phase p) noexcept {
    switch (p) {
    case session::phase::awaiting_greeting:
        return "awaiting the greeting";
    case session::phase::negotiating:
        return "negotiating capabilities";
    case session::phase::ready:
        return "ready";
    case session::phase::failed:
        return "failed";
    }
    return "unknown";
}

}  // namespace vmrt::hv::qmp
