// The state of applying one layer: the libarchive reader, the paths this layer wrote (whiteouts
// must spare them), the directories whose mode and times are set once all their children exist.
#pragma once

#include "image/layer_fs.hpp"

#include <vmrt/image/layer_apply.hpp>

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>

#include <cstddef>
#include <filesystem>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

namespace vmrt::image::detail {

inline constexpr std::size_t max_skipped_listed = 100;

struct archive_reader_deleter {
    void operator()(struct archive* a) const noexcept { archive_read_free(a); }
};

class layer_applier {
public:
    layer_applier(int root_fd, std::filesystem::path blob, const layer_options& options);
    layer_summary run();

private:
    // layer_applier.cpp: reading the archive, whiteouts, directory metadata.
    void open_archive();
    void apply_entry(archive_entry* entry, const std::string& raw);
    void apply_whiteout(const std::vector<std::string>& parts, const std::string& raw);
    void apply_opaque(const std::vector<std::string>& parts, const std::string& raw);
    void remember_written(const std::vector<std::string>& parts);
    bool written_by_this_layer(const std::string& rel) const { return written_.contains(rel); }
    void finish_directories();
    void skip(const std::string& raw, const std::string& reason);

    // layer_entries.cpp: writing one non-whiteout entry.
    void apply_regular(archive_entry* entry, const std::vector<std::string>& parts, const std::string& raw);
    /// The directory that will hold the entry, created (0755, recorded as written) where missing.
    unique_fd open_parent(const std::vector<std::string>& parts, const std::string& raw);
    /// Clears the slot `name` in `dir_fd` for a new entry; returns true if an existing directory
    /// was kept because the new entry is a directory too (a merge).
    bool prepare_slot(int dir_fd, const std::string& name, bool new_is_dir);
    void make_file(archive_entry* entry, int dir_fd, const std::string& name, const std::string& raw);
    void make_directory(archive_entry* entry, int dir_fd, const std::vector<std::string>& parts,
                        const std::string& raw);
    void make_symlink(archive_entry* entry, int dir_fd, const std::string& name, const std::string& raw);
    void make_hardlink(archive_entry* entry, int dir_fd, const std::string& name, const std::string& raw);
    void make_node(archive_entry* entry, int dir_fd, const std::string& name, const std::string& raw);
    void set_owner(int dir_fd, const std::string& name, archive_entry* entry, const std::string& raw);
    void set_xattrs(int fd, archive_entry* entry, const std::string& raw);
    mode_t permissions(archive_entry* entry, bool may_clear_setid);
    [[noreturn]] void fail_entry(const std::string& raw, const std::string& what, int err) const;

    int root_fd_;
    std::filesystem::path blob_;
    layer_options options_;
    bool as_root_;
    std::unique_ptr<struct archive, archive_reader_deleter> archive_;
    unique_fd blob_fd_;
    std::unordered_set<std::string> written_;

    struct pending_directory {
        std::vector<std::string> parts;
        mode_t mode;
        struct timespec times[2];
    };
    std::vector<pending_directory> directories_;
    layer_summary summary_;
};

}  // namespace vmrt::image::detail
