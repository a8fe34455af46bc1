// The external tools of the default-guest build (apt-get, apt-cache, busybox, depmod): found by
// name, run to completion with a time limit, their output kept in a log.
#pragma once

#include <vmrt/vm_state.hpp>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vmrt::image::guest_build {

namespace fs = std::filesystem;

/// A tool by name: in PATH, or in the sbin directories a non-root PATH often lacks (depmod).
std::optional<fs::path> find_program(const std::string& name);

/// find_program(), or a no_such_file_or_directory error that names the `package` to install.
fs::path require_program(const std::string& name, std::string_view package);

struct tool_result {
    exit_status status;
    std::string output;  // stdout and stderr, interleaved
    fs::path log;
};

/// Runs a tool to completion (argv, never a shell) with its output in `log`. A tool that
/// outlives `limit` is killed: errc::timeout.
tool_result run_tool(const fs::path& program, std::vector<std::string> args, const fs::path& log,
                     std::chrono::seconds limit, const std::optional<fs::path>& cwd = std::nullopt);

/// Throws io_error "<what> failed (<status>); its output: <log tail>".
[[noreturn]] void tool_failed(const std::string& what, const tool_result& r);

}  // namespace vmrt::image::guest_build
