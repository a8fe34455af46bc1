// The sans-I/O QMP core: framing, classification, handshake and reply matching. Transcripts are
// the ones QEMU 7.2 produced on this project's machines (real-guests.md §3, and `quit` whose
// SHUTDOWN event arrives before its return).
#include "hv/qmp_codec.hpp"

#include <vmrt/error.hpp>

#include <boost/json/parse.hpp>
#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

namespace qmp = vmrt::hv::qmp;
namespace json = boost::json;

namespace {

const std::string greeting_line =
    R"({"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian 1:7.2+dfsg-7+deb12u18+b3"}, "capabilities": ["oob"]}})"
    "\r\n";

// A session that has completed the handshake (its capabilities command had id 1).
qmp::session ready_session() {
    qmp::session s;
    auto r = s.receive(greeting_line);
    BOOST_REQUIRE(!r.fault);
    BOOST_REQUIRE(s.take_output() == "{\"execute\":\"qmp_capabilities\",\"id\":1}\n");
    r = s.receive("{\"return\": {}, \"id\": 1}\r\n");
    BOOST_REQUIRE(!r.fault);
    BOOST_REQUIRE((s.current_phase() == qmp::session::phase::ready));
    return s;
}

std::vector<qmp::message> decode_all(std::string_view bytes, std::optional<qmp::protocol_fault>& fault,
                                     std::size_t limit = qmp::default_max_message_bytes) {
    qmp::decoder d(limit);
    std::vector<qmp::message> out;
    fault = d.feed(bytes, out);
    return out;
}

// The fault message a single bad message gives, or "" if it is accepted.
std::string fault_of(std::string_view bytes) {
    std::optional<qmp::protocol_fault> fault;
    decode_all(bytes, fault);
    return fault ? fault->message : std::string{};
}

const qmp::event& as_event(const std::variant<qmp::reply, qmp::event>& m) { return std::get<qmp::event>(m); }
const qmp::reply& as_reply(const std::variant<qmp::reply, qmp::event>& m) { return std::get<qmp::reply>(m); }

}  // namespace

BOOST_AUTO_TEST_SUITE(qmp_codec_test)

BOOST_AUTO_TEST_CASE(greeting_as_observed_and_handshake) {
    qmp::session s;
    BOOST_TEST((s.current_phase() == qmp::session::phase::awaiting_greeting));
    BOOST_TEST(s.take_output().empty());  // nothing is sent before the greeting
    auto r = s.receive(greeting_line);
    BOOST_TEST(!r.fault);
    BOOST_TEST(r.messages.empty());
    BOOST_TEST((s.current_phase() == qmp::session::phase::negotiating));
    BOOST_REQUIRE(s.peer_greeting());
    BOOST_TEST(s.peer_greeting()->major == 7);
    BOOST_TEST(s.peer_greeting()->minor == 2);
    BOOST_TEST(s.peer_greeting()->micro == 22);
    BOOST_TEST(s.peer_greeting()->package == "Debian 1:7.2+dfsg-7+deb12u18+b3");
    BOOST_TEST(s.peer_greeting()->capabilities == std::vector<std::string>{"oob"});
    BOOST_TEST(s.take_output() == "{\"execute\":\"qmp_capabilities\",\"id\":1}\n");
    BOOST_TEST(s.take_output().empty());  // handed out once
    // Commands wait for the end of the handshake.
    BOOST_CHECK_THROW(s.execute("query-status"), vmrt::error);
    r = s.receive("{\"return\": {}, \"id\": 1}\r\n");
    BOOST_TEST(!r.fault);
    BOOST_TEST(r.messages.empty());  // the handshake's reply is the session's own
    BOOST_TEST((s.current_phase() == qmp::session::phase::ready));
}

BOOST_AUTO_TEST_CASE(execute_before_ready_is_invalid_state) {
    qmp::session s;
    try {
        s.execute("query-status");
        BOOST_FAIL("execute before the greeting must throw");
    } catch (const vmrt::error& e) {
        BOOST_TEST((e.code() == vmrt::errc::invalid_state));
        BOOST_TEST(e.diag().message.find("query-status") != std::string::npos);
    }
}

BOOST_AUTO_TEST_CASE(commands_are_encoded_with_increasing_ids) {
    auto s = ready_session();
    auto a = s.execute("query-status");
    json::object args;
    args["device"] = "virtio0";
    args["force"] = true;
    auto b = s.execute("eject", args);
    BOOST_TEST(a.id == 2u);
    BOOST_TEST(b.id == 3u);
    BOOST_TEST(a.wire == "{\"execute\":\"query-status\",\"id\":2}\n");
    BOOST_TEST(b.wire ==
               "{\"execute\":\"eject\",\"arguments\":{\"device\":\"virtio0\",\"force\":true},\"id\":3}\n");
    BOOST_TEST(s.outstanding().size() == 2u);
    // Names are escaped, so no name can inject a second member or command.
    auto odd = qmp::encode_command("a\"}\n{\"execute\":\"quit", {}, 9);
    auto parsed = json::parse(odd);
    BOOST_TEST(parsed.as_object().size() == 2u);
    BOOST_TEST(parsed.as_object().at("execute").as_string() == "a\"}\n{\"execute\":\"quit");
}

BOOST_AUTO_TEST_CASE(events_interleaved_before_replies) {
    auto s = ready_session();
    auto stop = s.execute("stop");
    auto r = s.receive(
        "{\"timestamp\": {\"seconds\": 1795757853, \"microseconds\": 158804}, \"event\": \"STOP\"}\r\n"
        "{\"return\": {}, \"id\": 2}\r\n");
    BOOST_TEST(!r.fault);
    BOOST_REQUIRE(r.messages.size() == 2u);
    BOOST_TEST(as_event(r.messages[0]).name == "STOP");
    BOOST_TEST(as_event(r.messages[0]).data.empty());
    BOOST_TEST(as_event(r.messages[0]).seconds == 1795757853);
    BOOST_TEST(as_event(r.messages[0]).microseconds == 158804);
    BOOST_TEST(as_reply(r.messages[1]).id == stop.id);
    BOOST_TEST(as_reply(r.messages[1]).ok());
    BOOST_TEST(as_reply(r.messages[1]).value == json::value(json::object{}));
    BOOST_TEST(s.outstanding().empty());

    // quit: SHUTDOWN{guest,reason} comes first, then the return, then QEMU closes.
    auto quit = s.execute("quit");
    r = s.receive(
        "{\"timestamp\": {\"seconds\": 1795757853, \"microseconds\": 158804}, \"event\": \"SHUTDOWN\", "
        "\"data\": {\"guest\": false, \"reason\": \"host-qmp-quit\"}}\r\n{\"return\": {}, \"id\": 3}\r\n");
    BOOST_REQUIRE(r.messages.size() == 2u);
    BOOST_TEST(as_event(r.messages[0]).name == "SHUTDOWN");
    BOOST_TEST(as_event(r.messages[0]).data.at("guest") == json::value(false));
    BOOST_TEST(as_event(r.messages[0]).data.at("reason") == json::value("host-qmp-quit"));
    BOOST_TEST(as_reply(r.messages[1]).id == quit.id);
}

BOOST_AUTO_TEST_CASE(replies_out_of_order_are_matched_by_id) {
    auto s = ready_session();
    auto a = s.execute("query-status");
    auto b = s.execute("query-version");
    auto r =
        s.receive("{\"return\": {\"qemu\": {\"micro\": 22, \"minor\": 2, \"major\": 7}, \"package\": \"x\"}, "
                  "\"id\": 3}\r\n{\"return\": {\"status\": \"running\", \"singlestep\": false, \"running\": "
                  "true}, \"id\": 2}\r\n");
    BOOST_TEST(!r.fault);
    BOOST_REQUIRE(r.messages.size() == 2u);
    BOOST_TEST(as_reply(r.messages[0]).id == b.id);
    BOOST_TEST(as_reply(r.messages[1]).id == a.id);
    BOOST_TEST(as_reply(r.messages[1]).value.at("status") == json::value("running"));
}

BOOST_AUTO_TEST_CASE(error_reply_is_a_command_failure_not_a_fault) {
    auto s = ready_session();
    auto cmd = s.execute("nope");
    auto r = s.receive(
        R"({"id": 2, "error": {"class": "CommandNotFound", "desc": "The command nope has not been found"}})"
        "\r\n");
    BOOST_TEST(!r.fault);
    BOOST_REQUIRE(r.messages.size() == 1u);
    const auto& reply = as_reply(r.messages[0]);
    BOOST_TEST(reply.id == cmd.id);
    BOOST_TEST(!reply.ok());
    BOOST_TEST(reply.error->error_class == "CommandNotFound");
    BOOST_TEST(reply.error->desc == "The command nope has not been found");
    // The session goes on.
    BOOST_TEST((s.current_phase() == qmp::session::phase::ready));
    auto next = s.execute("query-status");
    BOOST_TEST(next.id == 3u);
}

BOOST_AUTO_TEST_CASE(split_at_every_byte_boundary) {
    const std::string transcript =
        greeting_line + "{\"return\": {}, \"id\": 1}\r\n" +
        "{\"timestamp\": {\"seconds\": 1, \"microseconds\": 2}, \"event\": \"POWERDOWN\"}\r\n" +
        "{\"return\": {\"status\": \"running\", \"singlestep\": false, \"running\": true}, \"id\": 2}\r\n" +
        "{\"timestamp\": {\"seconds\": 3, \"microseconds\": 4}, \"event\": \"SHUTDOWN\", \"data\": "
        "{\"guest\": "
        "true, \"reason\": \"guest-shutdown\"}}\r\n";
    std::optional<qmp::protocol_fault> fault;
    auto whole = decode_all(transcript, fault);
    BOOST_REQUIRE(!fault);
    BOOST_REQUIRE(whole.size() == 5u);
    for (std::size_t cut = 0; cut <= transcript.size(); ++cut) {
        qmp::decoder d;
        std::vector<qmp::message> out;
        BOOST_REQUIRE(!d.feed(std::string_view(transcript).substr(0, cut), out));
        BOOST_REQUIRE(!d.feed(std::string_view(transcript).substr(cut), out));
        BOOST_REQUIRE((out == whole));
    }
    // One byte at a time through the full session, with the command issued once ready.
    qmp::session s;
    std::vector<std::variant<qmp::reply, qmp::event>> got;
    bool issued = false;
    for (char c : transcript) {
        auto r = s.receive(std::string_view(&c, 1));
        BOOST_REQUIRE(!r.fault);
        got.insert(got.end(), r.messages.begin(), r.messages.end());
        if (!issued && s.current_phase() == qmp::session::phase::ready) {
            BOOST_TEST(s.execute("query-status").id == 2u);
            issued = true;
        }
    }
    BOOST_REQUIRE(got.size() == 3u);
    BOOST_TEST(as_event(got[0]).name == "POWERDOWN");
    BOOST_TEST(as_reply(got[1]).id == 2u);
    BOOST_TEST(as_event(got[2]).data.at("reason") == json::value("guest-shutdown"));
}

BOOST_AUTO_TEST_CASE(several_messages_in_one_feed_and_no_line_breaks) {
    // QEMU ends lines with "\r\n", but nothing relies on it: back-to-back objects, bare '\n' and
    // blank lines all parse.
    std::optional<qmp::protocol_fault> fault;
    auto out = decode_all(
        "{\"return\": 1, \"id\": 5}{\"return\": 2, \"id\": 6}\n\n\r\n  {\"return\": 3, \"id\": 7}", fault);
    BOOST_TEST(!fault);
    BOOST_REQUIRE(out.size() == 3u);
    BOOST_TEST(std::get<qmp::reply>(out[2]).id == 7u);
    BOOST_TEST(std::get<qmp::reply>(out[2]).value == json::value(3));
}

BOOST_AUTO_TEST_CASE(pretty_printed_output_is_accepted) {
    // `-mon pretty=on`, as QEMU 7.2 prints it.
    const std::string pretty =
        "{\r\n    \"id\": 7,\r\n    \"error\": {\r\n        \"class\": \"GenericError\",\r\n"
        "        \"desc\": \"Parameter 'x' is unexpected\"\r\n    }\r\n}\r\n";
    std::optional<qmp::protocol_fault> fault;
    auto out = decode_all(pretty, fault);
    BOOST_TEST(!fault);
    BOOST_REQUIRE(out.size() == 1u);
    BOOST_TEST(std::get<qmp::reply>(out[0]).error->desc == "Parameter 'x' is unexpected");
}

BOOST_AUTO_TEST_CASE(malformed_json_is_a_fault_and_stays_one) {
    qmp::decoder d;
    std::vector<qmp::message> out;
    auto fault =
        d.feed("{\"return\": {}, \"id\": 1}\r\n{\"return\": {,}}\r\n{\"return\": {}, \"id\": 2}\r\n", out);
    BOOST_REQUIRE(fault);
    BOOST_TEST(fault->message.find("invalid JSON") != std::string::npos);
    BOOST_TEST(fault->message.find("{\"return\": {,") != std::string::npos);  // quotes what it saw
    BOOST_TEST(out.size() == 1u);                                             // what came before is kept
    // Sticky: the stream cannot be resynchronised.
    auto again = d.feed("{\"return\": {}, \"id\": 3}\r\n", out);
    BOOST_REQUIRE(again);
    BOOST_TEST(again->message == fault->message);
    BOOST_TEST(out.size() == 1u);
}

BOOST_AUTO_TEST_CASE(bad_messages_are_faults_that_say_why) {
    struct bad_case {
        std::string input;
        std::string expected;  // a piece of the fault's message
    };
    const std::vector<bad_case> cases = {
        {"[1, 2]\n", "not a JSON object"},
        {"\"text\"\n", "not a JSON object"},
        {"42\n", "not a JSON object"},
        {"null\n", "not a JSON object"},
        {"{}\n", "neither a greeting, a reply nor an event"},
        {"{\"foo\": 1}\n", "neither a greeting, a reply nor an event"},
        {"{\"return\": {}, \"error\": {\"class\": \"a\", \"desc\": \"b\"}, \"id\": 1}\n", "ambiguous"},
        {"{\"return\": {}, \"event\": \"STOP\", \"id\": 1}\n", "ambiguous"},
        {"{\"return\": {}}\n", "reply without an id"},
        {"{\"return\": {}, \"id\": \"abc\"}\n", "is not one vmrt sends"},
        {"{\"return\": {}, \"id\": -1}\n", "is not one vmrt sends"},
        {"{\"return\": {}, \"id\": 1.5}\n", "is not one vmrt sends"},
        {"{\"error\": {\"class\": \"GenericError\", \"desc\": \"QMP input member 'foo' is unexpected\"}}\n",
         "QMP input member 'foo' is unexpected"},
        {"{\"error\": \"boom\", \"id\": 1}\n", "\"error\" is not an object"},
        {"{\"error\": {\"desc\": \"x\"}, \"id\": 1}\n", "\"error.class\" is missing"},
        {"{\"error\": {\"class\": \"x\", \"desc\": 5}, \"id\": 1}\n", "\"error.desc\" is not a string"},
        {"{\"event\": 5, \"timestamp\": {\"seconds\": 1, \"microseconds\": 2}}\n",
         "\"event\" is not a string"},
        {"{\"event\": \"STOP\"}\n", "\"timestamp\" is missing"},
        {"{\"event\": \"STOP\", \"timestamp\": {\"seconds\": \"1\", \"microseconds\": 2}}\n",
         "\"timestamp.seconds\" is not an integer"},
        {"{\"event\": \"STOP\", \"data\": [], \"timestamp\": {\"seconds\": 1, \"microseconds\": 2}}\n",
         "\"data\" is not an object"},
        {"{\"QMP\": {}}\n", "\"QMP.version\" is missing"},
        {"{\"QMP\": {\"version\": {\"qemu\": {\"major\": 7, \"minor\": 2, \"micro\": 1.5}, \"package\": "
         "\"\"}, "
         "\"capabilities\": []}}\n",
         "\"QMP.version.qemu.micro\" is not an integer"},
        {"{\"QMP\": {\"version\": {\"qemu\": {\"major\": 7, \"minor\": 2, \"micro\": 1}, \"package\": \"\"}, "
         "\"capabilities\": [1]}}\n",
         "non-string"},
        {"{\"QMP\": {\"version\": {\"qemu\": {\"major\": 7, \"minor\": 2, \"micro\": 1}, \"package\": "
         "\"\"}}}\n",
         "\"QMP.capabilities\" is missing"},
        {"{\"return\": 1, \"id\": 1}}\n", "invalid JSON"},
        {"{\"return\": \"\xff\xfe\", \"id\": 1}\n", "invalid JSON"},
        {"{\"return\": 1, \"id\": 1, }\n", "invalid JSON"},
        {std::string(100, '[') + std::string(100, ']') + "\n", "invalid JSON"},  // too deep
    };
    for (const auto& c : cases) {
        auto message = fault_of(c.input);
        BOOST_TEST_INFO("input: " << c.input);
        BOOST_TEST(message.find(c.expected) != std::string::npos, "fault \"" << message << "\"");
    }
    // Fault messages are one printable line whatever the peer sent.
    auto message = fault_of("{\"a\":\r\n\x01}");
    BOOST_TEST(message.find("\\x01") != std::string::npos);
    BOOST_TEST(message.find_first_of("\r\n\x01") == std::string::npos);
    BOOST_TEST(fault_of("{\"x\": [1, ").empty());  // incomplete, not (yet) wrong
}

BOOST_AUTO_TEST_CASE(huge_message_is_a_fault_and_memory_stays_bounded) {
    qmp::decoder d(1024);
    std::vector<qmp::message> out;
    std::optional<qmp::protocol_fault> fault;
    BOOST_TEST(!d.feed("{\"return\": \"", out));
    for (int i = 0; i < 100 && !fault; ++i) {
        fault = d.feed(std::string(100, 'a'), out);
        BOOST_TEST(d.pending_bytes() <= 1025u);
    }
    BOOST_REQUIRE(fault);
    BOOST_TEST(fault->message.find("longer than 1024 bytes") != std::string::npos);

    // The default limit is 16 MiB: a 17 MiB string in one feed is refused, a 1 MiB one is not.
    std::string big = "{\"return\": \"" + std::string(17 * 1024 * 1024, 'x') + "\", \"id\": 1}\n";
    auto message = fault_of(big);
    BOOST_TEST(message.find("longer than 16777216 bytes") != std::string::npos);
    BOOST_TEST(message.size() < 400u);  // quotes only the start
    BOOST_TEST(fault_of("{\"return\": \"" + std::string(1024 * 1024, 'x') + "\", \"id\": 1}\n").empty());
}

BOOST_AUTO_TEST_CASE(session_protocol_faults) {
    {  // a reply before the greeting
        qmp::session s;
        auto r = s.receive("{\"return\": {}, \"id\": 1}\n");
        BOOST_REQUIRE(r.fault);
        BOOST_TEST(r.fault->message.find("before its greeting") != std::string::npos);
        BOOST_TEST((s.current_phase() == qmp::session::phase::failed));
    }
    {  // a second greeting
        auto s = ready_session();
        auto r = s.receive(greeting_line);
        BOOST_REQUIRE(r.fault);
        BOOST_TEST(r.fault->message.find("second greeting") != std::string::npos);
    }
    {  // capabilities refused
        qmp::session s;
        s.receive(greeting_line);
        auto r = s.receive("{\"error\": {\"class\": \"GenericError\", \"desc\": \"no\"}, \"id\": 1}\n");
        BOOST_REQUIRE(r.fault);
        BOOST_TEST(r.fault->message == "QEMU refused qmp_capabilities: GenericError: no");
    }
    {  // a reply to an id never sent, and a second reply to the same id
        auto s = ready_session();
        auto cmd = s.execute("query-status");
        auto r = s.receive("{\"return\": {}, \"id\": 2}\n{\"return\": {}, \"id\": 2}\n");
        BOOST_REQUIRE(r.fault);
        BOOST_REQUIRE(r.messages.size() == 1u);  // the first one was fine
        BOOST_TEST(as_reply(r.messages[0]).id == cmd.id);
        BOOST_TEST(r.fault->message.find("id 2, which has no command waiting") != std::string::npos);
        // Failed for good.
        auto again =
            s.receive("{\"timestamp\": {\"seconds\": 1, \"microseconds\": 2}, \"event\": \"STOP\"}\n");
        BOOST_TEST(again.messages.empty());
        BOOST_REQUIRE(again.fault);
        BOOST_CHECK_THROW(s.execute("query-status"), vmrt::error);
    }
    {  // the reply to the capabilities command cannot be sent twice either
        auto s = ready_session();
        auto r = s.receive("{\"return\": {}, \"id\": 1}\n");
        BOOST_REQUIRE(r.fault);
    }
}

BOOST_AUTO_TEST_SUITE_END()
