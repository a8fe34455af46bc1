// Private to the configuration builder (vz_configuration.cpp): the device builders, each turning one
// plan element into its VZ object through the vmrt::objc layer, and the error helpers they share.
// Callers hold an autorelease pool.
#pragma once

#include "hv/apple_vz/objc/handle.hpp"
#include "hv/apple_vz/vz_configuration.hpp"

#include <vmrt/error.hpp>

#include <string>
#include <string_view>

namespace vmrt::hv::vz::build {

/// A vmrt::error with diagnostics {message, field}.
error failure(error_code code, std::string field, std::string message);
/// The vmrt::error for a failed VZ call `what` that reported `ns_error` (domain, code and description in
/// the message), with `field`.
error ns_failure(objc::id ns_error, std::string_view what, std::string field);
/// A class the availability check has already found (errc::internal if it has gone).
objc::Class vz_class(const char* name);

objc::strong make_storage_device(const storage_device& disk);
objc::strong make_network_device(const network_device& nic, std::size_t index, const vz_build_resources& r);
objc::strong make_serial_port(const serial_console& console);
objc::strong make_control_console(const control_port& control, int fd);
objc::strong make_directory_sharing_device(const directory_sharing_device& device);
/// A device created with plain -init (entropy, balloon, socket).
objc::strong make_plain_device(const char* class_name);

}  // namespace vmrt::hv::vz::build
