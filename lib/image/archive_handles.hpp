// Owning handles for libarchive's writer and entry objects (freed with their own functions).
#pragma once

#include <archive.h>
#include <archive_entry.h>

#include <memory>

namespace vmrt::image {

struct archive_writer_deleter {
    void operator()(struct archive* a) const noexcept { archive_write_free(a); }
};
struct archive_entry_deleter {
    void operator()(archive_entry* e) const noexcept { archive_entry_free(e); }
};

using archive_writer_ptr = std::unique_ptr<struct archive, archive_writer_deleter>;
using archive_entry_ptr = std::unique_ptr<archive_entry, archive_entry_deleter>;

}  // namespace vmrt::image
