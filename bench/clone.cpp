// bench/clone: how long it takes to clone a 1 GiB sparse disk image holding 64 MiB of data
// (64 ranges of 1 MiB spread over it), and how many bytes the clone shares with its source.
//
// On a loop-mounted XFS with reflink and on a loop-mounted ext4, both made by this program (root
// needed) and removed at the end, in the same run:
//  * vmrt clone_disk, default strategy (FICLONE where possible, else the sparse copy);
//  * vmrt clone_disk, copy_only with copy_file_range (which XFS turns into a remap);
//  * vmrt clone_disk, copy_only with read/write (fresh blocks everywhere);
//  * `cp --sparse=always` (coreutils), followed by an fsync of the result, since clone_disk
//    fsyncs too. Its time includes starting the process (about a millisecond).
// Shared bytes are measured the same way for every row (FIEMAP_EXTENT_SHARED of the result).
// Each figure is the median of RUNS runs; the page cache is warm (the source was just written).
// Usage: clone [RUNS]   (default 7)
#include "support/scratch_fs.hpp"
#include "support/sparse_files.hpp"

#include <vmrt/image/disk.hpp>

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <iostream>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using namespace vmrt::image;
using vmrt::test::scratch_fs;
using vmrt::test::scratch_fs_type;

namespace {

constexpr std::uint64_t MiB = 1 << 20;
constexpr std::uint64_t image_size = 1024 * MiB;

class bench_dir {
public:
    bench_dir() {
        std::string name = (fs::temp_directory_path() / "vmrt-bench-clone-XXXXXX").string();
        if (!::mkdtemp(name.data())) throw std::runtime_error("mkdtemp failed");
        path_ = name;
    }
    bench_dir(const bench_dir&) = delete;
    bench_dir& operator=(const bench_dir&) = delete;
    ~bench_dir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    fs::path sub(const std::string& name) const {
        fs::create_directory(path_ / name);
        return path_ / name;
    }

private:
    fs::path path_;
};

void fsync_file(const fs::path& file) {
    const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || ::fsync(fd) != 0) throw std::runtime_error("fsync " + file.string());
    ::close(fd);
}

struct row {
    std::string fs_name, method;
    double median_ms = 0;
    std::uint64_t shared = 0, allocated = 0;
    std::string reported;  // what clone_disk said it did
};

/// Runs `clone_once(dst)` `runs` times into a fresh dst; the median time and the last result's usage.
row measure(const std::string& fs_name, const std::string& method, const fs::path& dst, int runs,
            const std::function<std::string(const fs::path&)>& clone_once) {
    std::vector<double> ms;
    row r{fs_name, method, 0, 0, 0, ""};
    for (int i = 0; i < runs; ++i) {
        fs::remove(dst);
        ::sync();  // start every run from a clean page cache state (nothing dirty)
        const auto start = std::chrono::steady_clock::now();
        r.reported = clone_once(dst);
        ms.push_back(
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
    }
    std::sort(ms.begin(), ms.end());
    r.median_ms = ms[ms.size() / 2];
    const auto usage = query_disk_usage(dst);
    r.shared = usage.shared_bytes.value_or(0);
    r.allocated = usage.allocated_bytes;
    // The result must be a faithful copy whatever the method.
    if (auto diff = vmrt::test::first_difference(dst.parent_path() / "base.img", dst))
        throw std::runtime_error(method + " produced a different file at offset " + std::to_string(*diff));
    fs::remove(dst);
    return r;
}

std::function<std::string(const fs::path&)> vmrt_clone(const fs::path& src, clone_options options) {
    return [src, options](const fs::path& dst) {
        const auto r = clone_disk(src, dst, options);
        return std::string(to_string(r.method)) + ", " + std::to_string(r.bytes_copied / MiB) + " MiB copied";
    };
}

std::function<std::string(const fs::path&)> cp_sparse(const fs::path& src) {
    return [src](const fs::path& dst) {
        vmrt::test::run_program("/usr/bin/cp", {"--sparse=always", src.string(), dst.string()});
        fsync_file(dst);
        return std::string("-");
    };
}

std::vector<row> bench_on(scratch_fs_type type, const std::string& name, const fs::path& dir, int runs) {
    scratch_fs scratch(type, dir, 4096 * MiB);
    const auto src = scratch / "base.img";
    vmrt::test::make_sparse_file(src, image_size, vmrt::test::spread_ranges(image_size, 64, MiB));
    const auto dst = scratch / "clone.img";
    std::vector<row> rows;
    rows.push_back(measure(name, "vmrt clone_disk (default)", dst, runs, vmrt_clone(src, {})));
    rows.push_back(measure(name, "vmrt copy_only, copy_file_range", dst, runs,
                           vmrt_clone(src, {.strategy = clone_strategy::copy_only})));
    rows.push_back(measure(name, "vmrt copy_only, read/write", dst, runs,
                           vmrt_clone(src, {.strategy = clone_strategy::copy_only, .kernel_copy = false})));
    rows.push_back(measure(name, "cp --sparse=always (+fsync)", dst, runs, cp_sparse(src)));
    return rows;
}

}  // namespace

int main(int argc, char** argv) try {
    const int runs = argc > 1 ? std::max(1, std::atoi(argv[1])) : 7;
    vmrt::test::require_root("bench/clone loop-mounts the XFS and ext4 it measures on");
    bench_dir dir;
    std::vector<row> rows = bench_on(scratch_fs_type::xfs_reflink, "xfs", dir.sub("xfs"), runs);
    auto ext4 = bench_on(scratch_fs_type::ext4, "ext4", dir.sub("ext4"), runs);
    rows.insert(rows.end(), ext4.begin(), ext4.end());

    std::printf("clone of a 1 GiB sparse image with 64 MiB of data, median of %d runs\n\n", runs);
    std::printf("%-5s %-33s %10s %12s %14s %9s  %s\n", "fs", "method", "time ms", "shared MiB",
                "allocated MiB", "vs cp", "clone_disk reported");
    for (const auto& r : rows) {
        const auto cp = std::find_if(rows.begin(), rows.end(), [&](const row& c) {
            return c.fs_name == r.fs_name && c.method.starts_with("cp ");
        });
        std::printf("%-5s %-33s %10.3f %12.1f %14.1f %8.1fx  %s\n", r.fs_name.c_str(), r.method.c_str(),
                    r.median_ms, static_cast<double>(r.shared) / MiB, static_cast<double>(r.allocated) / MiB,
                    cp->median_ms / r.median_ms, r.reported.c_str());
    }
    std::printf(
        "\n\"vs cp\": cp's time / this row's time on the same file system (above 1: faster than cp).\n");
    return 0;
} catch (const std::exception& e) {
    std::cerr << "bench/clone: " << e.what() << "\n";
    return 1;
}
