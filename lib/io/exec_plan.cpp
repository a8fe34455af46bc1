// Preparing the exec before fork(): PATH lookup, the environment, the inherited descriptors and
// the child's stdio (/dev/null in, the log file or /dev/null out) are all checked here, so that a
// bad option is reported without forking.
#include "io/exec_plan.hpp"

#include "io/process_syscalls.hpp"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string_view>

extern char** environ;

namespace vmrt::io::detail {
namespace {

/// PATH lookup like execvp(), but done in the parent (and with the parent's PATH) so that a
/// missing program is reported without forking.
std::string resolve_program(const std::filesystem::path& program, error_code& ec) {
    const std::string& name = program.native();
    if (name.empty()) {
        ec = errno_code(ENOENT);
        return {};
    }
    if (name.find('/') != std::string::npos) return name;  // exec reports a missing file
    std::string search_path;
    if (const char* p = std::getenv("PATH")) {
        search_path = p;
    } else {
        search_path.resize(::confstr(_CS_PATH, nullptr, 0));
        ::confstr(_CS_PATH, search_path.data(), search_path.size());
        search_path.resize(std::strlen(search_path.c_str()));
    }
    int failure = ENOENT;
    std::string_view rest = search_path;
    for (;;) {
        auto colon = rest.find(':');
        std::string dir(rest.substr(0, colon));
        std::string candidate = (dir.empty() ? std::string(".") : dir) + "/" + name;
        struct stat st {};
        if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
            if (::access(candidate.c_str(), X_OK) == 0) return candidate;
            failure = EACCES;  // like execvp: remember that one existed but was not executable
        }
        if (colon == std::string_view::npos) break;
        rest.remove_prefix(colon + 1);
    }
    ec = errno_code(failure);
    return {};
}

std::vector<char*> pointers_to(std::vector<std::string>& strings) {
    std::vector<char*> ptrs;
    ptrs.reserve(strings.size() + 1);
    for (auto& s : strings) ptrs.push_back(s.data());
    ptrs.push_back(nullptr);
    return ptrs;
}

/// The parent's environment with `overrides` applied (a later override of a name wins).
std::vector<std::string> child_environment(const process_options& opts, error_code& ec) {
    std::map<std::string, std::string, std::less<>> overrides;
    for (const auto& [name, value] : opts.env_overrides) {
        if (name.empty() || name.find('=') != std::string::npos) {
            ec = errno_code(EINVAL);
            return {};
        }
        overrides.insert_or_assign(name, value);
    }
    std::vector<std::string> env;
    for (char** e = environ; e && *e; ++e) {
        std::string_view entry(*e);
        if (!overrides.contains(entry.substr(0, entry.find('=')))) env.emplace_back(entry);
    }
    for (const auto& [name, value] : overrides) env.push_back(name + "=" + value);
    return env;
}

/// Inherited fds must be open in the parent and must not collide with the child's stdio.
error_code check_inherited_fds(const std::vector<int>& fds) noexcept {
    for (int fd : fds) {
        if (fd <= 2) return errno_code(EINVAL);
        if (::fcntl(fd, F_GETFD) < 0) return last_error();
    }
    return {};
}

int descriptor_limit() noexcept {
    rlimit lim{};
    if (::getrlimit(RLIMIT_NOFILE, &lim) != 0 || lim.rlim_cur == RLIM_INFINITY) return 1 << 20;
    return static_cast<int>(std::min<rlim_t>(lim.rlim_cur, 1 << 20));
}

}  // namespace

error_code make_plan(const process_options& opts, exec_plan& plan, std::string& what) {
    error_code ec;
    plan.path = resolve_program(opts.program, ec);
    if (ec) {
        what = "not found in PATH";
        return ec;
    }
    plan.arg_storage.push_back(opts.program.native());
    plan.arg_storage.insert(plan.arg_storage.end(), opts.args.begin(), opts.args.end());
    plan.argv = pointers_to(plan.arg_storage);
    plan.env_storage = child_environment(opts, ec);
    if (ec) {
        what = "invalid environment variable name";
        return ec;
    }
    plan.envp = pointers_to(plan.env_storage);
    if (opts.working_dir) plan.working_dir = opts.working_dir->native();
    if ((ec = check_inherited_fds(opts.inherited_fds))) {
        what = "invalid inherited descriptor";
        return ec;
    }
    plan.inherited_fds = opts.inherited_fds;
    if (opts.stdin_fd >= 0 || opts.stdout_fd >= 0) {
        // Duplicated above 2 so that the child's dup2() onto 0/1 cannot clobber one with the other.
        const auto duplicate = [&](int fd) {
            const int copy = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
            if (copy < 0) ec = last_error();
            return unique_fd(copy);
        };
        if (opts.stdin_fd >= 0) plan.stdin_fd = duplicate(opts.stdin_fd);
        if (!ec && opts.stdout_fd >= 0) plan.stdout_fd = duplicate(opts.stdout_fd);
        if (ec) {
            what = "invalid stdin/stdout descriptor";
            return ec;
        }
    }
    if (!plan.stdin_fd) plan.stdin_fd = open_cloexec("/dev/null", O_RDWR, ec);
    if (!ec) {
        plan.output_fd =
            opts.log_file
                ? open_cloexec(opts.log_file->c_str(),
                               O_WRONLY | O_CREAT | (opts.append_log ? O_APPEND : O_TRUNC), ec, 0644)
                : open_cloexec("/dev/null", O_WRONLY, ec);
    }
    if (ec) {
        what = "cannot open " + (opts.log_file ? opts.log_file->native() : std::string("/dev/null"));
        return ec;
    }
    plan.new_process_group = opts.new_process_group;
    plan.death_signal = opts.parent_death_signal;
    plan.parent = ::getpid();
    plan.fd_limit = descriptor_limit();
    return {};
}

}  // namespace vmrt::io::detail
