// Follows a growing file (a guest's serial log) with inotify: no polling. Reads start at the
// beginning of the file; the file need not exist yet (its directory is watched for its creation).
// Truncation (size drops below the read offset) and rotation (the name is replaced by a new
// file) are reported as a `reset` so that line parsers can start over.
#pragma once

#include <vmrt/error.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>

#include <cstddef>
#include <filesystem>
#include <memory>
#include <string>

namespace vmrt::io {

struct tail_chunk {
    bool reset = false;  ///< the file was truncated or replaced before `data` was read
    std::string data;    ///< new bytes (may be empty only when reset is true)
};

class file_tail {
public:
    using executor_type = boost::asio::any_io_executor;

    /// Upper bound of tail_chunk::data: a large backlog is delivered in several reads.
    static constexpr std::size_t max_chunk_bytes = 64 * 1024;

    /// Throws boost::system::system_error if the directory of `file` cannot be watched.
    file_tail(executor_type ex, std::filesystem::path file);
    file_tail(file_tail&&) noexcept;
    file_tail& operator=(file_tail&&) noexcept;
    ~file_tail();

    const std::filesystem::path& path() const noexcept;
    executor_type get_executor() const noexcept;

    /// Completes as soon as there are new bytes (or a reset) — immediately if some are already
    /// there. One read may be outstanding at a time. Cancellation (any type) completes the
    /// read with boost::asio::error::operation_aborted and loses no data. A second concurrent read
    /// completes with boost::asio::error::already_started, a read after close() with
    /// boost::asio::error::bad_descriptor. Never completes inline.
    /// Signature: void(error_code, tail_chunk).
    template <typename CompletionToken>
    auto async_read(CompletionToken&& token) {
        return boost::asio::async_initiate<CompletionToken, void(error_code, tail_chunk)>(
            [this](auto handler) { async_read_impl(std::move(handler)); }, token);
    }

    /// Drops its inotify watches; an outstanding read completes with operation_aborted.
    void close() noexcept;

    struct impl;

private:
    void async_read_impl(boost::asio::any_completion_handler<void(error_code, tail_chunk)> h);
    std::shared_ptr<impl> impl_;
};

}  // namespace vmrt::io
