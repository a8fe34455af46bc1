// Helpers every test uses so that it can neither hang nor leak:
//  * run_coro(): runs a coroutine on a fresh io_context with a hard time limit and rethrows;
//  * temp_dir: a private directory under the run's VMRT_TEST_TMP, removed by its destructor;
//  * paths of the project's helper programs, passed in by CTest.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <chrono>
#include <exception>
#include <filesystem>
#include <functional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace vmrt::test {

using namespace std::chrono_literals;

/// Runs `make()` as a coroutine on `ctx` until it finishes; fails the test (throws) if it takes
/// longer than `limit` or leaves work behind; rethrows the coroutine's exception.
void run_coro(boost::asio::io_context& ctx, std::function<boost::asio::awaitable<void>()> make,
              std::chrono::steady_clock::duration limit = 20s);

/// Same, on a private io_context.
void run_coro(std::function<boost::asio::awaitable<void>()> make,
              std::chrono::steady_clock::duration limit = 20s);

/// A fresh directory under $VMRT_TEST_TMP (or the system temp dir), removed recursively on
/// destruction.
class temp_dir {
public:
    temp_dir();
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
    ~temp_dir();
    const std::filesystem::path& path() const noexcept { return path_; }
    std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

private:
    std::filesystem::path path_;
};

/// Path of a helper program from the environment variable CTest sets (VMRT_TEST_CHILD,
/// VMRT_FAKE_GUEST); throws with a clear message if it is missing.
std::filesystem::path helper_program(const char* env_var);

/// A list of strings built outside coroutine bodies: GCC 12 rejects braced lists of string
/// literals inside them ("array used as initializer").
template <typename... Words>
std::vector<std::string> strings(Words... words) {
    return {std::string(words)...};
}

/// Runs a program (argv, no shell) to its end with a time limit: (exit code, or -1 if a signal
/// ended it; stdout and stderr together). A program still running at the limit is killed and
/// reaped, and the call throws std::runtime_error.
std::pair<int, std::string> run_to_end(const std::filesystem::path& program, std::vector<std::string> args,
                                       std::chrono::seconds limit = std::chrono::seconds(120));

/// Writes `contents` to `file` (creating or truncating it).
void write_file(const std::filesystem::path& file, const std::string& contents);
/// Appends `contents` to `file` with one write(2).
void append_file(const std::filesystem::path& file, const std::string& contents);
/// Reads a whole file.
std::string read_file(const std::filesystem::path& file);

}  // namespace vmrt::test
