#include <vmrt/vm_state.hpp>

#include <cstring>

namespace vmrt {

std::string exit_status::to_string() const {
    if (!signaled) return "exit code " + std::to_string(code);
    const char* abbrev = sigabbrev_np(signal);
    std::string text = "killed by signal " + std::to_string(signal);
    if (abbrev) text += std::string(" (SIG") + abbrev + ")";
    return text;
}

std::string_view to_string(stop_outcome o) noexcept {
    switch (o) {
    case stop_outcome::clean:
        return "clean";
    case stop_outcome::forced:
        return "forced";
    case stop_outcome::crashed:
        return "crashed";
    case stop_outcome::already_stopped:
        return "already_stopped";
    }
    return "unknown";
}

std::string_view state_name(const vm_state& s) noexcept {
    struct namer {
        std::string_view operator()(const state::starting&) const { return "starting"; }
        std::string_view operator()(const state::running&) const { return "running"; }
        std::string_view operator()(const state::ready&) const { return "ready"; }
        std::string_view operator()(const state::paused&) const { return "paused"; }
        std::string_view operator()(const state::stopping&) const { return "stopping"; }
        std::string_view operator()(const state::stopped&) const { return "stopped"; }
        std::string_view operator()(const state::failed&) const { return "failed"; }
    };
    return std::visit(namer{}, s);
}

std::string to_string(const vm_state& s) {
    std::string text(state_name(s));
    if (auto* r = std::get_if<state::ready>(&s)) {
        text += " (" + (r->ip && !r->ip->empty() ? *r->ip : std::string("no address")) + ")";
    } else if (auto* st = std::get_if<state::stopped>(&s)) {
        text += " (" + std::string(to_string(st->outcome));
        if (st->status) text += ", " + st->status->to_string();
        text += ")";
    } else if (auto* f = std::get_if<state::failed>(&s)) {
        text += ": " + f->reason;
        if (f->status) text += " (" + f->status->to_string() + ")";
    }
    return text;
}

}  // namespace vmrt
