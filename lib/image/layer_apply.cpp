// Applies one image layer into a rootfs directory through descriptors resolved inside it; see
// include/vmrt/image/layer_apply.hpp for the rules. The entry writers live in layer_entries.cpp.
#include "image/layer_applier.hpp"
#include "image/layer_fs.hpp"
#include "image/layer_paths.hpp"

#include <vmrt/image/layer_apply.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

namespace vmrt::image {

namespace fs = std::filesystem;

layer_summary& layer_summary::operator+=(const layer_summary& other) {
    entries_applied += other.entries_applied;
    whiteouts_applied += other.whiteouts_applied;
    opaque_dirs += other.opaque_dirs;
    bytes_written += other.bytes_written;
    setid_cleared += other.setid_cleared;
    skipped_count += other.skipped_count;
    for (const auto& s : other.skipped)
        if (skipped.size() < detail::max_skipped_listed) skipped.push_back(s);
    return *this;
}

blob_compression compression_for_media_type(std::string_view media_type) {
    // The OCI types, their non-distributable variants, and Docker's schema 2 types.
    static constexpr std::array<std::pair<std::string_view, blob_compression>, 10> known{{
        {"application/vnd.oci.image.layer.v1.tar", blob_compression::none},
        {"application/vnd.oci.image.layer.v1.tar+gzip", blob_compression::gzip},
        {"application/vnd.oci.image.layer.v1.tar+zstd", blob_compression::zstd},
        {"application/vnd.oci.image.layer.nondistributable.v1.tar", blob_compression::none},
        {"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", blob_compression::gzip},
        {"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd", blob_compression::zstd},
        {"application/vnd.docker.image.rootfs.diff.tar", blob_compression::none},
        {"application/vnd.docker.image.rootfs.diff.tar.gzip", blob_compression::gzip},
        {"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", blob_compression::gzip},
        {"application/vnd.docker.image.rootfs.diff.tar.zstd", blob_compression::zstd},
    }};
    for (const auto& [type, compression] : known)
        if (type == media_type) return compression;
    throw vmrt::error(errc::unsupported, {.message = "unsupported layer media type \"" +
                                                     detail::sanitise_name(media_type) + "\"",
                                          .field = "media_type"});
}

layer_summary apply_layer(const fs::path& rootfs, const fs::path& layer_blob, const layer_options& options) {
    const auto root = detail::open_root(rootfs);
    detail::layer_applier applier(root.get(), layer_blob, options);
    return applier.run();
}

namespace {

[[noreturn]] void fail_path(int err, const std::string& what, const fs::path& path,
                            const std::string& field) {
    throw vmrt::error(error_code(err, boost::system::system_category()),
                      {.message = what + " " + path.string() + ": " + std::strerror(err), .field = field});
}

/// The temporary directory of apply_layers, removed unless released.
class temp_tree {
public:
    explicit temp_tree(const fs::path& target) {
        parent_ = target.has_parent_path() ? target.parent_path() : fs::path(".");
        parent_fd_.reset(::open(parent_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (!parent_fd_) fail_path(errno, "cannot open the directory of", target, "rootfs");
        static unsigned counter = 0;
        for (int attempt = 0; attempt < 16; ++attempt) {
            name_ = "." + target.filename().string() + ".layers-" + std::to_string(::getpid()) + "-" +
                    std::to_string(++counter);
            if (::mkdirat(parent_fd_.get(), name_.c_str(), 0755) == 0) return;
            if (errno != EEXIST) fail_path(errno, "cannot create a directory beside", target, "rootfs");
        }
        fail_path(EEXIST, "cannot create a directory beside", target, "rootfs");
    }
    temp_tree(const temp_tree&) = delete;
    temp_tree& operator=(const temp_tree&) = delete;
    ~temp_tree() {
        if (name_.empty()) return;
        try {
            detail::remove_tree(parent_fd_.get(), name_);
        } catch (...) {  // nothing more can be done in a destructor; the name is unique
        }
    }
    fs::path path() const { return parent_ / name_; }
    /// Renames the tree to `target` (never over an existing entry) and makes the rename durable.
    void commit(const fs::path& target) {
        if (::renameat2(parent_fd_.get(), name_.c_str(), parent_fd_.get(), target.filename().c_str(),
                        RENAME_NOREPLACE) != 0)
            fail_path(errno, "cannot rename the applied layers to", target, "rootfs");
        name_.clear();
        ::fsync(parent_fd_.get());
    }

private:
    fs::path parent_;
    detail::unique_fd parent_fd_;
    std::string name_;
};

}  // namespace

layer_summary apply_layers(const fs::path& rootfs, const std::vector<layer>& layers) {
    if (rootfs.empty() || rootfs.filename().empty() || rootfs.filename() == "." || rootfs.filename() == "..")
        throw vmrt::error(boost::system::errc::make_error_code(boost::system::errc::invalid_argument),
                          {.message = "the rootfs path \"" + rootfs.string() + "\" names no new directory",
                           .field = "rootfs"});
    struct stat st {};
    if (::lstat(rootfs.c_str(), &st) == 0) fail_path(EEXIST, "refusing to replace", rootfs, "rootfs");
    temp_tree temp(rootfs);
    layer_summary total;
    for (const auto& l : layers) total += apply_layer(temp.path(), l.blob, l.options);
    {
        // The tree becomes visible under its final name only once its data is on disk.
        const auto root = detail::open_root(temp.path());
        if (::syncfs(root.get()) != 0) fail_path(errno, "cannot sync", temp.path(), "rootfs");
    }
    temp.commit(rootfs);
    return total;
}

}  // namespace vmrt::image
