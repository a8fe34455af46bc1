#include "support/scratch_fs.hpp"

#include "support/test_support.hpp"

#include <vmrt/io/process.hpp>

#include <boost/asio/io_context.hpp>

#include <fcntl.h>
#include <linux/loop.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>

namespace vmrt::test {

namespace fs = std::filesystem;

void require_root(const std::string& why) {
    if (::geteuid() != 0)
        throw std::runtime_error("this needs root (" + why +
                                 "); run it as root, as CI does. It is not skipped, so that it never "
                                 "passes without having run.");
}

std::string run_program(const fs::path& program, std::vector<std::string> args, std::chrono::seconds limit) {
    std::string command = program.string();
    for (const auto& a : args) command += " " + a;
    auto [code, output] = run_to_end(program, std::move(args), limit);
    if (code != 0)
        throw std::runtime_error(command + " failed (exit " + std::to_string(code) + "): " + output);
    return output;
}

namespace {

std::string mkfs_for(scratch_fs_type type) {
    return type == scratch_fs_type::xfs_reflink ? "mkfs.xfs" : "mkfs.ext4";
}

}  // namespace

scratch_fs::scratch_fs(scratch_fs_type type, const fs::path& dir, std::uint64_t size_bytes)
    : type_(type), image_(dir / "fs.img"), mount_point_(dir / "mnt") {
    require_root("loop devices and mount(2) for a scratch file system");
    fs::create_directory(mount_point_);
    try {
        if (type == scratch_fs_type::tmpfs) {
            const std::string data = "size=" + std::to_string(size_bytes) + ",mode=0755";
            if (::mount("vmrt-test", mount_point_.c_str(), "tmpfs", 0, data.c_str()) != 0)
                throw std::runtime_error("mount tmpfs on " + mount_point_.string() + ": " +
                                         std::strerror(errno));
            mounted_ = true;
            return;
        }
        {
            std::ofstream(image_, std::ios::binary);  // creates it
        }
        fs::resize_file(image_, size_bytes);  // sparse
        if (type == scratch_fs_type::xfs_reflink)
            run_program("/usr/sbin/mkfs.xfs", {"-q", "-m", "reflink=1", image_.string()});
        else
            run_program("/usr/sbin/mkfs.ext4", {"-q", "-F", image_.string()});
        // --find --show picks a free device and attaches in one step (no race with other tests).
        std::string device = run_program("/usr/sbin/losetup", {"--find", "--show", image_.string()});
        while (!device.empty() && (device.back() == '\n' || device.back() == ' ')) device.pop_back();
        if (!device.starts_with("/dev/loop")) throw std::runtime_error("losetup printed \"" + device + "\"");
        loop_device_ = device;
        const char* fstype = type == scratch_fs_type::xfs_reflink ? "xfs" : "ext4";
        if (::mount(loop_device_.c_str(), mount_point_.c_str(), fstype, 0, nullptr) != 0)
            throw std::runtime_error("mount " + loop_device_.string() + " (" + mkfs_for(type) + ") on " +
                                     mount_point_.string() + ": " + std::strerror(errno));
        mounted_ = true;
    } catch (...) {
        teardown();
        throw;
    }
}

scratch_fs::~scratch_fs() { teardown(); }

void scratch_fs::remount(bool read_only) {
    unsigned long flags = MS_REMOUNT;
    if (read_only) flags |= MS_RDONLY;
    if (::mount(nullptr, mount_point_.c_str(), nullptr, flags, nullptr) != 0)
        throw std::runtime_error("remount " + mount_point_.string() + ": " + std::strerror(errno));
}

void scratch_fs::teardown() noexcept {
    if (mounted_ && ::umount2(mount_point_.c_str(), 0) != 0) {
        // Busy (a file still open by a failed check): detach now, the kernel finishes it later.
        ::umount2(mount_point_.c_str(), MNT_DETACH);
    }
    mounted_ = false;
    if (!loop_device_.empty()) {
        const int fd = ::open(loop_device_.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            // If it is still in use (lazy unmount), autoclear frees it once the last user is gone.
            if (::ioctl(fd, LOOP_CLR_FD, 0) != 0) {
                loop_info64 info{};
                if (::ioctl(fd, LOOP_GET_STATUS64, &info) == 0) {
                    info.lo_flags |= LO_FLAGS_AUTOCLEAR;
                    ::ioctl(fd, LOOP_SET_STATUS64, &info);
                }
            }
            ::close(fd);
        }
        loop_device_.clear();
    }
    std::error_code ec;
    fs::remove(image_, ec);
    fs::remove(mount_point_, ec);
}

}  // namespace vmrt::test
