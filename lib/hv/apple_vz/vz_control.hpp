// The control channel of an apple-vz VM (the spec's "control_channel"): a virtio console port named
// "org.vmrt.control" whose attachment is a VZFileHandleSerialPortAttachment on one end of a stream
// socket pair (vz_plan.hpp, control_port). The host side is what QEMU's is: a Unix socket
// `<run_dir>/control.sock` (vm_info::control_socket) that accepts one client at a time; the relay
// copies bytes between that client and the VM's end of the pair, both ways, until the client leaves,
// then accepts the next. The port itself stays open for the VM's life, as a virtio-serial port does.
#pragma once

#include <vmrt/io/unique_fd.hpp>

#include <boost/asio/any_io_executor.hpp>

#include <filesystem>
#include <memory>
#include <utility>

namespace vmrt::hv::vz {

class vz_control_relay {
public:
    /// Binds `socket` and makes the port's socket pair: the relay, and the VM's end (for
    /// vz_build_resources::control_port_fd; the configuration dups it). Throws vmrt::error.
    static std::pair<std::unique_ptr<vz_control_relay>, io::unique_fd> open(boost::asio::any_io_executor ex,
                                                                            std::filesystem::path socket);
    vz_control_relay(const vz_control_relay&) = delete;
    vz_control_relay& operator=(const vz_control_relay&) = delete;
    /// Stops relaying, closes every socket and removes the socket file.
    ~vz_control_relay();

    /// Starts accepting (once the VM runs).
    void start();
    const std::filesystem::path& socket() const noexcept;

    struct state;

private:
    explicit vz_control_relay(std::shared_ptr<state> s) : state_(std::move(s)) {}
    std::shared_ptr<state> state_;
};

}  // namespace vmrt::hv::vz
