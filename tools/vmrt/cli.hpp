// The `vmrt` command-line tool: subcommands and their exit codes.
#pragma once

#include <vmrt/vm_spec.hpp>

#include <optional>
#include <string>
#include <vector>

namespace vmrt::cli {

/// Exit codes of every subcommand (documented in `vmrt --help` and README.md).
enum exit_code : int {
    exit_ok = 0,            ///< done; for `run`: the VM ran and stopped
    exit_vm_failed = 1,     ///< `run`: the VM ended in Failed (crash), or a stop failed
    exit_usage = 2,         ///< bad command line
    exit_invalid_spec = 3,  ///< the spec is invalid or the backend refuses one of its fields
    exit_start_failed = 4,  ///< the VMM could not be started
};

int run_command(const std::vector<std::string>& args);
int validate_command(const std::vector<std::string>& args);
int guest_command(const std::vector<std::string>& args);
int image_command(const std::vector<std::string>& args);

std::string usage();

/// Reads the value of `--backend NAME` (args[i + 1], advancing i); prints why not and returns
/// nothing for a missing or unknown name.
std::optional<backend_kind> backend_option(const std::vector<std::string>& args, std::size_t& i,
                                           const char* command);

}  // namespace vmrt::cli
