#include "image/guest_packages.hpp"

#include "image/guest_build.hpp"
#include "image/guest_tools.hpp"

#include <vmrt/io/atomic_file.hpp>
#include <vmrt/io/process.hpp>

#include <charconv>
#include <chrono>
#include <sstream>

namespace vmrt::image {
namespace {

using namespace std::chrono_literals;

constexpr std::string_view kernel_prefix = "linux-image-6.1.0-";
constexpr std::string_view kernel_suffix = "-cloud-amd64";

/// ABI number N of "linux-image-6.1.0-N-cloud-amd64", if that is what `name` is.
std::optional<unsigned> kernel_abi(std::string_view name) {
    if (!name.starts_with(kernel_prefix) || !name.ends_with(kernel_suffix)) return std::nullopt;
    auto digits =
        name.substr(kernel_prefix.size(), name.size() - kernel_prefix.size() - kernel_suffix.size());
    unsigned abi = 0;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), abi);
    if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size()) return std::nullopt;
    return abi;
}

}  // namespace

namespace guest_build {
namespace {

/// The downloaded .deb of `package` in `dir` (apt names it <package>_<version>_<arch>.deb).
std::optional<fs::path> find_package_file(const fs::path& dir, const std::string& package) {
    std::optional<fs::path> best;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
        const std::string name = entry.path().filename().string();
        if (!entry.is_regular_file() || !name.starts_with(package + "_") || !name.ends_with(".deb")) continue;
        if (!best || name > best->filename().string()) best = entry.path();
    }
    return best;
}

}  // namespace

std::optional<std::string> newest_cached_kernel(const fs::path& cache) {
    std::string names;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(cache, ec)) {
        const std::string name = entry.path().filename().string();
        if (name.ends_with(".deb")) names += name.substr(0, name.find('_')) + "\n";
    }
    return pick_newest_kernel_package(names);
}

std::string choose_kernel_package(const guest_build_options& options, const fs::path& cache,
                                  const scratch_dir& work) {
    if (!options.kernel_package.empty()) return options.kernel_package;
    std::string why;
    auto apt_cache = find_program("apt-cache");
    auto search = [&](const std::string& step) -> std::optional<std::string> {
        if (!apt_cache) return std::nullopt;
        auto r =
            run_tool(*apt_cache, {"search", "--names-only", "^linux-image-6\\.1\\.0-[0-9]+-cloud-amd64$"},
                     work.log(step), 120s);
        if (!r.status.success())
            why +=
                "apt-cache search: " + r.status.to_string() + ": " + io::read_file_tail(r.log, 1024) + "\n";
        return pick_newest_kernel_package(r.output);
    };
    say(options, "looking for the newest Debian cloud kernel (apt-cache search)");
    auto package = search("apt-cache-search");
    if (!package && apt_cache) {
        if (auto apt_get = find_program("apt-get")) {
            say(options, "no cloud kernel known to apt: running apt-get update");
            auto r = run_tool(*apt_get, {"update"}, work.log("apt-get-update"), 600s);
            if (!r.status.success())
                why +=
                    "apt-get update: " + r.status.to_string() + ": " + io::read_file_tail(r.log, 1024) + "\n";
            package = search("apt-cache-search-2");
        }
    }
    if (!package) {
        package = newest_cached_kernel(cache);
        if (package) say(options, "apt has no cloud kernel; using the cached package " + *package);
    }
    if (!package)
        fail(errc::not_found, "no linux-image-6.1.0-*-cloud-amd64 package: apt knows none (Debian 12 "
                              "repositories needed) and none is cached in " +
                                  cache.string() + (why.empty() ? "" : "\n" + why) +
                                  (apt_cache ? "" : "\napt-cache not found"));
    return *package;
}

fs::path ensure_package(const guest_build_options& options, const std::string& package, const fs::path& cache,
                        const scratch_dir& work) {
    if (auto cached = find_package_file(cache, package)) return *cached;
    const fs::path apt_get = require_program("apt-get", "apt");
    remove_stale_scratch(cache, ".download-");
    const fs::path incoming = cache / (".download-" + random_suffix());
    fs::create_directories(incoming);
    struct cleanup {
        fs::path dir;
        ~cleanup() {
            std::error_code ec;
            fs::remove_all(dir, ec);
        }
    } remove_incoming{incoming};
    say(options, "downloading " + package + " (apt-get download)");
    auto r = run_tool(apt_get, {"download", package}, work.log("apt-get-download"), 900s, incoming);
    if (!r.status.success()) tool_failed("apt-get download " + package, r);
    auto file = find_package_file(incoming, package);
    if (!file) tool_failed("apt-get download " + package + " (no .deb appeared)", r);
    const fs::path target = cache / file->filename();
    fs::rename(*file, target);
    io::sync_directory(cache);
    return target;
}
}  // namespace guest_build

// ---- helpers declared in guest_build.hpp -------------------------------------------------------

std::optional<std::string> pick_newest_kernel_package(std::string_view list) {
    std::optional<std::string> best;
    unsigned best_abi = 0;
    std::istringstream lines{std::string(list)};
    for (std::string line; std::getline(lines, line);) {
        const std::string name = line.substr(0, line.find_first_of(" \t"));
        auto abi = kernel_abi(name);
        if (abi && (!best || *abi > best_abi)) {
            best = name;
            best_abi = *abi;
        }
    }
    return best;
}

std::string kernel_version_of_package(std::string_view package) {
    constexpr std::string_view prefix = "linux-image-";
    if (!package.starts_with(prefix)) return {};
    package.remove_prefix(prefix.size());
    if (package.ends_with("-unsigned")) package.remove_suffix(std::string_view("-unsigned").size());
    if (package.empty() || package.find_first_of("/ \t") != std::string_view::npos) return {};
    return std::string(package);
}

}  // namespace vmrt::image
