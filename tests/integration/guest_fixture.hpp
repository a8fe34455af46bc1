// What every real-guest test shares: the default guest image (built once per build tree by the
// setup.guest_image CTest fixture, a cache hit here), and a fixture with a QEMU-backed manager
// whose state lives in a private temp dir.
#pragma once

#include "support/test_support.hpp"

#include <vmrt/image/guest_image.hpp>
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
