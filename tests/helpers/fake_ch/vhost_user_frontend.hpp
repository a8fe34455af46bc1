// The vhost-user frontend side of the double's virtio-fs devices: what Cloud Hypervisor does with
// the `socket` of each `--fs` / `fs` entry (shared/reference/cloud-hypervisor.md §8 "CH side").
//
// CH connects when the VM boots (or at vm.add-fs), not at vm.create, retrying every 100 ms for up
// to 60 s and blocking its whole API meanwhile (#8052): a plain blocking loop is faithful. Once
// connected, the double sends VHOST_USER_GET_FEATURES and reads the reply, which proves that a
// real vhost-user backend (virtiofsd) is behind the socket, then holds the connection while the
// VM runs. Closing it is what ends virtiofsd (§8 Lifecycle), so a reboot (close + reconnect) needs
// a restarted daemon, as with CH.
#pragma once

#include <boost/json.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace fake_ch {

/// One connected vhost-user backend. Closes the connection when destroyed.
class vhost_user_connection {
public:
    /// Connects to `socket` (retrying every 100 ms for at most `patience`) and exchanges
    /// GET_FEATURES (the reply must come within `reply_timeout`). On failure returns nothing and
    /// sets `error` to CH-like text.
    static std::optional<vhost_user_connection> open(const std::string& socket,
                                                     std::chrono::milliseconds patience,
                                                     std::chrono::milliseconds reply_timeout,
                                                     std::string& error);
    vhost_user_connection(vhost_user_connection&& o) noexcept;
    vhost_user_connection& operator=(vhost_user_connection&& o) noexcept;
    vhost_user_connection(const vhost_user_connection&) = delete;
    vhost_user_connection& operator=(const vhost_user_connection&) = delete;
    ~vhost_user_connection();

    std::uint64_t features() const { return features_; }

private:
    vhost_user_connection(int fd, std::uint64_t features) : fd_(fd), features_(features) {}
    int fd_ = -1;
    std::uint64_t features_ = 0;
};

/// The connections of a VM's virtio-fs devices, by device id. All-or-nothing per call: a device
/// list that cannot be connected completely leaves none of its devices connected.
class fs_frontends {
public:
    /// patience: CH's 60 s, or VMRT_FAKE_CH_VHOST_USER_WAIT_MS for tests.
    fs_frontends();

    /// Connects every device of `devices` (objects with "socket" and "id"). Blocks. Returns the
    /// error chain's root text when one of them cannot be reached.
    std::optional<std::string> connect(const boost::json::array& devices);
    /// Disconnects one device ("" : all of them).
    void disconnect(const std::string& id = {});
    /// Follows the VM's events: every way the VM stops (shutdown, deleted, rebooting) closes all
    /// connections, device-removed closes that device's (§7 events).
    void on_event(const std::string& source, const std::string& event, const boost::json::value& properties);

    std::size_t connected() const { return connections_.size(); }

private:
    std::chrono::milliseconds patience_;
    std::map<std::string, vhost_user_connection> connections_;
};

}  // namespace fake_ch
