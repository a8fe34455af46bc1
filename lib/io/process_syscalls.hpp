// System-call helpers shared by the process files (lib/io/process*.cpp, read_file_tail.cpp): errno
// as an error_code, descriptors that are never inherited and never sit on 0-2, and pidfds.
#pragma once

#include <vmrt/error.hpp>
#include <vmrt/io/unique_fd.hpp>

#include <sys/types.h>

namespace vmrt::io::detail {

error_code errno_code(int e) noexcept;
error_code last_error() noexcept;

/// The child dup2()s onto 0, 1 and 2; a source fd that itself sits in that range (the parent runs
/// with a closed stdio fd) could be overwritten before it is used, so keep ours above 2.
error_code move_above_stdio(unique_fd& fd) noexcept;

/// open() with O_CLOEXEC, the descriptor moved above stdio; on failure `ec` is set.
unique_fd open_cloexec(const char* path, int flags, error_code& ec, mode_t mode = 0) noexcept;

int pidfd_open(pid_t pid) noexcept;
int pidfd_send_signal(int pidfd, int sig) noexcept;

}  // namespace vmrt::io::detail
