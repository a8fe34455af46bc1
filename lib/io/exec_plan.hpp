// The exec of a child process, prepared in the parent: checks the process_options and builds
// everything the child needs (lib/io/process_fork.cpp runs it).
#pragma once

#include <vmrt/error.hpp>
#include <vmrt/io/process.hpp>
#include <vmrt/io/unique_fd.hpp>

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

namespace vmrt::io::detail {

/// Everything the child needs, built before fork() so that the child does not allocate.
struct exec_plan {
    std::string path;  // resolved executable
    std::vector<std::string> arg_storage;
    std::vector<char*> argv;
    std::vector<std::string> env_storage;
    std::vector<char*> envp;
    std::optional<std::string> working_dir;
    std::vector<int> inherited_fds;
    unique_fd stdin_fd;
    unique_fd output_fd;
    unique_fd stdout_fd;  // when set, the child's stdout; output_fd then takes only stderr
    bool new_process_group = true;
    int death_signal = 0;
    pid_t parent = 0;
    int fd_limit = 0;  // upper bound for the close_range() fallback
};

/// Fills `plan`; on failure `what` names the step that failed.
error_code make_plan(const process_options& opts, exec_plan& plan, std::string& what);

}  // namespace vmrt::io::detail
