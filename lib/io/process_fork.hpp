// fork + exec of a prepared exec_plan, with failures in the child reported back to the parent.
#pragma once

#include "io/exec_plan.hpp"

#include <vmrt/error.hpp>
#include <vmrt/io/unique_fd.hpp>

#include <sys/types.h>

#include <string>

namespace vmrt::io::detail {

/// Waits for a child we have not handed out yet (it failed before exec or we cannot track it).
void reap_by_pid(pid_t pid) noexcept;

struct started_child {
    pid_t pid = -1;
    unique_fd pidfd;
};

/// fork + exec; on failure `ec` is set and `what` says which step failed.
started_child fork_and_exec(const exec_plan& plan, error_code& ec, std::string& what);

}  // namespace vmrt::io::detail
