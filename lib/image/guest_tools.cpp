#include "image/guest_tools.hpp"

#include "image/guest_support.hpp"

#include <vmrt/io/process.hpp>

#include <boost/asio/io_context.hpp>

#include <unistd.h>

#include <cstdlib>

namespace vmrt::image::guest_build {

std::optional<fs::path> find_program(const std::string& name) {
    std::vector<std::string> dirs;
    if (const char* path = std::getenv("PATH")) {
        std::string_view rest = path;
        while (!rest.empty()) {
            auto colon = rest.find(':');
            dirs.emplace_back(rest.substr(0, colon));
            if (colon == std::string_view::npos) break;
            rest.remove_prefix(colon + 1);
        }
    }
    for (const char* extra : {"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"})
        dirs.emplace_back(extra);
    for (const auto& dir : dirs) {
        if (dir.empty()) continue;
        fs::path candidate = fs::path(dir) / name;
        if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    }
    return std::nullopt;
}

fs::path require_program(const std::string& name, std::string_view package) {
    if (auto p = find_program(name)) return *p;
    fail(make_error_code(boost::system::errc::no_such_file_or_directory),
         name + " not found: install the " + std::string(package) + " package (tools/setup does)");
}

tool_result run_tool(const fs::path& program, std::vector<std::string> args, const fs::path& log,
                     std::chrono::seconds limit, const std::optional<fs::path>& cwd) {
    boost::asio::io_context ctx;
    io::process_options opts;
    opts.program = program;
    opts.args = std::move(args);
    opts.log_file = log;
    opts.working_dir = cwd;
    opts.env_overrides = {{"LC_ALL", "C"}};  // messages we may parse or show, in one language
    io::process child = io::process::spawn(ctx.get_executor(), opts);
    std::optional<exit_status> status;
    child.async_wait([&status](error_code ec, exit_status s) {
        if (!ec) status = s;
    });
    ctx.run_for(limit);
    if (!status) {
        child.kill_and_reap();
        fail(errc::timeout, program.filename().string() + " did not finish within " +
                                std::to_string(limit.count()) + " s; its output:\n" +
                                io::read_file_tail(log, 2048));
    }
    return {*status, read_file(log), log};
}

[[noreturn]] void tool_failed(const std::string& what, const tool_result& r) {
    fail(make_error_code(boost::system::errc::io_error),
         what + " failed (" + r.status.to_string() + "); its output:\n" + io::read_file_tail(r.log, 2048));
}

}  // namespace vmrt::image::guest_build
