// What every real-guest test shares: the default guest image (built once per build tree by the
// setup.guest_image CTest fixture, a cache hit here), and a fixture with a QEMU-backed manager
// whose state lives in a private temp dir.
#pragma once

#include "support/test_support.hpp"

#include <vmrt/image/guest_image.hpp>
#include <vmrt/io/process.hpp>
#include <vmrt/vm_manager.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/test/unit_test.hpp>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace vmrt::test {

inline bool contains(const std::string& text, const std::string& what) {
    return text.find(what) != std::string::npos;
}

/// The console's lines; the serial tty ends them with "\r\n" (ONLCR), the "\r" is dropped.
inline std::vector<std::string> console_lines(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        lines.push_back(std::move(line));
    }
    return lines;
}

inline bool has_line(const std::string& text, const std::string& wanted) {
    for (auto& line : console_lines(text))
        if (line == wanted) return true;
    return false;
}

/// The console lines that start with `prefix`, for the test log (what the guest actually said).
inline std::string lines_starting(const std::string& text, const std::string& prefix) {
    std::string out;
    for (auto& line : console_lines(text))
        if (line.rfind(prefix, 0) == 0) out += "\n  " + line;
    return out;
}

struct tool_result {
    vmrt::exit_status status;
    std::string output;  // stdout and stderr, from the log file
};

// A host tool run to completion from an argv (no shell), its output kept in `log` so that a
// failure can be shown. The process dies with the coroutine if the test's time limit strikes.
inline boost::asio::awaitable<tool_result> run_tool(std::string program, std::vector<std::string> args,
                                                    std::filesystem::path log) {
    vmrt::io::process_options o;
    o.program = std::move(program);
    o.args = std::move(args);
    o.log_file = log;
    auto proc = vmrt::io::process::spawn(co_await boost::asio::this_coro::executor, o);
    auto [ec, status] = co_await proc.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
    if (ec) throw vmrt::error(ec, {.message = "waiting for " + o.program.string()});
    co_return tool_result{status, vmrt::test::read_file(log)};
}

// Reads a file out of an ext4 image without mounting it: no loop device or mount point that a
// failing test could leave behind. The output has debugfs's banner (stderr) before the content.
inline boost::asio::awaitable<tool_result> debugfs_cat(std::filesystem::path image, std::string file) {
    co_return co_await run_tool("debugfs", vmrt::test::strings("-R", "cat " + file, image.string()),
                                image.string() + ".debugfs.log");
}

inline const vmrt::image::guest_image& default_guest() {
    static const vmrt::image::guest_image image = [] {
        vmrt::image::guest_build_options o;
        if (const char* d = std::getenv("VMRT_DATA_DIR")) o.data_dir = d;
        return vmrt::image::build_default_guest(o);
    }();
    return image;
}

struct guest_fixture {
    vmrt::test::temp_dir dir;
    boost::asio::io_context ctx;
    std::unique_ptr<vmrt::vm_manager> manager;

    guest_fixture() {
        vmrt::manager_options o;
        o.state_dir = dir / "state";
        o.term_grace = std::chrono::seconds(3);
        manager = std::make_unique<vmrt::vm_manager>(ctx.get_executor(), o);
    }

    /// A QEMU spec for the default guest; `extra_cmdline` adds vmrs.* words.
    vmrt::vm_spec spec(const std::string& name, const std::string& extra_cmdline = "") {
        vmrt::vm_spec s;
        s.name = name;
        s.backend = vmrt::backend_kind::qemu;
        s.kernel = default_guest().kernel;
        s.initramfs = default_guest().initramfs;
        s.memory_mib = 256;
        s.cmdline = std::string(vmrt::image::default_guest_cmdline) + " " + extra_cmdline;
        return s;
    }

    std::string console(const std::string& vm) {
        return vmrt::test::read_file(manager->info(vm)->serial_log);
    }

    // Starts the VMs and waits until all are Ready; the probes of /init have then reported.
    boost::asio::awaitable<void> boot(std::vector<vmrt::vm_spec> specs) {
        const auto t0 = std::chrono::steady_clock::now();
        std::vector<std::string> names;
        for (auto& s : specs) {
            auto [ec, info] =
                co_await manager->async_start(s, boost::asio::as_tuple(boost::asio::use_awaitable));
            BOOST_TEST_REQUIRE(!ec, s.name << ": " << ec.message() << ": " << info.diag.message << " "
                                           << info.diag.vmm_stderr_tail);
            names.push_back(s.name);
        }
        auto [rec, infos] = co_await manager->async_wait_ready(
            names, std::chrono::seconds(90), boost::asio::as_tuple(boost::asio::use_awaitable));
        BOOST_TEST_REQUIRE(!rec, rec.message() << "\n" << console(names.front()));
        const auto took =
            std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
        BOOST_TEST_MESSAGE(names.size() << " guest(s) from start to Ready: " << took.count() << " ms");
    }

    boost::asio::awaitable<void> boot(vmrt::vm_spec s) {
        std::vector<vmrt::vm_spec> one;  // no braced list: see vmrt::test::strings()
        one.push_back(std::move(s));
        co_await boot(std::move(one));
    }

    // Graceful stop: the guest syncs and powers off (the VM ends clean, not killed).
    boost::asio::awaitable<void> stop_clean(std::string vm) {
        auto [ec, outcome] = co_await manager->async_stop(vm, std::chrono::seconds(30),
                                                          boost::asio::as_tuple(boost::asio::use_awaitable));
        BOOST_TEST_REQUIRE(!ec, ec.message());
        BOOST_TEST_REQUIRE((outcome == vmrt::stop_outcome::clean), "\n" << console(vm));
    }

    static bool gone(pid_t pid) { return ::kill(pid, 0) != 0 && errno == ESRCH; }
};

}  // namespace vmrt::test
