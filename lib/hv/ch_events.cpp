#include "hv/ch_events.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/stream_parser.hpp>
#include <boost/json/value.hpp>

namespace vmrt::hv::ch {

namespace json = boost::json;

namespace {

bool is_space(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

// The event carried by one parsed object, or false if it is not shaped like one.
bool to_event(const json::value& v, monitor_event& ev) {
    const auto* o = v.if_object();
    if (!o) return false;
    const auto* source = o->if_contains("source");
    const auto* event = o->if_contains("event");
    if (!source || !source->is_string() || !event || !event->is_string()) return false;
    ev.source = source->as_string();
    ev.event = event->as_string();
    if (const auto* ts = o->if_contains("timestamp"); ts && ts->is_object()) {
        const auto* secs = ts->as_object().if_contains("secs");
        const auto* nanos = ts->as_object().if_contains("nanos");
        if (secs && secs->is_uint64()) ev.since_start += std::chrono::seconds(secs->as_uint64());
        if (secs && secs->is_int64() && secs->as_int64() >= 0)
            ev.since_start += std::chrono::seconds(secs->as_int64());
        if (nanos && nanos->is_int64() && nanos->as_int64() >= 0)
            ev.since_start += std::chrono::nanoseconds(nanos->as_int64());
    }
    if (const auto* props = o->if_contains("properties"); props && props->is_object())
        for (const auto& [k, value] : props->as_object())
            if (value.is_string()) ev.properties.emplace(std::string(k), std::string(value.as_string()));
    return true;
}

}  // namespace

std::vector<monitor_event> event_stream_parser::feed(std::string_view bytes) {
    buffer_.append(bytes);
    std::vector<monitor_event> out;
    while (take_one(out)) {
    }
    return out;
}

// Parses the first complete object in the buffer. Returns false when more bytes are needed.
bool event_stream_parser::take_one(std::vector<monitor_event>& out) {
    std::size_t start = 0;
    while (start < buffer_.size() && is_space(buffer_[start])) ++start;
    buffer_.erase(0, start);
    if (buffer_.empty()) return false;
    if (buffer_.front() != '{') {  // the tail of a truncated object, or noise
        skip_to_next_object();
        return !buffer_.empty();
    }
    json::stream_parser parser;
    boost::system::error_code ec;
    const auto used = parser.write_some(buffer_.data(), buffer_.size(), ec);
    if (!ec && parser.done()) {
        monitor_event ev;
        if (to_event(parser.release(), ev))
            out.push_back(std::move(ev));
        else
            ++discarded_;
        buffer_.erase(0, used);
        return true;
    }
    if (ec) {  // garbled (e.g. an object cut short, then the next one started inside it)
        skip_to_next_object();
        return !buffer_.empty();
    }
    // Incomplete. A newline followed by '{' inside the incomplete text means the object was cut
    // short and a new one began: CH's objects hold '{' at the start of a line only at their start.
    if (auto next = buffer_.find("\n{"); next != std::string::npos) {
        ++discarded_;
        buffer_.erase(0, next + 1);
        return true;
    }
    if (buffer_.size() > max_event_bytes) {
        ++discarded_;
        buffer_.clear();
    }
    return false;
}

void event_stream_parser::skip_to_next_object() {
    ++discarded_;
    auto next = buffer_.find("\n{");
    if (next == std::string::npos)
        buffer_.clear();
    else
        buffer_.erase(0, next + 1);
}

}  // namespace vmrt::hv::ch
