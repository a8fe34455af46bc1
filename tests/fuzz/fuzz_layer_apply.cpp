// Fuzz target: apply_layer on arbitrary bytes (tar, tar+gzip, tar+zstd, garbage). Everything
// happens in a private directory made once under $TMPDIR (default /tmp): <dir>/layer (the input),
// <dir>/rootfs (applied into, recreated per input) and <dir>/sentinel (a file and a symlink that
// no input may change). Invariants: no crash; only vmrt::error escapes; the sentinel is unchanged
// and <dir> holds nothing but those three entries after every input. The directory is removed at
// exit.
#include <vmrt/image/layer_apply.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>

namespace {

namespace fs = std::filesystem;

struct private_dir {
    fs::path root;
    std::string sentinel_state;
    private_dir() {
        const char* tmp = std::getenv("TMPDIR");
        std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/vmrt-fuzz-layer-XXXXXX";
        if (!::mkdtemp(pattern.data())) std::abort();
        root = pattern;
        fs::create_directories(root / "sentinel");
        std::ofstream(root / "sentinel/secret") << "do not touch\n";
        fs::create_symlink("secret", root / "sentinel/link");
        sentinel_state = state();
    }
    ~private_dir() {
        std::error_code ec;
        fs::remove_all(root, ec);
    }
    std::string state() const {
        std::string out;
        for (const auto& e : fs::recursive_directory_iterator(root / "sentinel")) {
            struct stat st {};
            if (::lstat(e.path().c_str(), &st) != 0) std::abort();
            out += e.path().string() + " " + std::to_string(st.st_mode) + " " + std::to_string(st.st_size) +
                   " " + std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec) + "\n";
        }
        std::ifstream in(root / "sentinel/secret");
        out += std::string(std::istreambuf_iterator<char>(in), {});
        return out;
    }
};

private_dir& dir() {
    static private_dir d;
    return d;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    auto& d = dir();
    {
        std::ofstream out(d.root / "layer", std::ios::binary | std::ios::trunc);
        out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    }
    fs::remove_all(d.root / "rootfs");
    fs::create_directory(d.root / "rootfs");
    try {
        vmrt::image::apply_layer(d.root / "rootfs", d.root / "layer");
    } catch (const vmrt::error&) {
    }
    if (d.state() != d.sentinel_state) std::abort();
    std::set<std::string> names;
    for (const auto& e : fs::directory_iterator(d.root)) names.insert(e.path().filename().string());
    if (names != std::set<std::string>{"layer", "rootfs", "sentinel"}) std::abort();
    return 0;
}
