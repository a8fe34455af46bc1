// Runs the external disk tools (mkfs.ext4, qemu-img) as children of the caller's executor, with
// a time limit, and turns their failures into vmrt::error with the tool's output attached.
#pragma once

#include <vmrt/error.hpp>
#include <vmrt/vm_state.hpp>

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <string>
#include <vector>

namespace vmrt::image::detail {

struct tool_run {
    std::string tool;  ///< its name, for messages
    exit_status status;
    std::string output;  ///< stdout and stderr, interleaved (at most the last 1 MiB)
};

/// Runs `tool` (found in PATH or the sbin directories) with `args` to completion. Throws:
/// no_such_file_or_directory naming `package` if the tool is missing, errc::timeout if it ran
/// longer than `limit` (it is killed), errc::cancelled if the caller cancelled (it is killed).
/// A non-zero exit is returned, not thrown: see require_success.
boost::asio::awaitable<tool_run> run_tool(std::string tool, std::string package,
                                          std::vector<std::string> args,
                                          std::chrono::steady_clock::duration limit);

/// Throws io_error "<what> failed (<status>): <output tail>" unless the tool succeeded.
void require_success(const tool_run& run, const std::string& what);

}  // namespace vmrt::image::detail
