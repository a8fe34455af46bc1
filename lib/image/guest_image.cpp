// build_default_guest(): kernel package -> unpacked kernel and modules -> initramfs -> cache.
//
// Layout of the data dir:
//   guest/<kver>-<inputs hash>/{vmlinuz, initramfs.cpio.gz, manifest.json}   one dir per image
//   guest/.lock                                                              serialises builds
//   guest/.work-*/                                 scratch of one call (logs, unpacked package)
//   cache/packages/linux-image-*.deb               downloaded packages (package_cache)
// An image directory is assembled in the scratch dir and renamed into place in one step, so it
// is either complete or absent; manifest.json records the inputs and the sha256 of both files,
// which a cache hit re-checks.
#include "image/cpio_writer.hpp"
#include "image/deb_unpack.hpp"
#include "image/guest_build.hpp"
#include "image/guest_init.hpp"
#include "image/kernel_modules.hpp"

#include <vmrt/image/guest_image.hpp>
#include <vmrt/io/atomic_file.hpp>
#include <vmrt/io/process.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>

#include <elf.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <random>
#include <set>
#include <sstream>

namespace vmrt::image {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr std::string_view kernel_prefix = "linux-image-6.1.0-";
constexpr std::string_view kernel_suffix = "-cloud-amd64";

// ---- small utilities ---------------------------------------------------------------------------

error_code last_error() { return {errno, boost::system::system_category()}; }

[[noreturn]] void fail(error_code ec, std::string message) {
    throw error(ec, {.message = std::move(message)});
}

[[noreturn]] void fail(errc e, std::string message) { fail(make_error_code(e), std::move(message)); }

void say(const guest_build_options& options, std::string line) {
    if (options.progress) options.progress(std::move(line));
}

std::string read_file(const fs::path& file) {
    std::ifstream in(file, std::ios::binary);
    if (!in) fail(last_error(), "cannot read " + file.string());
    std::ostringstream out;
    out << in.rdbuf();
    if (in.bad()) fail(make_error_code(boost::system::errc::io_error), "cannot read " + file.string());
    return std::move(out).str();
}

std::string random_suffix() {
    static thread_local std::mt19937_64 rng{std::random_device{}()};
    return std::to_string(::getpid()) + "-" + std::to_string(rng() & 0xffffff);
}

// A private scratch directory, removed with everything in it when the call ends.
class scratch_dir {
public:
    explicit scratch_dir(const fs::path& parent) : path_(parent / (".work-" + random_suffix())) {
        fs::create_directories(path_ / "logs");
    }
    scratch_dir(const scratch_dir&) = delete;
    scratch_dir& operator=(const scratch_dir&) = delete;
    ~scratch_dir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    const fs::path& path() const noexcept { return path_; }
    fs::path log(const std::string& step) const { return path_ / "logs" / (step + ".log"); }

private:
    fs::path path_;
};

/// Removes scratch directories ("<prefix><pid>-<n>") left behind by calls that died: their
/// process no longer exists. Directories of live processes are theirs to remove.
void remove_stale_scratch(const fs::path& dir, const std::string& prefix) {
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
        const std::string name = entry.path().filename().string();
        if (!name.starts_with(prefix)) continue;
        int pid = 0;
        auto digits = std::string_view(name).substr(prefix.size());
        auto [end, parse_ec] = std::from_chars(digits.data(), digits.data() + digits.size(), pid);
        if (parse_ec != std::errc() || pid <= 0 || end == digits.data() + digits.size() || *end != '-')
            continue;
        if (::kill(pid, 0) != 0 && errno == ESRCH) fs::remove_all(entry.path(), ec);
    }
}

// An exclusive flock(2) on a file, held until destruction (or until the process dies).
class file_lock {
public:
    explicit file_lock(const fs::path& file) : fd_(::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644)) {
        if (fd_ < 0) fail(last_error(), "cannot open the lock file " + file.string());
        while (::flock(fd_, LOCK_EX) != 0) {
            if (errno == EINTR) continue;
            auto ec = last_error();
            ::close(fd_);
            fail(ec, "cannot lock " + file.string());
        }
    }
    file_lock(const file_lock&) = delete;
    file_lock& operator=(const file_lock&) = delete;
    ~file_lock() { ::close(fd_); }

private:
    int fd_;
};

// ---- external tools ----------------------------------------------------------------------------

/// A tool by name: in PATH, or in the sbin directories a non-root PATH often lacks (depmod).
std::optional<fs::path> find_program(const std::string& name) {
    std::vector<std::string> dirs;
    if (const char* path = std::getenv("PATH")) {
        std::string_view rest = path;
        while (!rest.empty()) {
            auto colon = rest.find(':');
            dirs.emplace_back(rest.substr(0, colon));
            if (colon == std::string_view::npos) break;
            rest.remove_prefix(colon + 1);
        }
    }
    for (const char* extra : {"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"})
        dirs.emplace_back(extra);
    for (const auto& dir : dirs) {
        if (dir.empty()) continue;
        fs::path candidate = fs::path(dir) / name;
        if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    }
    return std::nullopt;
}

fs::path require_program(const std::string& name, std::string_view package) {
    if (auto p = find_program(name)) return *p;
    fail(make_error_code(boost::system::errc::no_such_file_or_directory),
         name + " not found: install the " + std::string(package) + " package (tools/setup does)");
}

struct tool_result {
    exit_status status;
    std::string output;  // stdout and stderr, interleaved
    fs::path log;
};

/// Runs a tool to completion (argv, never a shell) with its output in `log`. A tool that
/// outlives `limit` is killed: errc::timeout.
tool_result run_tool(const fs::path& program, std::vector<std::string> args, const fs::path& log,
                     std::chrono::seconds limit, const std::optional<fs::path>& cwd = std::nullopt) {
    boost::asio::io_context ctx;
    io::process_options opts;
    opts.program = program;
    opts.args = std::move(args);
    opts.log_file = log;
    opts.working_dir = cwd;
    opts.env_overrides = {{"LC_ALL", "C"}};  // messages we may parse or show, in one language
    io::process child = io::process::spawn(ctx.get_executor(), opts);
    std::optional<exit_status> status;
    child.async_wait([&status](error_code ec, exit_status s) {
        if (!ec) status = s;
    });
    ctx.run_for(limit);
    if (!status) {
        child.kill_and_reap();
        fail(errc::timeout, program.filename().string() + " did not finish within " +
                                std::to_string(limit.count()) + " s; its output:\n" +
                                io::read_file_tail(log, 2048));
    }
    return {*status, read_file(log), log};
}

[[noreturn]] void tool_failed(const std::string& what, const tool_result& r) {
    fail(make_error_code(boost::system::errc::io_error),
         what + " failed (" + r.status.to_string() + "); its output:\n" + io::read_file_tail(r.log, 2048));
}

// ---- the kernel package ------------------------------------------------------------------------

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

/// The newest kernel package already in the cache, for hosts where apt cannot answer.
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

/// The package's .deb in the cache, downloaded first if missing. The download goes to a
/// private directory and is renamed into the cache, so the cache never holds a partial file.
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

// ---- busybox -----------------------------------------------------------------------------------

struct busybox_info {
    std::string binary;
    std::string sha256;
};

busybox_info load_busybox(const fs::path& path) {
    busybox_info info{read_file(path), {}};
    if (!is_static_x86_64_elf(info.binary))
        fail(errc::unsupported, path.string() + " is not a static x86-64 executable; the initramfs has no "
                                                "dynamic loader (install busybox-static)");
    info.sha256 = sha256_hex(info.binary);
    return info;
}

/// Where busybox wants its applet links ("bin/sh", "sbin/modprobe", ...), from --list-full.
std::vector<std::string> busybox_applet_paths(const fs::path& busybox, const scratch_dir& work) {
    auto r = run_tool(busybox, {"--list-full"}, work.log("busybox-list"), 30s);
    if (!r.status.success()) tool_failed(busybox.string() + " --list-full", r);
    std::vector<std::string> paths;
    std::set<std::string> names;
    std::istringstream lines(r.output);
    for (std::string line; std::getline(lines, line);) {
        auto path = safe_relative_path(line);
        // No top-level links (linuxrc) and no sbin/init: /init is ours, and a busybox init
        // without an inittab in its place would only confuse.
        if (!path || path->find('/') == std::string::npos || *path == "sbin/init" || *path == "bin/busybox")
            continue;
        names.insert(path->substr(path->rfind('/') + 1));
        paths.push_back(*path);
    }
    for (auto applet : guest_required_applets())
        if (!names.contains(std::string(applet)))
            fail(errc::unsupported, busybox.string() + " lacks the applet " + std::string(applet));
    return paths;
}

// ---- inputs, manifest and cache ----------------------------------------------------------------

struct build_inputs {
    std::string package, kernel_version;
    fs::path deb;
    std::string deb_sha256;
    busybox_info busybox;
    std::vector<std::string> modules;  // wanted names (defaults + extras)
    std::string hash;                  // sha256 of everything above that shapes the image
};

build_inputs collect_inputs(const guest_build_options& options, std::string package, fs::path deb) {
    build_inputs in;
    in.package = std::move(package);
    in.kernel_version = kernel_version_of_package(in.package);
    if (in.kernel_version.empty()) fail(errc::unsupported, in.package + " is not a linux-image package");
    in.deb = std::move(deb);
    in.deb_sha256 = io::sha256_of_file(in.deb);
    in.busybox = load_busybox(options.busybox);
    in.modules = default_guest_modules();
    in.modules.insert(in.modules.end(), options.extra_modules.begin(), options.extra_modules.end());

    std::string key = "vmrt default guest, format " + std::to_string(guest_image_format_version) + "\n";
    key += "kernel-package " + in.package + "\nkernel-deb-sha256 " + in.deb_sha256 + "\n";
    key += "busybox-sha256 " + in.busybox.sha256 + "\n";
    key += "init-sha256 " + sha256_hex(guest_init_script()) + "\n";
    key += "powerbutton-sha256 " + sha256_hex(guest_powerbutton_script()) + "\nmodules";
    for (const auto& m : in.modules) key += " " + m;
    in.hash = sha256_hex(key + "\n");
    return in;
}

fs::path image_dir(const fs::path& guest_root, const build_inputs& in) {
    return guest_root / (in.kernel_version + "-" + in.hash.substr(0, 16));
}

std::string manifest_text(const build_inputs& in, const guest_image& img) {
    boost::json::array modules;
    for (const auto& m : img.modules) modules.emplace_back(m);
    boost::json::object m{{"format", guest_image_format_version},     {"inputs_hash", in.hash},
                          {"kernel_version", img.kernel_version},     {"kernel_package", in.package},
                          {"kernel_deb", in.deb.filename().string()}, {"kernel_deb_sha256", in.deb_sha256},
                          {"busybox_sha256", in.busybox.sha256},      {"kernel", "vmlinuz"},
                          {"kernel_sha256", img.kernel_sha256},       {"initramfs", "initramfs.cpio.gz"},
                          {"initramfs_sha256", img.initramfs_sha256}, {"modules", std::move(modules)}};
    return boost::json::serialize(m) + "\n";
}

/// The image in `dir` if its manifest matches `in` and both files still have their recorded
/// sha256; nothing otherwise (missing, stale, damaged: the caller rebuilds).
std::optional<guest_image> load_cached(const fs::path& dir, const build_inputs& in) {
    std::error_code ec;
    if (!fs::is_regular_file(dir / "manifest.json", ec)) return std::nullopt;
    try {
        auto value = boost::json::parse(read_file(dir / "manifest.json"));
        const auto& m = value.as_object();
        if (m.at("format").as_int64() != guest_image_format_version ||
            m.at("inputs_hash").as_string() != in.hash)
            return std::nullopt;
        guest_image img;
        img.directory = dir;
        img.kernel = dir / "vmlinuz";
        img.initramfs = dir / "initramfs.cpio.gz";
        img.kernel_version = m.at("kernel_version").as_string().c_str();
        img.kernel_package = in.package;
        img.kernel_sha256 = m.at("kernel_sha256").as_string().c_str();
        img.initramfs_sha256 = m.at("initramfs_sha256").as_string().c_str();
        for (const auto& module : m.at("modules").as_array())
            img.modules.emplace_back(module.as_string().c_str());
        if (io::sha256_of_file(img.kernel) != img.kernel_sha256 ||
            io::sha256_of_file(img.initramfs) != img.initramfs_sha256)
            return std::nullopt;
        img.reused = true;
        return img;
    } catch (const std::exception&) {
        return std::nullopt;  // unreadable or malformed: rebuild
    }
}

// ---- building ----------------------------------------------------------------------------------

/// Which members of the kernel package to unpack, and where: the kernel as boot/vmlinuz, and
/// the modules with the files depmod reads (modules.order, modules.builtin*) under
/// lib/modules/<kver>/. Newer packages keep modules in usr/lib/modules: both are accepted.
deb_member_map kernel_member_map(const std::string& kver) {
    return [kver](std::string_view member) -> std::optional<std::string> {
        if (member == "boot/vmlinuz-" + kver) return std::string("boot/vmlinuz");
        if (member.starts_with("usr/")) member.remove_prefix(4);
        const std::string dir = "lib/modules/" + kver + "/";
        if (!member.starts_with(dir)) return std::nullopt;
        auto rest = member.substr(dir.size());
        const bool wanted =
            (rest.starts_with("kernel/") &&
             (rest.ends_with(".ko") || rest.ends_with(".ko.xz") || rest.ends_with(".ko.zst"))) ||
            rest == "modules.order" || rest == "modules.builtin" || rest == "modules.builtin.modinfo";
        if (!wanted) return std::nullopt;
        return std::string(member);
    };
}

void run_depmod(const fs::path& root, const std::string& kver, const scratch_dir& work,
                const std::string& step) {
    const fs::path depmod = require_program("depmod", "kmod");
    auto r = run_tool(depmod, {"-b", root.string(), kver}, work.log(step), 300s);
    if (!r.status.success()) tool_failed("depmod -b " + root.string() + " " + kver, r);
}

std::string read_optional(const fs::path& file) {
    std::error_code ec;
    return fs::exists(file, ec) ? read_file(file) : std::string();
}

struct module_set {
    std::vector<std::string> paths;       // relative to lib/modules/<kver>/, load order
    std::vector<std::string> load_order;  // canonical names, same order
};

/// The wanted modules and their dependencies, resolved with depmod on the whole unpacked
/// package (only depmod knows the real symbol dependencies).
module_set resolve_modules(const fs::path& unpacked, const build_inputs& in, const scratch_dir& work) {
    const fs::path moddir = unpacked / "lib/modules" / in.kernel_version;
    run_depmod(unpacked, in.kernel_version, work, "depmod-package");
    auto closure = resolve_module_closure(read_file(moddir / "modules.dep"), in.modules);
    auto builtin = builtin_module_names(read_optional(moddir / "modules.builtin"));
    for (const auto& name : closure.missing)
        if (!builtin.contains(module_name(name)))
            fail(errc::unsupported, "module " + name + " is not in " + in.package);
    module_set set;
    set.paths = std::move(closure.paths);
    for (const auto& p : set.paths) set.load_order.push_back(module_name(p));
    return set;
}

/// The initramfs's own lib/modules/<kver>: the chosen modules, then depmod run on just them,
/// so that modprobe in the guest finds a modules.dep that describes what is there.
fs::path stage_initramfs_modules(const fs::path& unpacked, const build_inputs& in, const module_set& modules,
                                 const scratch_dir& work) {
    const fs::path root = work.path() / "initramfs";
    const fs::path from = unpacked / "lib/modules" / in.kernel_version;
    const fs::path to = root / "lib/modules" / in.kernel_version;
    std::string order;
    for (const auto& p : modules.paths) {
        fs::create_directories((to / p).parent_path());
        fs::copy_file(from / p, to / p);
        order += p + "\n";
    }
    io::write_file_atomically(to / "modules.order", order);
    if (fs::exists(from / "modules.builtin")) fs::copy_file(from / "modules.builtin", to / "modules.builtin");
    run_depmod(root, in.kernel_version, work, "depmod-initramfs");
    return root;
}

cpio_archive assemble_initramfs(const build_inputs& in, const std::vector<std::string>& applets,
                                const fs::path& staged, const module_set& modules) {
    cpio_archive cpio;
    for (const char* dir : {"dev", "proc", "sys", "run", "mnt", "etc"}) cpio.add_directory(dir, 0755);
    cpio.add_directory("tmp", 01777);
    cpio.add_directory("root", 0700);
    // The kernel opens /dev/console for PID 1 before /init can mount devtmpfs.
    cpio.add_char_device("dev/console", 5, 1, 0600);

    cpio.add_file("bin/busybox", in.busybox.binary, 0755);
    for (const auto& path : applets) cpio.add_symlink(path, "/bin/busybox");

    cpio.add_file("init", std::string(guest_init_script()), 0755);
    cpio.add_file(guest_powerbutton_path, std::string(guest_powerbutton_script()), 0755);
    std::string load;
    for (const auto& name : modules.load_order) load += name + "\n";
    cpio.add_file(guest_module_list_path, load, 0644);

    const std::string moddir = "lib/modules/" + in.kernel_version;
    cpio.add_directory(moddir, 0755);
    for (const auto& p : modules.paths) cpio.add_file(moddir + "/" + p, read_file(staged / moddir / p), 0644);
    // What busybox modprobe reads (modules.dep, aliases and symbols for names it does not know).
    for (const char* index :
         {"modules.dep", "modules.alias", "modules.symbols", "modules.builtin", "modules.order"}) {
        const fs::path file = staged / moddir / index;
        if (fs::exists(file)) cpio.add_file(moddir + "/" + index, read_file(file), 0644);
    }
    return cpio;
}

guest_image build(const guest_build_options& options, const build_inputs& in, const fs::path& target,
                  const scratch_dir& work) {
    const fs::path unpacked = work.path() / "package";
    fs::create_directories(unpacked);
    say(options, "unpacking " + in.deb.filename().string());
    unpack_deb(in.deb, unpacked, kernel_member_map(in.kernel_version));
    const std::string kernel = read_optional(unpacked / "boot/vmlinuz");
    if (kernel.empty())
        fail(errc::protocol_error, in.deb.string() + " has no boot/vmlinuz-" + in.kernel_version);
    if (!is_bzimage(kernel))
        fail(errc::protocol_error, "the kernel in " + in.deb.string() + " is not a bzImage");

    say(options, "resolving module dependencies (depmod)");
    const module_set modules = resolve_modules(unpacked, in, work);
    const fs::path staged = stage_initramfs_modules(unpacked, in, modules, work);
    const auto applets = busybox_applet_paths(options.busybox, work);

    say(options, "writing the initramfs");
    const std::string initramfs = assemble_initramfs(in, applets, staged, modules).write(true);

    guest_image img;
    img.kernel_version = in.kernel_version;
    img.kernel_package = in.package;
    img.kernel_sha256 = sha256_hex(kernel);
    img.initramfs_sha256 = sha256_hex(initramfs);
    img.modules = modules.load_order;

    const fs::path out = work.path() / "out";
    fs::create_directories(out);
    io::write_file_atomically(out / "vmlinuz", kernel);
    io::write_file_atomically(out / "initramfs.cpio.gz", initramfs);
    io::write_file_atomically(out / "manifest.json", manifest_text(in, img));

    // Swap the finished directory in: the old one (stale or forced out) leaves with the scratch dir.
    std::error_code ec;
    if (fs::exists(target, ec)) fs::rename(target, work.path() / "replaced");
    fs::rename(out, target);
    io::sync_directory(target.parent_path());

    img.directory = target;
    img.kernel = target / "vmlinuz";
    img.initramfs = target / "initramfs.cpio.gz";
    return img;
}

}  // namespace

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

bool is_static_x86_64_elf(std::string_view binary) {
    Elf64_Ehdr header;
    if (binary.size() < sizeof header) return false;
    std::memcpy(&header, binary.data(), sizeof header);
    if (std::memcmp(header.e_ident, ELFMAG, SELFMAG) != 0 || header.e_ident[EI_CLASS] != ELFCLASS64 ||
        header.e_ident[EI_DATA] != ELFDATA2LSB || header.e_machine != EM_X86_64 ||
        (header.e_type != ET_EXEC && header.e_type != ET_DYN) || header.e_phentsize != sizeof(Elf64_Phdr))
        return false;
    for (unsigned i = 0; i < header.e_phnum; ++i) {
        const std::uint64_t offset = header.e_phoff + std::uint64_t{i} * sizeof(Elf64_Phdr);
        if (offset + sizeof(Elf64_Phdr) > binary.size()) return false;
        Elf64_Phdr ph;
        std::memcpy(&ph, binary.data() + offset, sizeof ph);
        if (ph.p_type == PT_INTERP) return false;
    }
    return true;
}

bool is_bzimage(std::string_view kernel) {
    return kernel.size() > 0x206 && kernel.substr(0x202, 4) == "HdrS";
}

// ---- public API --------------------------------------------------------------------------------

fs::path default_data_dir() {
    if (const char* dir = std::getenv("VMRT_DATA_DIR"); dir && *dir) return dir;
    if (::geteuid() == 0 || ::access("/var/lib/vmrt", W_OK) == 0) return "/var/lib/vmrt";
    if (const char* xdg = std::getenv("XDG_DATA_HOME"); xdg && *xdg == '/') return fs::path(xdg) / "vmrt";
    if (const char* home = std::getenv("HOME"); home && *home) return fs::path(home) / ".local/share/vmrt";
    return fs::temp_directory_path() / ("vmrt-" + std::to_string(::geteuid()));
}

const std::vector<std::string>& default_guest_modules() {
    static const std::vector<std::string> modules = [] {
        std::vector<std::string> m;
        for (const char* name : {"virtio",
                                 "virtio_ring",
                                 "virtio_pci",
                                 "virtio_pci_legacy_dev",
                                 "virtio_pci_modern_dev",
                                 "virtio_mmio",
                                 "virtio_net",
                                 "net_failover",
                                 "failover",
                                 "virtio_blk",
                                 "virtio_console",
                                 "virtio-rng",
                                 "virtio_balloon",
                                 "fuse",
                                 "virtiofs",
                                 "vsock",
                                 "vmw_vsock_virtio_transport_common",
                                 "vmw_vsock_virtio_transport",
                                 "button",
                                 "evdev",
                                 "cdrom",
                                 "isofs"})
            m.emplace_back(name);
        return m;
    }();
    return modules;
}

namespace {

guest_image build_or_reuse(const guest_build_options& options) {
    const fs::path data_dir = options.data_dir.empty() ? default_data_dir() : options.data_dir;
    const fs::path guest_root = data_dir / "guest";
    const fs::path cache =
        options.package_cache.empty() ? data_dir / "cache/packages" : options.package_cache;
    fs::create_directories(guest_root);
    fs::create_directories(cache);
    scratch_dir work(guest_root);

    std::string package = choose_kernel_package(options, cache, work);
    fs::path deb;
    try {
        deb = ensure_package(options, package, cache, work);
    } catch (const error& e) {
        // Offline with a newer kernel in apt's index: an older cached kernel still makes a guest.
        auto cached = options.kernel_package.empty() ? newest_cached_kernel(cache) : std::nullopt;
        if (!cached) throw;
        say(options, std::string("download failed (") + e.what() + "); using the cached " + *cached);
        package = *cached;
        deb = ensure_package(options, package, cache, work);
    }
    const build_inputs in = collect_inputs(options, package, std::move(deb));
    const fs::path target = image_dir(guest_root, in);

    if (!options.force) {
        if (auto img = load_cached(target, in)) {
            say(options, "cached: " + target.string());
            return *img;
        }
    }
    file_lock lock(guest_root / ".lock");
    // Another process may have finished the same image while we waited for the lock.
    if (!options.force) {
        if (auto img = load_cached(target, in)) {
            say(options, "cached: " + target.string());
            return *img;
        }
    }
    remove_stale_scratch(guest_root, ".work-");
    say(options, "building the default guest in " + target.string());
    auto img = build(options, in, target, work);
    say(options, "done: " + target.string());
    return img;
}

}  // namespace

guest_image build_default_guest(const guest_build_options& options) {
    // One error type at the API edge: file system and internal failures become vmrt::error too.
    try {
        return build_or_reuse(options);
    } catch (const error&) {
        throw;
    } catch (const fs::filesystem_error& e) {
        const auto& cat = e.code().category();
        error_code ec = (cat == std::system_category() || cat == std::generic_category())
                            ? error_code(e.code().value(), boost::system::system_category())
                            : make_error_code(boost::system::errc::io_error);
        fail(ec, e.what());
    } catch (const std::exception& e) {
        fail(errc::internal, std::string("building the default guest: ") + e.what());
    }
}

}  // namespace vmrt::image
