#include "image/registry_session.hpp"

#include <vmrt/image/oci_digest.hpp>
#include <vmrt/image/oci_pull.hpp>
#include <vmrt/io/http_range.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <array>
#include <exception>
#include <functional>
#include <vector>

namespace vmrt::image {

namespace asio = boost::asio;
namespace http = boost::beast::http;

using namespace asio::experimental::awaitable_operators;

namespace {

constexpr std::size_t chunk_bytes = 256 * 1024;

struct pull_state {
    oci_store& store;
    registry_session& session;
    const pull_options& options;
    pulled_image& result;
    /// The pull's own disk thread: writes, hashing and fsync of blobs run there, so the caller's
    /// io_context is never blocked by the disk (a 100 MiB fsync takes ~60 ms here) and the next
    /// chunk is received while the previous one is written.
    asio::any_io_executor disk;

    void report(const pull_progress& p) const {
        if (options.progress) options.progress(p);
    }
};

struct fetched_manifest {
    std::string bytes;
    std::string digest;
    manifest_document document;
};

// A manifest or index by tag or digest. `expected` (a digest) and `expected_size` come from the
// reference or from the index that named it.
asio::awaitable<fetched_manifest> fetch_manifest(pull_state& st, const std::string& reference,
                                                 const std::string& expected,
                                                 std::optional<std::uint64_t> expected_size) {
    http::fields headers;
    headers.set(http::field::accept, media_type::manifest_accept);
    const std::vector<unsigned> ok{200};  // named: no braced temporaries in co_await (GCC 12)
    auto response = co_await st.session.get("manifests/" + reference, headers, ok);
    const std::string content_type(response.headers()[http::field::content_type]);
    const std::string announced(response.headers()["Docker-Content-Digest"]);
    fetched_manifest m;
    m.bytes = co_await response.async_read_all(max_manifest_bytes);
    m.digest = digest_of(m.bytes);
    const std::string where = st.session.reference().name() + " " + reference;
    if (!expected.empty()) verify_digest(m.bytes, expected);
    if (expected_size && *expected_size != m.bytes.size())
        throw error(make_error_code(errc::digest_mismatch),
                    {.message = where + ": the manifest has " + std::to_string(m.bytes.size()) +
                                " bytes, its descriptor says " + std::to_string(*expected_size)});
    if (!announced.empty() && is_supported_digest(announced) && announced != m.digest)
        throw error(make_error_code(errc::digest_mismatch),
                    {.message = where + ": the registry announced Docker-Content-Digest " + announced +
                                " but the manifest it sent hashes to " + m.digest});
    m.document = parse_manifest(m.bytes, content_type);
    st.store.put_blob(m.bytes, m.digest);
    pull_progress p;
    p.digest = m.digest;
    p.kind = std::holds_alternative<image_index>(m.document) ? "index" : "manifest";
    p.done = p.total = m.bytes.size();
    p.finished = true;
    st.report(p);
    co_return m;
}

// Results as values, so that two steps run side by side with `&&` and neither one's exception
// cuts the other short (the awaitable operators would cancel the partner).
struct step_result {
    std::exception_ptr error;
};
struct read_result {
    std::size_t n = 0;
    std::exception_ptr error;
};

// Runs a blocking store step on the disk thread and resumes on the caller's executor.
asio::awaitable<step_result> on_disk(asio::any_io_executor disk, std::function<void()> step) {
    auto body = [](std::function<void()> f) -> asio::awaitable<step_result> {
        step_result r;
        try {
            f();
        } catch (...) {
            r.error = std::current_exception();
        }
        co_return r;
    };
    co_return co_await asio::co_spawn(disk, body(std::move(step)), asio::use_awaitable);
}

// Fills `into` (TLS hands the body over one 16 KiB record at a time), stopping early only at the
// end of the body or at an error: one hand-over to the disk thread per full buffer, not per record.
// Bytes received before an error come back with it, so they are written before the resume.
asio::awaitable<read_result> read_chunk(io::http_response& response, asio::mutable_buffer into) {
    read_result r;
    try {
        while (r.n < into.size()) {
            const std::size_t n = co_await response.async_read_some(into + r.n);
            if (n == 0) break;
            r.n += n;
        }
    } catch (...) {
        r.error = std::current_exception();
    }
    co_return r;
}

// One blob into the store: resumed where an earlier attempt (or process) stopped, verified by the
// store's commit.
asio::awaitable<void> fetch_blob(pull_state& st, descriptor d, std::string kind) {
    auto writer = co_await st.store.begin_blob(d.digest, d.size);
    pull_progress p;
    p.digest = d.digest;
    p.kind = kind;
    p.total = d.size;
    const std::vector<unsigned> ok{200, 206};
    if (writer.already_present()) {
        ++st.result.blobs_cached;
        p.done = d.size;
        p.finished = p.cached = true;
        st.report(p);
        co_return;
    }
    if (writer.resumed()) ++st.result.resumed;
    std::array<std::vector<char>, 2> buffers;
    for (auto& b : buffers) b.resize(chunk_bytes);
    unsigned resumes = 0;
    for (;;) {
        const std::uint64_t offset = writer.offset();
        http::fields headers;
        if (offset > 0) headers.set(http::field::range, io::range_from(offset));
        auto response = co_await st.session.get("blobs/" + d.digest, headers, ok);
        if (response.status() == 200 && offset > 0) {
            writer.restart();  // the registry ignored the range: from byte 0 again
        } else if (response.status() == 206) {
            auto value = response.headers()[http::field::content_range];
            auto range = io::parse_content_range({value.data(), value.size()});
            if (!range || !range->first || *range->first != offset)
                throw error(make_error_code(errc::protocol_error),
                            {.message = "blob " + d.digest + ": asked for bytes from " +
                                        std::to_string(offset) + ", got Content-Range \"" +
                                        std::string(value.substr(0, 100)) + "\""});
        }
        // Two buffers: chunk k is written (on the disk thread) while chunk k+1 is received.
        bool broken = false;
        std::string why;
        std::size_t current = 0;
        auto got = co_await read_chunk(response, asio::buffer(buffers[current]));
        for (;;) {
            // A full buffer and no error: the body may go on, so receive the next chunk meanwhile.
            const bool full = !got.error && got.n == buffers[current].size();
            const std::exception_ptr failure = got.error;
            if (got.n > 0) {
                const char* data = buffers[current].data();
                const std::size_t n = got.n;
                current ^= 1;
                auto write = on_disk(st.disk, [&writer, data, n] { writer.write(data, n); });
                step_result written;
                if (full) {
                    auto next = read_chunk(response, asio::buffer(buffers[current]));
                    auto [w, received] = co_await (std::move(write) && std::move(next));
                    written = std::move(w);
                    got = std::move(received);
                } else {
                    written = co_await std::move(write);
                }
                if (written.error) std::rethrow_exception(written.error);
                st.result.bytes_downloaded += n;
                p.done = writer.offset();
                st.report(p);
                if (full) continue;
            }
            if (failure) {
                try {
                    std::rethrow_exception(failure);
                } catch (const vmrt::error& e) {
                    if (e.code() != errc::incomplete_body && e.code() != errc::timeout) throw;
                    broken = true;
                    why = e.what();
                }
            }
            break;
        }
        if (!broken) break;
        if (++resumes > st.options.max_resume_attempts)
            throw error(make_error_code(errc::incomplete_body),
                        {.message = "blob " + d.digest + ": " + why + "; gave up after " +
                                    std::to_string(resumes - 1) + " resume attempts at byte " +
                                    std::to_string(writer.offset())});
        ++st.result.resumed;
    }
    // Size and digest check, fsync, rename and directory fsync: disk work, on the disk thread.
    std::function<void()> commit = [&writer] {
        writer.commit();
    };
    auto committed = co_await on_disk(st.disk, std::move(commit));
    if (committed.error) std::rethrow_exception(committed.error);
    ++st.result.blobs_downloaded;
    p.done = d.size;
    p.finished = true;
    st.report(p);
}

// Downloads `blobs`, `parallel` at a time; the first failure cancels the others.
asio::awaitable<void> fetch_blobs(pull_state& st, const std::vector<descriptor>& blobs, unsigned parallel) {
    std::size_t next = 0;
    auto worker = [&]() -> asio::awaitable<void> {
        while (next < blobs.size()) {
            const auto& d = blobs[next++];
            co_await fetch_blob(st, d, "layer");
        }
    };
    auto ex = co_await asio::this_coro::executor;
    using op_type = decltype(asio::co_spawn(ex, worker(), asio::deferred));
    std::vector<op_type> ops;
    const auto n = std::max(1u, std::min<unsigned>(parallel, static_cast<unsigned>(blobs.size())));
    for (unsigned i = 0; i < n; ++i) ops.push_back(asio::co_spawn(ex, worker(), asio::deferred));
    auto [order, failures] = co_await asio::experimental::make_parallel_group(std::move(ops))
                                 .async_wait(asio::experimental::wait_for_one_error(), asio::deferred);
    for (auto& f : failures)
        if (f) std::rethrow_exception(f);
}

}  // namespace

asio::awaitable<pulled_image> pull_image(oci_store& store, image_reference reference, pull_options options) {
    pulled_image result;
    result.reference = reference;
    registry_credentials credentials;
    if (options.credentials)
        credentials = *options.credentials;
    else
        credentials = co_await load_registry_credentials(reference.domain, options.credential_lookup);

    auto ex = co_await asio::this_coro::executor;
    io::https_client client(ex, options.client);
    registry_session session(client, reference, credentials, options.retry);
    // Declared before anything that posts to it and joined when the pull ends; every disk step is
    // awaited, so no step is pending then.
    asio::thread_pool disk_thread(1);
    pull_state st{store, session, options, result, disk_thread.get_executor()};

    auto top = co_await fetch_manifest(st, reference.reference(), reference.digest, std::nullopt);
    fetched_manifest chosen;
    if (auto* index = std::get_if<image_index>(&top.document)) {
        result.index_digest = top.digest;
        const descriptor& entry = select_platform(*index, options.platform);
        chosen = co_await fetch_manifest(st, entry.digest, entry.digest, entry.size);
        if (!std::holds_alternative<image_manifest>(chosen.document))
            throw error(make_error_code(errc::protocol_error),
                        {.message = reference.to_string() + ": the index entry " + entry.digest +
                                    " is not an image manifest"});
    } else {
        chosen = std::move(top);
    }
    result.manifest_digest = chosen.digest;
    result.manifest = std::get<image_manifest>(chosen.document);
    check_pullable(result.manifest);

    co_await fetch_blob(st, result.manifest.config, "config");
    result.config =
        parse_image_config(store.read_small_blob(result.manifest.config.digest, max_config_bytes));
    if (result.config.diff_ids.size() != result.manifest.layers.size())
        throw error(make_error_code(errc::protocol_error),
                    {.message = reference.to_string() + ": the config lists " +
                                std::to_string(result.config.diff_ids.size()) + " layers, the manifest " +
                                std::to_string(result.manifest.layers.size())});
    co_await fetch_blobs(st, result.manifest.layers, options.parallel_blobs);

    if (!reference.tag.empty() && reference.digest.empty())
        store.set_tag(
            tag_ref{.registry = reference.domain, .repository = reference.repository, .tag = reference.tag},
            result.index_digest.empty() ? result.manifest_digest : result.index_digest);
    result.busy_retries = session.busy_retries();
    result.token_fetches = session.token_fetches();
    co_return result;
}

}  // namespace vmrt::image
