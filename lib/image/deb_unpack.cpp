#include "image/deb_unpack.hpp"

#include "image/cpio_writer.hpp"  // safe_relative_path

#include <vmrt/error.hpp>
#include <vmrt/io/unique_fd.hpp>

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <memory>
#include <utility>

namespace vmrt::image {
using io::unique_fd;
namespace {

struct reader_deleter {
    void operator()(struct archive* a) const noexcept { archive_read_free(a); }
};
using reader = std::unique_ptr<struct archive, reader_deleter>;

[[noreturn]] void malformed(const std::filesystem::path& deb, const std::string& what) {
    throw error(make_error_code(errc::protocol_error), {.message = deb.string() + ": " + what});
}

[[noreturn]] void archive_failed(const std::filesystem::path& deb, struct archive* a,
                                 const std::string& what) {
    const char* why = archive_error_string(a);
    malformed(deb, what + ": " + (why ? why : "unknown libarchive error"));
}

[[noreturn]] void system_failed(const std::string& what) {
    throw error(error_code(errno, boost::system::system_category()), {.message = what});
}

// Opens (creating as needed) the directory `relative` below `root`, one component at a time and
// never through a symlink: a link planted where a directory is expected makes openat fail.
unique_fd open_directory_below(int root, const std::string& relative, const std::string& shown) {
    unique_fd dir(::fcntl(root, F_DUPFD_CLOEXEC, 3));
    if (dir.get() < 0) system_failed("dup");
    std::size_t start = 0;
    while (start < relative.size()) {
        auto slash = relative.find('/', start);
        if (slash == std::string::npos) slash = relative.size();
        const std::string part = relative.substr(start, slash - start);
        if (::mkdirat(dir.get(), part.c_str(), 0755) != 0 && errno != EEXIST)
            system_failed("cannot create directory for " + shown);
        unique_fd next(::openat(dir.get(), part.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (next.get() < 0) system_failed("cannot open directory for " + shown);
        dir = std::move(next);
        start = slash + 1;
    }
    return dir;
}

// A member name as stored: "./boot/x", "boot/x", "./lib/" (a directory). Returns the normalized
// relative path, "" for the archive's root entry, or nothing if the name is unsafe.
std::optional<std::string> member_path(std::string_view name) {
    if (name.size() > 1 && name.back() == '/') name.remove_suffix(1);
    if (name == "." || name == "./") return std::string();
    return safe_relative_path(name);
}

struct extraction {
    const std::filesystem::path& deb;
    int root;
    const deb_member_map& map;
    deb_unpack_limits limits;
    std::uint64_t total = 0;
    std::vector<std::string> written;

    void copy_data(struct archive* data, int fd, const std::string& name) {
        std::array<char, 64 * 1024> buffer;
        while (true) {
            la_ssize_t n = archive_read_data(data, buffer.data(), buffer.size());
            if (n < 0) archive_failed(deb, data, "reading " + name);
            if (n == 0) return;
            total += static_cast<std::uint64_t>(n);
            if (total > limits.max_total_bytes) malformed(deb, "unpacks to more than the allowed size");
            for (la_ssize_t done = 0; done < n;) {
                ssize_t w = ::write(fd, buffer.data() + done, static_cast<std::size_t>(n - done));
                if (w < 0 && errno == EINTR) continue;
                if (w < 0) system_failed("cannot write " + name);
                done += w;
            }
        }
    }

    void extract_file(struct archive* data, const std::string& target) {
        auto slash = target.rfind('/');
        unique_fd dir =
            open_directory_below(root, slash == std::string::npos ? "" : target.substr(0, slash), target);
        const std::string leaf = slash == std::string::npos ? target : target.substr(slash + 1);
        unique_fd file(
            ::openat(dir.get(), leaf.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644));
        if (file.get() < 0) system_failed("cannot create " + target);
        copy_data(data, file.get(), target);
        written.push_back(target);
    }

    // Walks the data archive. Every name is checked, extracted or not: a package with one
    // hostile name is not a package to trust with the others.
    void run(struct archive* data) {
        archive_entry* e = nullptr;
        int rc;
        while ((rc = archive_read_next_header(data, &e)) == ARCHIVE_OK || rc == ARCHIVE_WARN) {
            const char* raw = archive_entry_pathname(e);
            if (!raw) malformed(deb, "a member without a usable name");
            auto path = member_path(raw);
            if (!path) malformed(deb, "unsafe member name \"" + std::string(raw) + "\"");
            if (path->empty() || archive_entry_filetype(e) != AE_IFREG || archive_entry_hardlink(e)) continue;
            auto target = map(*path);
            if (!target) continue;
            auto safe_target = safe_relative_path(*target);
            if (!safe_target) malformed(deb, "unsafe destination \"" + *target + "\" for " + *path);
            extract_file(data, *safe_target);
        }
        if (rc != ARCHIVE_EOF) archive_failed(deb, data, "reading the data archive");
    }
};

// libarchive reads the inner data.tar.* through this callback, straight from the ar member.
struct member_stream {
    struct archive* outer;
    std::array<char, 64 * 1024> buffer;
};

la_ssize_t read_member(struct archive* inner, void* client, const void** out) {
    auto* s = static_cast<member_stream*>(client);
    la_ssize_t n = archive_read_data(s->outer, s->buffer.data(), s->buffer.size());
    if (n < 0) {
        archive_set_error(inner, EIO, "%s", archive_error_string(s->outer));
        return -1;
    }
    *out = s->buffer.data();
    return n;
}

}  // namespace

std::vector<std::string> unpack_deb(const std::filesystem::path& deb,
                                    const std::filesystem::path& destination, const deb_member_map& map,
                                    const deb_unpack_limits& limits) {
    unique_fd root(::open(destination.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (root.get() < 0) system_failed("cannot open " + destination.string());

    reader outer(archive_read_new());
    if (!outer) throw std::bad_alloc();
    archive_read_support_format_ar(outer.get());
    if (archive_read_open_filename(outer.get(), deb.c_str(), 64 * 1024) != ARCHIVE_OK)
        archive_failed(deb, outer.get(), "not a readable .deb");

    bool seen_version = false;
    archive_entry* e = nullptr;
    int rc;
    while ((rc = archive_read_next_header(outer.get(), &e)) == ARCHIVE_OK || rc == ARCHIVE_WARN) {
        const std::string name = archive_entry_pathname(e) ? archive_entry_pathname(e) : "";
        if (name == "debian-binary") {
            std::array<char, 16> version{};
            la_ssize_t n = archive_read_data(outer.get(), version.data(), version.size());
            if (n < 2 || std::string_view(version.data(), 2) != "2.")
                malformed(deb, "not a Debian 2.x package");
            seen_version = true;
            continue;
        }
        if (!name.starts_with("data.tar")) continue;
        if (!seen_version) malformed(deb, "data archive before debian-binary");

        member_stream stream{outer.get(), {}};
        reader inner(archive_read_new());
        if (!inner) throw std::bad_alloc();
        archive_read_support_filter_all(inner.get());
        archive_read_support_format_tar(inner.get());
        if (archive_read_open(inner.get(), &stream, nullptr, read_member, nullptr) != ARCHIVE_OK)
            archive_failed(deb, inner.get(), "opening " + name);
        extraction x{deb, root.get(), map, limits, 0, {}};
        x.run(inner.get());
        return std::move(x.written);
    }
    if (rc != ARCHIVE_EOF) archive_failed(deb, outer.get(), "reading the package");
    malformed(deb, "no data.tar member");
}

}  // namespace vmrt::image
