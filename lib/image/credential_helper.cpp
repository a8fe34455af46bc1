// load_registry_credentials: reads config.json and, when it names one, runs the
// docker-credential-<name> helper through vmrt::io::process. The helper's answer travels through
// a pipe, never a file, because it holds the secret.
#include "image/oci_text.hpp"

#include <vmrt/error.hpp>
#include <vmrt/image/registry_credentials.hpp>
#include <vmrt/io/process.hpp>
#include <vmrt/io/unique_fd.hpp>
#include <vmrt/io/with_timeout.hpp>

#include <boost/asio/buffer.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/readable_pipe.hpp>
#include <boost/asio/this_coro.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <sstream>

namespace vmrt::image {

namespace asio = boost::asio;

namespace {

constexpr std::size_t max_helper_output = 64 * 1024;
constexpr std::size_t max_config_file = 4 * 1024 * 1024;

std::optional<std::string> read_config_file(const std::filesystem::path& file) {
    std::error_code ec;
    if (!std::filesystem::exists(file, ec)) return std::nullopt;  // no config: anonymous
    std::ifstream in(file, std::ios::binary);
    if (!in)
        detail::fail(errc::invalid_spec,
                     "docker config " + detail::quoted(file.native()) + " cannot be read");
    std::ostringstream text;
    text << in.rdbuf();
    if (text.str().size() > max_config_file)
        detail::fail(errc::invalid_spec,
                     "docker config " + detail::quoted(file.native()) + " is larger than 4 MiB");
    return text.str();
}

void check_helper_name(const std::string& name) {
    for (char c : name)
        if (!detail::is_alnum(c) && c != '-' && c != '_' && c != '.')
            detail::fail(errc::invalid_spec, "docker config: credential helper name " + detail::quoted(name) +
                                                 " may only hold letters, digits, '-', '_' and '.'");
    if (name.empty() || name.front() == '.')
        detail::fail(errc::invalid_spec,
                     "docker config: invalid credential helper name " + detail::quoted(name));
}

std::pair<io::unique_fd, io::unique_fd> make_pipe() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0)
        throw boost::system::system_error(error_code(errno, boost::system::system_category()), "pipe2");
    return {io::unique_fd(fds[0]), io::unique_fd(fds[1])};
}

/// The first line of a failed helper's output, cut short and quoted. A helper that fails has
/// not printed credentials (it prints them only on success), and the cut bounds what a broken one
/// could leak.
std::string first_line(const std::string& output) {
    const auto line = std::string_view(output).substr(0, output.find('\n'));
    return detail::quoted(line, 120);
}

bool says_not_found(const std::string& output) {
    return detail::ascii_lowercase(output).find("credentials not found") != std::string::npos;
}

asio::awaitable<registry_credentials> run_helper(const credential_source& source,
                                                 const credential_options& options) {
    check_helper_name(source.helper);
    const std::string program_name = "docker-credential-" + source.helper;
    io::process_options popts;
    popts.program =
        options.helper_dir ? *options.helper_dir / program_name : std::filesystem::path(program_name);
    popts.args.push_back("get");

    // The server URL (short, checked below) fits in the pipe's buffer: write it all before spawning.
    auto [stdin_read, stdin_write] = make_pipe();
    if (source.server_url.size() > 4096) detail::fail(errc::invalid_spec, "registry server URL is too long");
    if (::write(stdin_write.get(), source.server_url.data(), source.server_url.size()) !=
        static_cast<ssize_t>(source.server_url.size()))
        throw boost::system::system_error(error_code(errno, boost::system::system_category()),
                                          "write to pipe");
    stdin_write.reset();
    auto [stdout_read, stdout_write] = make_pipe();
    popts.stdin_fd = stdin_read.get();
    popts.stdout_fd = stdout_write.get();

    const auto executor = co_await asio::this_coro::executor;
    error_code spawn_ec;
    io::process child = io::process::spawn(executor, popts, spawn_ec);
    stdin_read.reset();
    stdout_write.reset();  // our copy: EOF arrives when the helper (and its children) close theirs
    if (spawn_ec)
        detail::fail(errc::command_failed, "credential helper " + detail::quoted(program_name) +
                                               " cannot be started: " + spawn_ec.message());

    const auto deadline = std::chrono::steady_clock::now() + options.helper_timeout;
    const auto remaining = [&] {
        return std::max<std::chrono::steady_clock::duration>(deadline - std::chrono::steady_clock::now(),
                                                             std::chrono::steady_clock::duration::zero());
    };
    asio::readable_pipe pipe(executor, stdout_read.release());
    std::string output;
    char chunk[4096];
    while (true) {
        auto [ec, n] =
            co_await io::with_timeout(pipe.async_read_some(asio::buffer(chunk), asio::deferred), remaining());
        output.append(chunk, n);
        if (ec == errc::timeout)
            detail::fail(errc::timeout,
                         "credential helper " + detail::quoted(program_name) + " did not answer in time");
        if (ec == asio::error::eof) break;
        if (ec) throw boost::system::system_error(ec, "reading the credential helper's answer");
        if (output.size() > max_helper_output)
            detail::fail(errc::protocol_error,
                         "credential helper " + detail::quoted(program_name) + " wrote more than 64 KiB");
    }
    auto [wait_ec, status] = co_await io::with_timeout(child.async_wait(asio::deferred), remaining());
    if (wait_ec == errc::timeout)
        detail::fail(errc::timeout,
                     "credential helper " + detail::quoted(program_name) + " did not exit in time");
    if (wait_ec) throw boost::system::system_error(wait_ec, "waiting for the credential helper");
    if (status.signaled || status.code != 0) {
        if (!status.signaled && says_not_found(output)) co_return registry_credentials{};
        detail::fail(errc::command_failed,
                     "credential helper " + detail::quoted(program_name) + " failed for " +
                         detail::quoted(source.server_url) +
                         (status.signaled ? " (killed by signal " + std::to_string(status.signal) + ")"
                                          : " (exit code " + std::to_string(status.code) + ")") +
                         ": " + first_line(output));
    }
    co_return parse_helper_output(output);
}

}  // namespace

asio::awaitable<registry_credentials> load_registry_credentials(std::string registry_domain,
                                                                credential_options options) {
    const std::filesystem::path file =
        options.config_file ? *options.config_file : default_docker_config_path();
    const auto text = read_config_file(file);
    if (!text) co_return registry_credentials{};
    docker_config config;
    try {
        config = parse_docker_config(*text);
    } catch (const error& e) {
        detail::fail(errc::invalid_spec, e.diag().message + " (in " + file.native() + ")", e.diag().field);
    }
    const credential_source source = find_credential_source(config, registry_domain);
    if (source.helper.empty()) co_return source.from_config;
    co_return co_await run_helper(source, options);
}

}  // namespace vmrt::image
