#include "support/test_support.hpp"

#include <vmrt/io/process.hpp>

#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>

namespace vmrt::test {

void run_coro(boost::asio::io_context& ctx, std::function<boost::asio::awaitable<void>()> make,
              std::chrono::steady_clock::duration limit) {
    std::exception_ptr failure;
    bool done = false;
    boost::asio::co_spawn(ctx, make(), [&](std::exception_ptr e) {
        failure = e;
        done = true;
    });
    ctx.restart();
    ctx.run_for(limit);
    if (!done) {
        // Destroying the pending coroutine frames releases their resources (children are killed
        // by their owners' destructors).
        ctx.stop();
        throw std::runtime_error("test coroutine did not finish within its time limit");
    }
    if (failure) std::rethrow_exception(failure);
}

void run_coro(std::function<boost::asio::awaitable<void>()> make, std::chrono::steady_clock::duration limit) {
    boost::asio::io_context ctx;
    run_coro(ctx, std::move(make), limit);
}

temp_dir::temp_dir() {
    const char* base = std::getenv("VMRT_TEST_TMP");
    std::filesystem::path root = base ? base : std::filesystem::temp_directory_path() / "vmrt-test";
    std::filesystem::create_directories(root);
    std::random_device rd;
    for (int attempt = 0; attempt < 100; ++attempt) {
        std::ostringstream name;
        name << "t" << std::hex << rd() << rd();
        auto candidate = root / name.str();
        if (std::filesystem::create_directory(candidate)) {
            path_ = candidate;
            return;
        }
    }
    throw std::runtime_error("could not create a temp dir under " + root.string());
}

temp_dir::~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
}

std::filesystem::path helper_program(const char* env_var) {
    const char* value = std::getenv(env_var);
    if (!value || !*value)
        throw std::runtime_error(std::string(env_var) + " is not set: run the tests through ctest");
    return value;
}

void write_file(const std::filesystem::path& file, const std::string& contents) {
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out << contents;
    if (!out) throw std::runtime_error("cannot write " + file.string());
}

void append_file(const std::filesystem::path& file, const std::string& contents) {
    int fd = ::open(file.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) throw std::runtime_error("cannot open " + file.string());
    auto n = ::write(fd, contents.data(), contents.size());
    ::close(fd);
    if (n != static_cast<ssize_t>(contents.size()))
        throw std::runtime_error("short write to " + file.string());
}

std::string read_file(const std::filesystem::path& file) {
    std::ifstream in(file, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

std::pair<int, std::string> run_to_end(const std::filesystem::path& program, std::vector<std::string> args,
                                       std::chrono::seconds limit) {
    // The output goes to a private file of the run's temp area, removed before returning.
    const temp_dir scratch;
    const auto log = scratch / "output.log";
    std::string command = program.string();
    for (const auto& a : args) command += " " + a;
    boost::asio::io_context ctx;
    io::process_options opts;
    opts.program = program;
    opts.args = std::move(args);
    opts.log_file = log;
    auto child = io::process::spawn(ctx.get_executor(), opts);
    std::optional<exit_status> status;
    child.async_wait([&status](error_code ec, exit_status s) {
        if (!ec) status = s;
    });
    ctx.run_for(limit);
    auto output = read_file(log);
    if (!status) {
        child.kill_and_reap();
        throw std::runtime_error(command + " did not finish within " + std::to_string(limit.count()) +
                                 " s: " + output);
    }
    return {status->signaled ? -1 : status->code, std::move(output)};
}

}  // namespace vmrt::test
