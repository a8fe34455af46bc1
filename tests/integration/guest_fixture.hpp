// What every real-guest test shares: the default guest image (built once per build tree by the
// setup.guest_image CTest fixture, a cache hit here), and a fixture with a QEMU-backed manager
// whose state lives in a private temp dir.
#pragma once

#include "support/test_support.hpp"

#include <vmrt/image/guest_image.hpp>
#include <vmrt/vm_manager.hpp>

#include <boost/asio/io_context.hpp>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <memory>
#include <string>

namespace vmrt::test {

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

    static bool gone(pid_t pid) { return ::kill(pid, 0) != 0 && errno == ESRCH; }
};

}  // namespace vmrt::test
