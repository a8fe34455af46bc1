// One running QEMU VM: the process, its QMP connection and its sidecars (virtiofsd). Every
// operation is a QMP command (and, where the guest must follow, the QMP event that says it has);
// nothing polls.
#pragma once

#include "hv/qmp_client.hpp"
#include "hv/virtiofsd_sidecar.hpp"

#include <vmrt/driver.hpp>
#include <vmrt/io/process.hpp>

#include <filesystem>
#include <memory>
#include <vector>

namespace vmrt::hv {

struct qemu_instance_parts {
    io::process vmm;
    qmp::client qmp;
    std::vector<std::unique_ptr<virtiofsd_sidecar>> sidecars;  ///< killed and reaped with the VM
    std::filesystem::path vmm_log;
    std::filesystem::path run_dir;
    std::filesystem::path control_socket;  ///< empty without spec.control_channel; removed with the VM
};

class qemu_instance final : public vm_instance {
public:
    explicit qemu_instance(qemu_instance_parts parts);
    ~qemu_instance() override;

    boost::asio::awaitable<exit_status> wait_exit() override;
    boost::asio::awaitable<void> request_powerdown() override;
    void terminate() override;
    void kill() override;
    boost::asio::awaitable<void> pause() override;
    boost::asio::awaitable<void> resume() override;
    boost::asio::awaitable<std::uint64_t> resize_balloon(std::uint64_t target_mib) override;
    boost::asio::awaitable<std::uint32_t> resize_vcpus(std::uint32_t count) override;
    boost::asio::awaitable<void> save_snapshot(const std::filesystem::path& dir) override;

    std::optional<io::process_identity> vmm_identity() const override { return p_.vmm.identity(); }
    std::filesystem::path control_socket() const override { return p_.control_socket; }
    std::string vmm_log_tail() const override;

private:
    boost::asio::awaitable<boost::json::value> execute(std::string command, boost::json::object args = {});

    qemu_instance_parts p_;
};

}  // namespace vmrt::hv
