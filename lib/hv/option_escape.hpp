// Escaping of values (mostly file paths) that are embedded in a VMM's "key=value,key=value"
// option strings. Every path in a spec comes from a user, and a stray ',' in it would otherwise
// be read as the start of another option: "file=/vm/a,b.img" would give QEMU an option "b.img".
#pragma once

#include <vmrt/error.hpp>

#include <boost/system/result.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace vmrt::hv {

/// A value for a QEMU option string (`-drive file=<value>,...`, `-chardev ...,path=<value>`):
/// each ',' is doubled, which QEMU's option parser reads back as a literal ','.
///
/// Throws vmrt::error(errc::invalid_spec) if the value contains a NUL (it cannot be passed in
/// argv) or a newline (QEMU would accept it, but no legitimate path or name contains one and it
/// breaks every log line it appears in).
///
/// Paths must be absolute: QEMU reads a "word:" prefix without '/' as a protocol ("nbd:",
/// "json:"), which no escaping prevents.
std::string qemu_option_value(std::string_view value);

/// A value for a Cloud Hypervisor option string (`--disk path=<value>,...`). Its parser splits
/// on ',' outside double quotes and outside balanced [brackets], drops every '"', and trims
/// whitespace from each value, so:
///   * a value containing ',' or '=' is wrapped in double quotes;
///   * a value containing '"', unbalanced '[' or ']', leading or trailing whitespace, NUL or a
///     newline cannot be represented and gives errc::invalid_spec.
boost::system::result<std::string> ch_option_value(std::string_view value);

/// Why `value` cannot be given to QEMU / Cloud Hypervisor, or nullopt if it can: an error code
/// alone cannot say which character was at fault, and callers put this into diagnostics.
std::optional<std::string> qemu_option_value_problem(std::string_view value);
std::optional<std::string> ch_option_value_problem(std::string_view value);

}  // namespace vmrt::hv
