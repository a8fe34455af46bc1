#include "fake_ch/process_state.hpp"

#include <linux/if_tun.h>
#include <net/if.h>
#include <sys/ioctl.h>

#include <cstdlib>

namespace fake_ch {

fake_process* proc = nullptr;

std::string trim(std::string s) {
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.pop_back();
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.erase(0, 1);
    return s;
}

std::string tap_name(int fd) {
    ifreq ifr{};
    if (::ioctl(fd, TUNGETIFF, &ifr) != 0) return {};
    return ifr.ifr_name;
}

faults read_faults() {
    faults f;
    const char* env = std::getenv("VMRT_FAKE_CH_FAULTS");
    std::string spec = env ? env : "";
    std::size_t at = 0;
    while (at < spec.size()) {
        auto end = std::min(spec.find(',', at), spec.size());
        auto item = spec.substr(at, end - at);
        at = end + 1;
        auto eq = item.find('=');
        if (eq == std::string::npos) continue;
        auto key = item.substr(0, eq), value = item.substr(eq + 1);
        if (key == "crash-on") f.crash_on = value;
        if (key == "crash-mid-reply") f.crash_mid_reply = value;
        if (key == "malformed-body") f.malformed_body = value;
        if (key == "late-socket") f.late_socket_ms = std::atoi(value.c_str());
        if (key == "slow") {
            auto colon = value.find(':');
            if (colon != std::string::npos)
                f.slow_ms[value.substr(0, colon)] = std::atoi(value.c_str() + colon + 1);
        }
    }
    return f;
}

// ---- hybrid vsock (§4): the device lives as long as the VM object ----

void vsock_follow(const std::string& source, const std::string& event) {
    if (source != "vm" || !proc->vsock) return;
    if (event == "shutdown" || event == "deleted" || event == "rebooting") {
        proc->vsock->stop();           // the socket file goes with the device
    } else if (event == "rebooted") {  // CH re-creates the VM, and the device with it
        const auto& config = proc->vmm->config();
        if (auto* v = config ? config->if_contains("vsock") : nullptr; v && v->is_object())
            if (auto failed = proc->vsock->start(v->as_object()))
                std::fprintf(stderr, "Error: %s\n", failed->c_str());
    } else if (event == "device-removed") {
        const auto& config = proc->vmm->config();
        if (!config || !config->contains("vsock")) proc->vsock->stop();
    }
}

}  // namespace fake_ch
