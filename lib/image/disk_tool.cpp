#include "image/disk_tool.hpp"

#include "image/disk_files.hpp"

#include <vmrt/io/process.hpp>
#include <vmrt/io/with_timeout.hpp>

#include <boost/asio/deferred.hpp>
#include <boost/asio/this_coro.hpp>

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdlib>
#include <optional>

namespace vmrt::image::detail {
namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;

constexpr std::size_t output_limit = 1 << 20;
constexpr std::size_t tail_limit = 2048;

/// `name` in PATH, or in the sbin directories that a non-root PATH often lacks (mkfs.ext4).
std::optional<fs::path> find_tool(const std::string& name) {
    std::string dirs = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    if (const char* path = std::getenv("PATH"); path && *path) dirs = std::string(path) + ":" + dirs;
    std::size_t start = 0;
    while (start <= dirs.size()) {
        const auto colon = std::min(dirs.find(':', start), dirs.size());
        const std::string dir = dirs.substr(start, colon - start);
        start = colon + 1;
        if (dir.empty()) continue;
        fs::path candidate = fs::path(dir) / name;
        if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    }
    return std::nullopt;
}

/// The child's log: a private file in the temp directory, removed with this object.
class tool_log {
public:
    tool_log() {
        path_ = (fs::temp_directory_path() / "vmrt-disk-tool-XXXXXX").string();
        const int fd = ::mkostemp(path_.data(), O_CLOEXEC);
        if (fd < 0) fail_at(last_error(), "cannot create a log file in", fs::temp_directory_path(), "");
        ::close(fd);
    }
    tool_log(const tool_log&) = delete;
    tool_log& operator=(const tool_log&) = delete;
    ~tool_log() { ::unlink(path_.c_str()); }
    fs::path path() const { return path_; }

private:
    std::string path_;
};

std::string tail(const std::string& text, std::size_t n) {
    if (text.empty()) return "(none)";
    return text.size() <= n ? text : "..." + text.substr(text.size() - n);
}

}  // namespace

asio::awaitable<tool_run> run_tool(std::string tool, std::string package, std::vector<std::string> args,
                                   std::chrono::steady_clock::duration limit) {
    auto program = find_tool(tool);
    if (!program)
        throw error(make_error_code(boost::system::errc::no_such_file_or_directory),
                    {.message = tool + " not found: install the " + package + " package (tools/setup does)"});
    tool_log log;
    io::process_options opts;
    opts.program = *program;
    opts.args = std::move(args);
    opts.log_file = log.path();
    opts.env_overrides = {{"LC_ALL", "C"}};  // messages in one language
    const auto executor = co_await asio::this_coro::executor;
    auto child = io::process::spawn(executor, opts);

    // Cancellation (the time limit's or the caller's) kills the tool; the wait still lasts until
    // it has exited, so no tool outlives this call.
    auto wait =
        io::with_timeout(child.async_wait_escalating(io::escalation_signals{SIGKILL}, asio::deferred), limit);
    auto [ec, status] = co_await std::move(wait);
    const auto cancelled = (co_await asio::this_coro::cancellation_state).cancelled();
    if (cancelled != asio::cancellation_type::none)
        throw error(make_error_code(errc::cancelled), {.message = tool + " cancelled (killed)"});
    const std::string output = io::read_file_tail(log.path(), output_limit);
    if (ec == errc::timeout)
        throw error(ec, {.message = tool + " did not finish in time (killed); its output:\n" +
                                    tail(output, tail_limit),
                         .vmm_stderr_tail = tail(output, tail_limit)});
    if (ec) throw error(ec, {.message = "waiting for " + tool + ": " + ec.message()});
    co_return tool_run{tool, status, output};
}

void require_success(const tool_run& run, const std::string& what) {
    if (run.status.success()) return;
    throw error(make_error_code(boost::system::errc::io_error),
                {.message = what + " failed (" + run.tool + ", " + run.status.to_string() +
                            "); its output:\n" + tail(run.output, tail_limit),
                 .vmm_stderr_tail = tail(run.output, tail_limit)});
}

}  // namespace vmrt::image::detail
