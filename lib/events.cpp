#include <vmrt/events.hpp>

#include <boost/json.hpp>

#include <ctime>

namespace vmrt {
namespace {

std::string iso8601(std::chrono::system_clock::time_point t) {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
    std::time_t secs = static_cast<std::time_t>(ms / 1000);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[40];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    char out[48];
    std::snprintf(out, sizeof out, "%s.%03dZ", buf, static_cast<int>(ms % 1000));
    return out;
}

boost::json::value exit_json(const exit_status& s) {
    if (s.signaled) return {{"signal", s.signal}};
    return {{"code", s.code}};
}

}  // namespace

std::string format_event_line(const vm_event& e) {
    std::string line = iso8601(e.time) + " " + e.vm + " ";
    if (e.kind == event_kind::transfer && e.transfer) {
        const auto& t = *e.transfer;
        line += "transfer: " + t.what + " " + t.object.substr(0, 19) + " ";
        line +=
            t.cached ? "already there" : std::to_string(t.done) + "/" + std::to_string(t.total) + " bytes";
        if (t.finished && !t.cached) line += " (done)";
        return line;
    }
    line += e.kind == event_kind::note ? "note" : to_string(e.state);
    if (!e.reason.empty()) line += ": " + e.reason;
    return line;
}

std::string format_event_json(const vm_event& e) {
    boost::json::object o;
    o["seq"] = e.sequence;
    o["time"] = iso8601(e.time);
    o["vm"] = e.vm;
    o["kind"] = e.kind == event_kind::note ? "note" : e.kind == event_kind::transfer ? "transfer" : "state";
    if (e.kind == event_kind::transfer && e.transfer) {
        o["object"] = e.transfer->object;
        o["what"] = e.transfer->what;
        o["done"] = e.transfer->done;
        o["total"] = e.transfer->total;
        o["finished"] = e.transfer->finished;
        o["cached"] = e.transfer->cached;
        return boost::json::serialize(o);
    }
    o["state"] = state_name(e.state);
    if (auto* r = std::get_if<state::ready>(&e.state)) {
        if (r->ip && !r->ip->empty())
            o["ip"] = *r->ip;
        else
            o["ip"] = nullptr;
    } else if (auto* st = std::get_if<state::stopped>(&e.state)) {
        o["outcome"] = to_string(st->outcome);
        if (st->status) o["exit"] = exit_json(*st->status);
    } else if (auto* f = std::get_if<state::failed>(&e.state)) {
        o["failure"] = f->reason;
        if (f->status) o["exit"] = exit_json(*f->status);
        boost::json::array lines;
        for (auto& l : f->serial_tail) lines.emplace_back(l);
        o["serial_tail"] = std::move(lines);
    }
    o["reason"] = e.reason;
    return boost::json::serialize(o);
}

}  // namespace vmrt
