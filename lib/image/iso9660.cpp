// build_iso9660 / write_iso9660 with libarchive's iso9660 writer, in memory.
#include "image/archive_handles.hpp"

#include <vmrt/image/iso9660.hpp>
#include <vmrt/io/atomic_file.hpp>

#include <archive.h>
#include <archive_entry.h>

#include <algorithm>
#include <cctype>
#include <memory>

namespace vmrt::image {
namespace {

[[noreturn]] void fail(errc code, std::string field, std::string message) {
    diagnostics diag;
    diag.message = std::move(message);
    diag.field = std::move(field);
    throw error(code, std::move(diag));
}

void check(struct archive* a, int rc, const char* what) {
    if (rc == ARCHIVE_OK) return;
    const char* why = archive_error_string(a);
    fail(errc::internal, {},
         std::string("writing an ISO 9660 image: ") + what + ": " + (why ? why : "unknown error"));
}

la_ssize_t append_to_string(struct archive*, void* client, const void* buffer, size_t length) {
    static_cast<std::string*>(client)->append(static_cast<const char*>(buffer), length);
    return static_cast<la_ssize_t>(length);
}

void check_inputs(const iso_files& files, std::string_view volume_id) {
    const bool id_ok = !volume_id.empty() && volume_id.size() <= 32 &&
                       std::all_of(volume_id.begin(), volume_id.end(),
                                   [](unsigned char c) { return std::isalnum(c) || c == '_'; });
    if (!id_ok)
        fail(errc::invalid_spec, "volume_id",
             "ISO 9660 volume id must be 1 to 32 characters of [A-Za-z0-9_], found \"" +
                 std::string(volume_id) + "\"");
    for (const auto& [name, contents] : files) {
        const bool name_ok = !name.empty() && name.size() <= 255 && name != "." && name != ".." &&
                             name.find_first_of(std::string_view("/\0", 2)) == std::string::npos;
        if (!name_ok)
            fail(errc::invalid_spec, "files[" + name + "]",
                 "an ISO file name must be one path component (1 to 255 bytes, no '/' or NUL, not . or ..)");
    }
}

}  // namespace

std::string build_iso9660(const iso_files& files, std::string_view volume_id) {
    check_inputs(files, volume_id);
    archive_writer_ptr a(archive_write_new());
    if (!a) fail(errc::internal, {}, "writing an ISO 9660 image: archive_write_new failed");
    check(a.get(), archive_write_set_format_iso9660(a.get()), "iso9660 format");
    // libarchive upper-cases the primary descriptor's volume id (ISO 9660 d-characters, at byte
    // 32808) and keeps the case in the Joliet one, which blkid reports: "cidata" gives the label
    // that genisoimage -volid cidata gives. cloud-init and the default guest's init ignore the case.
    const std::string id(volume_id);
    check(a.get(), archive_write_set_format_option(a.get(), "iso9660", "volume-id", id.c_str()), "volume-id");
    check(a.get(), archive_write_set_format_option(a.get(), "iso9660", "rockridge", "useful"), "rockridge");
    check(a.get(), archive_write_set_format_option(a.get(), "iso9660", "joliet", "1"), "joliet");
    // No 300 KiB of trailing zeros: the padding works around old CD-ROM read-ahead bugs, and a
    // seed is read through virtio-blk or an emulated CD whose size is exact.
    check(a.get(), archive_write_set_format_option(a.get(), "iso9660", "pad", nullptr), "!pad");
    // The writer emits whole 2 KiB sectors; no block padding on top.
    check(a.get(), archive_write_set_bytes_in_last_block(a.get(), 1), "bytes in last block");

    std::string image;
    // The system area and descriptors take about 64 KiB; each file whole 2 KiB sectors.
    std::size_t estimate = 96 * 1024;
    for (const auto& [name, contents] : files) estimate += (contents.size() + 2047) / 2048 * 2048;
    image.reserve(estimate);
    check(a.get(), archive_write_open(a.get(), &image, nullptr, append_to_string, nullptr), "open");
    archive_entry_ptr entry(archive_entry_new());
    for (const auto& [name, contents] : files) {
        archive_entry_clear(entry.get());
        archive_entry_set_pathname(entry.get(), name.c_str());
        archive_entry_set_filetype(entry.get(), AE_IFREG);
        archive_entry_set_perm(entry.get(), 0444);
        archive_entry_set_nlink(entry.get(), 1);
        archive_entry_set_uid(entry.get(), 0);
        archive_entry_set_gid(entry.get(), 0);
        archive_entry_set_mtime(entry.get(), 0, 0);
        archive_entry_set_size(entry.get(), static_cast<la_int64_t>(contents.size()));
        check(a.get(), archive_write_header(a.get(), entry.get()), "entry header");
        if (!contents.empty() && archive_write_data(a.get(), contents.data(), contents.size()) !=
                                     static_cast<la_ssize_t>(contents.size()))
            check(a.get(), ARCHIVE_FATAL, "entry data");
    }
    check(a.get(), archive_write_close(a.get()), "close");
    return image;
}

void write_iso9660(const iso_files& files, std::string_view volume_id, const std::filesystem::path& out) {
    const std::string image = build_iso9660(files, volume_id);
    error_code ec;
    io::write_file_atomically(out, image,
                              std::filesystem::perms::owner_read | std::filesystem::perms::owner_write |
                                  std::filesystem::perms::group_read | std::filesystem::perms::others_read,
                              ec);
    if (ec) {
        diagnostics diag;
        diag.message = "cannot write the ISO image \"" + out.string() + "\": " + ec.message();
        throw error(ec, std::move(diag));
    }
}

}  // namespace vmrt::image
