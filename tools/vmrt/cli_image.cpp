// `vmrt image pull|disk|list|verify|gc`: OCI images in vmrt's content-addressed store.
#include "cli.hpp"

#include <vmrt/image/oci_disk.hpp>
#include <vmrt/image/oci_pull.hpp>
#include <vmrt/image/oci_store.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <map>

namespace vmrt::cli {
namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;

// $VMRT_IMAGE_STORE, else $XDG_DATA_HOME/vmrt/images, else /var/lib/vmrt/images as root, else
// ~/.local/share/vmrt/images.
fs::path default_store() {
    if (const char* d = std::getenv("VMRT_IMAGE_STORE"); d && *d) return d;
    if (const char* d = std::getenv("XDG_DATA_HOME"); d && *d) return fs::path(d) / "vmrt/images";
    if (::geteuid() == 0) return "/var/lib/vmrt/images";
    const char* home = std::getenv("HOME");
    return fs::path(home ? home : "/tmp") / ".local/share/vmrt/images";
}

struct image_args {
    fs::path store = default_store();
    std::string platform;
    fs::path ca_file;
    std::vector<std::string> positional;
    bool remove_corrupt = false;
};

std::optional<image_args> parse(const std::vector<std::string>& args, const char* command) {
    image_args a;
    for (std::size_t i = 0; i < args.size(); ++i) {
        auto value = [&](const char* flag) -> std::optional<std::string> {
            if (i + 1 >= args.size()) {
                std::cerr << "vmrt image " << command << ": " << flag << " needs a value\n";
                return std::nullopt;
            }
            return args[++i];
        };
        if (args[i] == "--store") {
            auto v = value("--store");
            if (!v) return std::nullopt;
            a.store = *v;
        } else if (args[i] == "--platform") {
            auto v = value("--platform");
            if (!v) return std::nullopt;
            a.platform = *v;
        } else if (args[i] == "--ca") {
            auto v = value("--ca");
            if (!v) return std::nullopt;
            a.ca_file = *v;
        } else if (args[i] == "--remove-corrupt") {
            a.remove_corrupt = true;
        } else if (args[i].starts_with("--")) {
            std::cerr << "vmrt image " << command << ": unknown option " << args[i] << "\n";
            return std::nullopt;
        } else {
            a.positional.push_back(args[i]);
        }
    }
    return a;
}

template <typename T>
T run_sync(std::function<asio::awaitable<T>()> body) {
    asio::io_context ctx;
    auto future = asio::co_spawn(ctx, body(), asio::use_future);
    ctx.run();
    return future.get();
}

// A progress line per blob: redrawn in place on a terminal, one line per finished blob otherwise.
struct progress_printer {
    bool terminal = ::isatty(STDERR_FILENO) != 0;
    void operator()(const image::pull_progress& p) const {
        const std::string id = p.digest.substr(7, 12);
        if (p.finished) {
            std::cerr << (terminal ? "\r\033[K" : "") << p.kind << " " << id << ": "
                      << (p.cached ? "already in the store" : std::to_string(p.total) + " bytes") << "\n";
        } else if (terminal && p.total > 0) {
            const auto percent = p.done * 100 / p.total;
            std::string bar(percent / 4, '#');
            bar.resize(25, '.');
            std::cerr << "\r\033[K" << p.kind << " " << id << " [" << bar << "] " << percent << "%"
                      << std::flush;
        }
    }
};

int pull(const image_args& a) {
    if (a.positional.size() != 1) {
        std::cerr << "vmrt image pull: expected one image reference\n";
        return exit_usage;
    }
    auto ref = image::parse_image_reference(a.positional[0]);
    image::oci_store store(a.store);
    image::pull_options o;
    if (!a.platform.empty()) o.platform = image::parse_platform_spec(a.platform);
    if (!a.ca_file.empty()) o.client.tls.ca_file = a.ca_file;
    o.progress = progress_printer{};
    auto pulled = run_sync<image::pulled_image>([&]() { return image::pull_image(store, ref, o); });
    std::cout << "pulled " << ref.to_string() << "\nmanifest: " << pulled.manifest_digest << "\n"
              << "layers: " << pulled.manifest.layers.size() << " (" << pulled.blobs_downloaded
              << " blobs downloaded, " << pulled.blobs_cached << " already stored, "
              << pulled.bytes_downloaded << " bytes)\n";
    return exit_ok;
}

// The manifest digest a reference names in the store: the tag's target, or the digest itself;
// an index is resolved to the platform's manifest by pulling (which is a no-op when stored).
std::string stored_manifest(const image_args& a, image::oci_store& store, const image::image_reference& ref) {
    image::pull_options o;
    if (!a.platform.empty()) o.platform = image::parse_platform_spec(a.platform);
    if (!a.ca_file.empty()) o.client.tls.ca_file = a.ca_file;
    auto pulled = run_sync<image::pulled_image>([&]() { return image::pull_image(store, ref, o); });
    return pulled.manifest_digest;
}

int disk(const image_args& a) {
    if (a.positional.size() != 2) {
        std::cerr << "vmrt image disk: expected an image reference and an output file\n";
        return exit_usage;
    }
    auto ref = image::parse_image_reference(a.positional[0]);
    image::oci_store store(a.store);
    const auto manifest = stored_manifest(a, store, ref);
    const fs::path out = a.positional[1];
    auto result = run_sync<image::image_disk_result>(
        [&]() { return image::image_disk(store, manifest, a.store / "disks", out); });
    std::cout << out.string() << ": " << (result.built ? "built" : "from the cache") << " ("
              << result.cached.string() << "), "
              << (result.clone.method == image::clone_method::reflink ? "reflinked" : "copied") << "\n";
    return exit_ok;
}

int list(const image_args& a) {
    image::oci_store store(a.store);
    for (const auto& e : store.list_images())
        std::cout << e.ref.registry << "/" << e.ref.repository << ":" << e.ref.tag << " " << e.digest << "\n";
    return exit_ok;
}

int verify(const image_args& a) {
    image::oci_store store(a.store);
    auto action = a.remove_corrupt ? image::verify_action::remove : image::verify_action::report;
    auto report = run_sync<image::verify_report>([&]() { return store.verify_all(action); });
    for (const auto& c : report.corrupt) std::cout << "corrupt: " << c.digest << ": " << c.problem << "\n";
    std::cout << report.blobs_checked << " blobs, " << report.bytes_checked << " bytes checked, "
              << report.corrupt.size() << " corrupt\n";
    return report.corrupt.empty() ? exit_ok : exit_vm_failed;
}

int gc(const image_args& a) {
    image::oci_store store(a.store);
    auto r = store.gc();
    std::cout << r.removed_blobs.size() << " blobs and " << r.removed_temp_files.size()
              << " partial files removed, " << r.bytes_freed << " bytes freed\n";
    return exit_ok;
}

}  // namespace

int image_command(const std::vector<std::string>& args) {
    if (args.empty()) {
        std::cerr << "vmrt image: expected pull, disk, list, verify or gc\n";
        return exit_usage;
    }
    const std::string sub = args.front();
    auto parsed = parse({args.begin() + 1, args.end()}, sub.c_str());
    if (!parsed) return exit_usage;
    try {
        if (sub == "pull") return pull(*parsed);
        if (sub == "disk") return disk(*parsed);
        if (sub == "list") return list(*parsed);
        if (sub == "verify") return verify(*parsed);
        if (sub == "gc") return gc(*parsed);
    } catch (const error& e) {
        std::cerr << "vmrt image " << sub << ": " << e.what() << "\n";
        return exit_vm_failed;
    }
    std::cerr << "vmrt image: unknown subcommand \"" << sub << "\"\n";
    return exit_usage;
}

}  // namespace vmrt::cli
