#include "hv/apple_vz/objc/ns_error.hpp"

#include "hv/apple_vz/objc/foundation.hpp"
#include "hv/apple_vz/objc/handle.hpp"

#include <boost/system/system_category.hpp>

#include <cerrno>

namespace vmrt::objc {

namespace {

// Foundation's userInfo keys (NSError.h): the constants' string values.
constexpr std::string_view underlying_error_key = "NSUnderlyingError";
constexpr std::string_view failure_reason_key = "NSLocalizedFailureReason";

// NSCocoaErrorDomain codes (FoundationErrors.h) that have an errno equivalent.
enum : NSInteger {
    cocoa_file_no_such_file = 4,
    cocoa_file_read_no_permission = 257,
    cocoa_file_read_corrupt_file = 259,
    cocoa_file_read_no_such_file = 260,
    cocoa_file_write_no_permission = 513,
    cocoa_file_write_file_exists = 516,
    cocoa_file_write_out_of_space = 640,
    cocoa_file_write_volume_read_only = 642,
    cocoa_user_cancelled = 3072,
};

// Deep enough for every chain Apple builds (VZ error -> POSIX error), short enough to stop a cycle.
constexpr int max_underlying_depth = 4;

error_code system_error(int value) { return {value, boost::system::system_category()}; }

error_code vz_code(NSInteger code) {
    switch (static_cast<vz_error_code>(code)) {
    case vz_error_code::internal:
        return errc::vmm_crashed;  // "an internal error, such as the virtual machine unexpectedly stopping"
    case vz_error_code::invalid_virtual_machine_configuration:
    case vz_error_code::invalid_disk_image:
        return errc::invalid_spec;  // the configuration (or a disk) built from the spec was refused
    case vz_error_code::invalid_virtual_machine_state:
    case vz_error_code::invalid_virtual_machine_state_transition:
        return errc::invalid_state;
    case vz_error_code::virtual_machine_limit_exceeded:
        return errc::vmm_start_failed;
    case vz_error_code::out_of_disk_space:
        return system_error(ENOSPC);
    case vz_error_code::operation_cancelled:
        return errc::cancelled;
    case vz_error_code::not_supported:
        return errc::unsupported;
    case vz_error_code::network_error:
    case vz_error_code::save:
    case vz_error_code::restore:
        break;
    }
    // Network, save/restore, installation (10001-10007), NBD (20001-) and USB (30001-) errors: the
    // framework refused or failed the operation; the diagnostics carry its own words.
    return errc::command_failed;
}

error_code cocoa_code(NSInteger code) {
    switch (code) {
    case cocoa_file_no_such_file:
    case cocoa_file_read_no_such_file:
        return system_error(ENOENT);
    case cocoa_file_read_no_permission:
    case cocoa_file_write_no_permission:
        return system_error(EACCES);
    case cocoa_file_write_file_exists:
        return system_error(EEXIST);
    case cocoa_file_write_out_of_space:
        return system_error(ENOSPC);
    case cocoa_file_write_volume_read_only:
        return system_error(EROFS);
    case cocoa_file_read_corrupt_file:
        return errc::invalid_spec;
    case cocoa_user_cancelled:
        return errc::cancelled;
    default:
        return errc::command_failed;
    }
}

std::string summary(const std::string& domain, NSInteger code, const std::string& description) {
    return domain + " " + std::to_string(code) + " " + description;
}

}  // namespace

ns_error_info read_ns_error(id ns_error) {
    ns_error_info info;
    if (!ns_error) return info;
    autorelease_pool pool;
    info.domain = to_string(send<id>(ns_error, sel<"domain">()));
    info.code = send<NSInteger>(ns_error, sel<"code">());
    info.description = to_string(send<id>(ns_error, sel<"localizedDescription">()));
    id user_info = send<id>(ns_error, sel<"userInfo">());
    info.failure_reason = to_string(dictionary_value(user_info, failure_reason_key).get());
    strong next = dictionary_value(user_info, underlying_error_key);
    for (int depth = 0; next && depth < max_underlying_depth; ++depth) {
        std::string domain = to_string(send<id>(next.get(), sel<"domain">()));
        auto code = send<NSInteger>(next.get(), sel<"code">());
        info.underlying.push_back(
            summary(domain, code, to_string(send<id>(next.get(), sel<"localizedDescription">()))));
        next = dictionary_value(send<id>(next.get(), sel<"userInfo">()), underlying_error_key);
    }
    return info;
}

error_code error_code_for(std::string_view domain, NSInteger code) {
    if (domain == vz_error_domain) return vz_code(code);
    if (domain == posix_error_domain && code > 0) return system_error(static_cast<int>(code));
    if (domain == cocoa_error_domain) return cocoa_code(code);
    return errc::command_failed;
}

error to_error(id ns_error, std::string_view what) {
    if (!ns_error)
        return error(errc::internal, {.message = std::string(what) + ": failed without an NSError"});
    ns_error_info info = read_ns_error(ns_error);
    std::string message = std::string(what) + ": " + summary(info.domain, info.code, info.description);
    // -localizedDescription already ends with the failure reason when it was built from it.
    if (!info.failure_reason.empty() && info.description.find(info.failure_reason) == std::string::npos)
        message += " (" + info.failure_reason + ")";
    for (const std::string& cause : info.underlying) message += "; underlying: " + cause;
    return error(error_code_for(info.domain, info.code), {.message = std::move(message)});
}

}  // namespace vmrt::objc
