// vmrt's error model: one `errc` enumeration with its own error_category, plus a
// `diagnostics` object that carries what an error code cannot (the VMM's stderr tail,
// the last serial lines, the field of a spec that was refused).
#pragma once

#include <boost/system/error_code.hpp>
#include <boost/system/system_error.hpp>

#include <string>
#include <type_traits>
#include <vector>

namespace vmrt {

using boost::system::error_code;

/// Error conditions produced by vmrt itself. System errors (errno) keep their system category.
enum class errc {
    ok = 0,
    invalid_spec = 1,      ///< the VM spec failed validation; diagnostics.field names the key
    unsupported,           ///< the backend cannot honour a spec field or an operation
    not_found,             ///< no VM of that name is known to the manager
    already_exists,        ///< a VM of that name is already active
    invalid_state,         ///< the operation is not allowed in the VM's current state
    vmm_start_failed,      ///< the VMM process could not be started or exited during start
    vmm_crashed,           ///< the VMM exited without being asked to
    timeout,               ///< a deadline passed before the operation completed
    cancelled,             ///< the operation was cancelled by its caller
    protocol_error,        ///< a malformed reply from a VMM, a guest or a server
    stop_failed,           ///< the VMM survived every stop escalation step
    internal,              ///< a broken invariant inside vmrt (a bug)
    command_failed,        ///< the VMM refused a control command (QMP error reply); diagnostics say why
    http_status,           ///< a server answered with an HTTP error status (diagnostics: URL, body excerpt)
    certificate_rejected,  ///< TLS peer verification failed (unknown CA, expired, wrong host name)
    incomplete_body,       ///< a transfer ended before all announced bytes arrived
    digest_mismatch,       ///< downloaded content does not match its expected digest
};

const boost::system::error_category& vmrt_category() noexcept;

inline error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), vmrt_category()}; }

/// Everything known about a failure beyond its code. All members are optional.
struct diagnostics {
    std::string message;                   ///< human-readable explanation
    std::string field;                     ///< the spec key a validation error refers to ("disks[1].path")
    std::string vmm_stderr_tail;           ///< last bytes of the VMM's stdout/stderr log
    std::vector<std::string> serial_tail;  ///< last lines of the guest's serial console

    bool empty() const noexcept {
        return message.empty() && field.empty() && vmm_stderr_tail.empty() && serial_tail.empty();
    }
};

/// Exception thrown at the API edges that throw (the CLI, `load_spec_file` and friends).
class error : public boost::system::system_error {
public:
    error(error_code ec, diagnostics diag)
        : boost::system::system_error(ec, diag.message), diag_(std::move(diag)) {}
    const vmrt::diagnostics& diag() const noexcept { return diag_; }

private:
    vmrt::diagnostics diag_;
};

}  // namespace vmrt

template <>
struct boost::system::is_error_code_enum<vmrt::errc> : std::true_type {};
