// Re-verification of stored blobs (`vmrt image verify`): chunked hashing that yields to the
// executor between chunks, so a multi-GiB layer neither starves other work nor ignores cancellation.
#include "image/oci_store_detail.hpp"

#include <vmrt/image/oci_store.hpp>
#include <vmrt/io/atomic_file.hpp>

#include <boost/asio/cancellation_state.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <unistd.h>

#include <cerrno>
#include <ctime>
#include <vector>

namespace vmrt::image {
namespace fs = std::filesystem;
using namespace store_detail;

namespace {

constexpr std::size_t verify_chunk = 1 << 20;

void set_aside(const fs::path& blob, const fs::path& root, const std::string& hex, verify_action action) {
    if (action == verify_action::remove) {
        if (::unlink(blob.c_str()) != 0 && errno != ENOENT)
            fail_errno(errno, "cannot remove " + blob.string());
    } else if (action == verify_action::quarantine) {
        const auto dir = quarantine_dir(root);
        std::error_code ec;
        fs::create_directories(dir, ec);
        if (ec) fail_errno(ec.value(), "cannot create " + dir.string());
        const auto target = dir / (hex + "." + std::to_string(std::time(nullptr)));
        if (::rename(blob.c_str(), target.c_str()) != 0 && errno != ENOENT)
            fail_errno(errno, "cannot move " + blob.string() + " to " + target.string());
        io::sync_directory(dir);
    }
    io::sync_directory(blob.parent_path());
}

}  // namespace

boost::asio::awaitable<verify_result> oci_store::verify(std::string digest, verify_action action) const {
    const auto hex = hex_of(digest);
    const auto path = blob_path(digest);
    auto fd = open_blob(digest);
    auto executor = co_await boost::asio::this_coro::executor;
    io::sha256 hash;
    std::vector<char> buf(verify_chunk);
    for (;;) {
        ssize_t n = ::read(fd.get(), buf.data(), buf.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) fail_errno(errno, "read " + path.string());
        if (n == 0) break;
        hash.update(buf.data(), static_cast<std::size_t>(n));
        co_await boost::asio::post(executor, boost::asio::use_awaitable);
        auto cs = co_await boost::asio::this_coro::cancellation_state;
        if (cs.cancelled() != boost::asio::cancellation_type::none)
            throw boost::system::system_error(boost::asio::error::operation_aborted, "verify " + digest);
    }
    verify_result r;
    r.digest = digest;
    r.actual = "sha256:" + hash.hex_digest();
    r.ok = r.actual == digest;
    if (!r.ok) {
        r.problem = "content hashes to " + r.actual;
        fd.reset();
        set_aside(path, root_, hex, action);
    }
    co_return r;
}

boost::asio::awaitable<verify_report> oci_store::verify_all(verify_action action) const {
    std::vector<std::string> digests;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(blobs_dir(root_), ec)) {
        auto digest = "sha256:" + entry.path().filename().string();
        if (is_sha256_digest(digest)) digests.push_back(std::move(digest));
    }
    if (ec) fail_errno(ec.value(), "cannot list " + blobs_dir(root_).string());
    verify_report report;
    for (auto& digest : digests) {
        std::uint64_t size = 0;
        try {
            size = blob_size(digest);
        } catch (const error& e) {
            if (e.code() == make_error_code(errc::not_found)) continue;  // removed meanwhile (gc)
            throw;
        }
        auto r = co_await verify(digest, action);
        ++report.blobs_checked;
        report.bytes_checked += size;
        if (!r.ok) report.corrupt.push_back(std::move(r));
    }
    co_return report;
}

}  // namespace vmrt::image
