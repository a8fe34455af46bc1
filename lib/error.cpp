#include <vmrt/error.hpp>

namespace vmrt {
namespace {

class category_impl final : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "vmrt"; }

    std::string message(int ev) const override {
        switch (static_cast<errc>(ev)) {
        case errc::ok:
            return "success";
        case errc::invalid_spec:
            return "invalid VM spec";
        case errc::unsupported:
            return "not supported by this backend";
        case errc::not_found:
            return "no such VM";
        case errc::already_exists:
            return "a VM with this name already exists";
        case errc::invalid_state:
            return "operation not allowed in the VM's current state";
        case errc::vmm_start_failed:
            return "the VMM failed to start";
        case errc::vmm_crashed:
            return "the VMM exited unexpectedly";
        case errc::timeout:
            return "deadline exceeded";
        case errc::cancelled:
            return "operation cancelled";
        case errc::protocol_error:
            return "malformed reply from peer";
        case errc::stop_failed:
            return "the VMM could not be stopped";
        case errc::internal:
            return "internal error";
        case errc::command_failed:
            return "the VMM refused the command";
        case errc::http_status:
            return "the server answered with an HTTP error status";
        case errc::certificate_rejected:
            return "the server's TLS certificate was rejected";
        case errc::incomplete_body:
            return "the transfer ended before the whole body arrived";
        case errc::digest_mismatch:
            return "the content does not match its expected digest";
        }
        return "unknown vmrt error " + std::to_string(ev);
    }
};

}  // namespace

const boost::system::error_category& vmrt_category() noexcept {
    static const category_impl instance;
    return instance;
}

}  // namespace vmrt
