// Cloud Hypervisor's event-monitor stream (reference §7): pretty JSON objects followed by a blank
// line, possibly cut short when CH's non-blocking writes hit a full pipe.
#include "hv/ch_events.hpp"

#include <boost/test/unit_test.hpp>

namespace ch = vmrt::hv::ch;

namespace {

std::string event_text(const std::string& source, const std::string& event, const std::string& props = "null",
                       int secs = 1) {
    return "{\n  \"timestamp\": {\n    \"secs\": " + std::to_string(secs) +
           ",\n    \"nanos\": 250\n  },\n  \"source\": \"" + source + "\",\n  \"event\": \"" + event +
           "\",\n  \"properties\": " + props + "\n}\n\n";
}

}  // namespace

BOOST_AUTO_TEST_SUITE(ch_events_test)

BOOST_AUTO_TEST_CASE(events_are_parsed_however_the_stream_is_split) {
    const std::string stream = event_text("vmm", "starting") + event_text("vm", "booted") +
                               event_text("virtio-device", "activated", "{\n    \"id\": \"_disk0\"\n  }", 2);
    for (std::size_t chunk = 1; chunk <= stream.size(); ++chunk) {
        ch::event_stream_parser p;
        std::vector<ch::monitor_event> all;
        for (std::size_t at = 0; at < stream.size(); at += chunk)
            for (auto& ev : p.feed(std::string_view(stream).substr(at, chunk))) all.push_back(ev);
        BOOST_TEST_REQUIRE(all.size() == 3u, "chunk " << chunk);
        BOOST_TEST(all[0].name() == "vmm/starting");
        BOOST_TEST(all[1].name() == "vm/booted");
        BOOST_TEST(all[2].name() == "virtio-device/activated");
        BOOST_TEST(all[2].properties.at("id") == "_disk0");
        BOOST_TEST(all[2].since_start.count() == 2'000'000'250);
        BOOST_TEST(p.discarded() == 0u);
    }
}

BOOST_AUTO_TEST_CASE(an_event_cut_short_is_skipped_and_the_next_one_is_read) {
    // A full pipe cut the first event; CH's next write starts a new object on a new line.
    const auto first = event_text("vm", "pausing");
    const std::string stream = first.substr(0, 40) + "\n" + event_text("vm", "paused");
    ch::event_stream_parser p;
    auto events = p.feed(stream);
    BOOST_TEST_REQUIRE(events.size() == 1u);
    BOOST_TEST(events[0].name() == "vm/paused");
    BOOST_TEST(p.discarded() == 1u);
}

BOOST_AUTO_TEST_CASE(noise_and_objects_that_are_not_events_are_counted_and_dropped) {
    ch::event_stream_parser p;
    auto events = p.feed("garbage line\n{\"source\": 3}\n\n[1,2]\n" + event_text("vm", "shutdown"));
    BOOST_TEST_REQUIRE(events.size() == 1u);
    BOOST_TEST(events[0].name() == "vm/shutdown");
    BOOST_TEST(p.discarded() >= 2u);
}

BOOST_AUTO_TEST_CASE(an_endless_object_does_not_grow_the_buffer_without_bound) {
    ch::event_stream_parser p;
    const std::string open = "{\"source\": \"vm\", \"event\": \"x\", \"properties\": {\"id\": \"";
    p.feed(open);
    for (int i = 0; i < 200; ++i) BOOST_TEST(p.feed(std::string(1024, 'a')).empty());
    BOOST_TEST(p.discarded() >= 1u);
    // And it recovers for the next real event.
    auto events = p.feed("\n" + event_text("vm", "resumed"));
    BOOST_TEST_REQUIRE(events.size() == 1u);
    BOOST_TEST(events[0].name() == "vm/resumed");
}

BOOST_AUTO_TEST_SUITE_END()
