// Fuzz target: the QMP decoder and session, fed arbitrary bytes from a peer in arbitrary splits.
// Invariants: no crash, no exception, no hang; the same bytes give the same messages and the
// same fault however they are split; every fault says something; a session that faulted stays
// failed; replies only ever complete ids that were issued and not yet answered.
#include "hv/qmp_codec.hpp"

#include <cstdint>
#include <cstdlib>
#include <set>
#include <string_view>
#include <vector>

namespace {

namespace qmp = vmrt::hv::qmp;

// A small limit, so that the over-long-message path is reached by ordinary inputs.
constexpr std::size_t limit = 4096;

void check_decoder(std::string_view text, std::size_t chunk) {
    qmp::decoder whole(limit), pieces(limit);
    std::vector<qmp::message> all, split;
    auto whole_fault = whole.feed(text, all);
    std::optional<qmp::protocol_fault> split_fault;
    for (std::size_t at = 0; at < text.size() && !split_fault; at += chunk)
        split_fault = pieces.feed(text.substr(at, chunk), split);
    // The fault's text may quote a byte more or less (a split UTF-8 sequence is judged when its
    // next byte arrives), but whether and after which message the stream broke must not change.
    if (all != split || whole_fault.has_value() != split_fault.has_value()) std::abort();
    if (whole_fault && whole_fault->message.empty()) std::abort();
    if (whole.pending_bytes() > limit + 1) std::abort();
}

// Plays a client that keeps two commands in flight whenever the session is ready.
void check_session(std::string_view text, std::size_t chunk) {
    qmp::session s(limit);
    std::set<std::uint64_t> issued;
    bool failed = false;
    for (std::size_t at = 0; at < text.size(); at += chunk) {
        auto r = s.receive(text.substr(at, chunk));
        if (failed && (!r.fault || !r.messages.empty())) std::abort();
        for (auto& m : r.messages) {
            if (auto* rep = std::get_if<qmp::reply>(&m))
                if (issued.erase(rep->id) != 1) std::abort();
        }
        if (r.fault) {
            if (r.fault->message.empty() || s.current_phase() != qmp::session::phase::failed) std::abort();
            failed = true;
            continue;
        }
        s.take_output();
        while (s.current_phase() == qmp::session::phase::ready && issued.size() < 2)
            issued.insert(s.execute("query-status").id);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    // The first byte chooses the split size, the rest is what the peer sent.
    const std::size_t chunk = 1 + data[0] % 97;
    std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
    check_decoder(text, chunk);
    check_session(text, chunk);
    return 0;
}
