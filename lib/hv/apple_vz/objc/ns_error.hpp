// NSError -> vmrt::error: the error code is chosen from the error's domain and code (the table is in
// ns_error.cpp, with the VZErrorCode values from Virtualization's VZError.h), and the diagnostics keep
// everything the NSError said: "<what>: <domain> <code> <description>", its failure reason, and the
// chain of NSUnderlyingError errors under it.
#pragma once

#include "hv/apple_vz/objc/runtime.hpp"

#include <vmrt/error.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace vmrt::objc {

/// VZErrorCode (Virtualization/VZError.h, domain "VZErrorDomain"); the macOS version that
/// introduced each code is noted.
enum class vz_error_code : NSInteger {
    internal = 1,                                  ///< macOS 11: e.g. the VM stopped unexpectedly
    invalid_virtual_machine_configuration = 2,     ///< macOS 11
    invalid_virtual_machine_state = 3,             ///< macOS 11
    invalid_virtual_machine_state_transition = 4,  ///< macOS 11
    invalid_disk_image = 5,                        ///< macOS 11
    virtual_machine_limit_exceeded = 6,            ///< macOS 12
    network_error = 7,                             ///< macOS 13
    out_of_disk_space = 8,                         ///< macOS 13
    operation_cancelled = 9,                       ///< macOS 13
    not_supported = 10,                            ///< macOS 13
    save = 11,                                     ///< macOS 14: saving the VM state failed
    restore = 12,                                  ///< macOS 14: restoring the VM state failed
};

inline constexpr std::string_view vz_error_domain = "VZErrorDomain";
inline constexpr std::string_view posix_error_domain = "NSPOSIXErrorDomain";
inline constexpr std::string_view cocoa_error_domain = "NSCocoaErrorDomain";

/// What an NSError says, read into C++.
struct ns_error_info {
    std::string domain;
    NSInteger code = 0;
    std::string description;              ///< -localizedDescription
    std::string failure_reason;           ///< userInfo[NSLocalizedFailureReasonErrorKey], if any
    std::vector<std::string> underlying;  ///< "domain code description" down the NSUnderlyingError chain
};

/// Reads an NSError (nil gives an empty domain and code 0).
ns_error_info read_ns_error(id ns_error);

/// The vmrt error code for an NSError's domain and code (POSIX errors keep their errno in the
/// system category).
error_code error_code_for(std::string_view domain, NSInteger code);

/// A vmrt::error for a failed operation `what` ("start the VM") that reported `ns_error`. A nil
/// error (a failure without an NSError, which Apple's APIs do not produce) is errc::internal.
error to_error(id ns_error, std::string_view what);

}  // namespace vmrt::objc
