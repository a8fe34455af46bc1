// file_tail is level-triggered: inotify events are only wake-ups, and every wake-up (and every
// new read) re-examines the file itself (fstat of the open descriptor, stat of the name). So a
// lost, merged or overflowed event can delay nothing: the watches are always in place before
// the file is examined, hence any later change queues a fresh event.
//
// The events come from the inotify instance that every file_tail of an execution context shares
// (inotify_hub.hpp: instances are scarce, watches are not). The state lives in a shared `impl`
// that the hub only holds weakly, so a file_tail destroyed while a wake-up is on its way leaves
// nothing pointing at freed memory. The impl asks the hub to wait only while the caller has a
// read outstanding, so an idle file_tail does not keep io_context::run() busy.
//
// Like any Asio I/O object it is not thread-safe: use it (and emit the cancellation signals bound
// to its reads) from one thread or strand. Known blind spots, inherent to following by size:
// a truncation followed by a rewrite past our offset before we look is not seen as a reset, and
// bytes written to the old file after we switched to its replacement are not read.
#include "io/inotify_hub.hpp"

#include <vmrt/io/file_tail.hpp>
#include <vmrt/io/unique_fd.hpp>

#include <boost/asio/append.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>
#include <boost/assert.hpp>

#include <fcntl.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <optional>
#include <utility>

namespace vmrt::io {

namespace asio = boost::asio;

namespace {

using read_handler = asio::any_completion_handler<void(error_code, tail_chunk)>;

// The directory tells us when the name gets a (new) file or loses it; the file's own watch
// tells us when the file we follow changes, even after it was renamed or unlinked.
constexpr std::uint32_t dir_mask = IN_CREATE | IN_MOVED_TO | IN_DELETE | IN_MOVED_FROM | IN_ONLYDIR;
constexpr std::uint32_t file_mask = IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_DELETE_SELF | IN_MOVE_SELF;

error_code last_error() { return {errno, boost::system::system_category()}; }

// Identity of a file: the name may be given to another file at any time (rotation).
struct file_id {
    dev_t dev = 0;
    ino_t ino = 0;
    friend bool operator==(const file_id&, const file_id&) = default;
};

file_id id_of(const struct stat& st) { return {st.st_dev, st.st_ino}; }

}  // namespace

struct file_tail::impl final : std::enable_shared_from_this<impl>, detail::inotify_subscriber {
    impl(executor_type ex, std::filesystem::path file);

    void start();
    void read(read_handler handler);
    void close() noexcept;
    void on_inotify_wakeup() override;

    const executor_type executor;
    const std::filesystem::path given_path;

private:
    struct outcome {
        error_code ec;
        tail_chunk chunk;
    };

    std::optional<outcome> examine();
    error_code open_file();
    bool name_moved_on() const;
    error_code read_some(std::size_t max, std::string& out);

    void park(read_handler handler);
    read_handler take_pending(bool clear_slot);
    void cancel(std::uint64_t serial);
    void wait_for_events();
    void restore_lost_watches();
    detail::watch_id watch_file(int fd, error_code& ec);
    void complete_later(read_handler handler, error_code ec, tail_chunk chunk = {});

    std::filesystem::path path_;  // absolute: immune to a later chdir
    std::filesystem::path dir_;
    std::string name_;  // filtered from the directory's events
    detail::inotify_subscription inotify_;
    detail::watch_id dir_watch_ = 0;
    detail::watch_id file_watch_ = 0;

    unique_fd file_;
    file_id file_id_;
    bool had_file_ = false;  // a file seen before makes the next one a rotation
    off_t offset_ = 0;       // advanced only by bytes handed to a caller
    bool pending_reset_ = false;

    read_handler pending_;
    asio::cancellation_slot slot_;
    std::uint64_t read_serial_ = 0;  // tells a stale cancellation handler from the current one
    bool closed_ = false;
};

file_tail::impl::impl(executor_type ex, std::filesystem::path file)
    : executor(std::move(ex)), given_path(std::move(file)), path_(std::filesystem::absolute(given_path)),
      dir_(path_.parent_path()), name_(path_.filename().string()) {
    if (name_.empty() || name_ == "." || name_ == "..")
        throw boost::system::system_error(make_error_code(boost::system::errc::invalid_argument),
                                          "file_tail: not a file name: " + given_path.string());
}

// Not in the constructor: the hub holds us by weak_ptr, which needs a shared_ptr to exist.
void file_tail::impl::start() {
    inotify_ = detail::inotify_subscription(executor, weak_from_this());
    error_code ec;
    dir_watch_ = inotify_.add_watch(dir_.c_str(), dir_mask, name_, ec);
    if (ec) throw boost::system::system_error(ec, "file_tail: cannot watch " + dir_.string());
}

void file_tail::impl::read(read_handler handler) {
    if (closed_) return complete_later(std::move(handler), asio::error::bad_descriptor);
    if (pending_) return complete_later(std::move(handler), asio::error::already_started);
    // Whatever the hub saw so far is covered by the look below.
    inotify_.forget_pending();
    restore_lost_watches();
    if (auto result = examine())
        return complete_later(std::move(handler), result->ec, std::move(result->chunk));
    park(std::move(handler));
    wait_for_events();
}

void file_tail::impl::close() noexcept {
    if (closed_) return;
    closed_ = true;
    inotify_.close();  // drops our watches; a wake-up already on its way is dropped too
    dir_watch_ = file_watch_ = 0;
    file_.reset();
    if (pending_) complete_later(take_pending(true), asio::error::operation_aborted);
}

// Looks at the file without waiting: new bytes, a reset, an error, or nothing yet.
std::optional<file_tail::impl::outcome> file_tail::impl::examine() {
    // Each round either returns or moves to a newer file; the bound only matters if the name is
    // replaced faster than we can look at it.
    for (int round = 0; round < 4; ++round) {
        if (!file_) {
            auto ec = open_file();
            if (ec == boost::system::errc::no_such_file_or_directory) return std::nullopt;
            if (ec) return outcome{ec, {}};
        }
        struct stat st {};
        if (::fstat(file_.get(), &st) != 0) return outcome{last_error(), {}};
        if (st.st_size < offset_) {  // truncated: the parser must start over
            offset_ = 0;
            pending_reset_ = true;
        }
        if (st.st_size > offset_) {
            std::string data;
            auto want = static_cast<std::size_t>(std::min<off_t>(st.st_size - offset_, max_chunk_bytes));
            if (auto ec = read_some(want, data)) return outcome{ec, {}};
            if (!data.empty()) return outcome{{}, {std::exchange(pending_reset_, false), std::move(data)}};
        }
        // The old file is drained: only now follow the name to its new file, if it has one. A
        // name without a file keeps us on the old one (a writer may still hold it open).
        if (!name_moved_on()) break;
        auto ec = open_file();
        if (ec == boost::system::errc::no_such_file_or_directory) break;  // replaced and removed again
        if (ec) return outcome{ec, {}};
    }
    if (pending_reset_) return outcome{{}, {std::exchange(pending_reset_, false), {}}};
    return std::nullopt;
}

// Opens the file the name refers to now and makes it the followed one.
error_code file_tail::impl::open_file() {
    unique_fd opened(::open(path_.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
    if (!opened) return last_error();
    struct stat st {};
    if (::fstat(opened.get(), &st) != 0) return last_error();
    error_code ec;
    auto watch = watch_file(opened.get(), ec);
    if (ec) return ec;
    // Added before the old one is removed: should both be the same inode, the hub keeps its wd.
    inotify_.remove_watch(file_watch_);
    file_watch_ = watch;
    if (had_file_) {
        offset_ = 0;
        pending_reset_ = true;
    }
    had_file_ = true;
    file_ = std::move(opened);
    file_id_ = id_of(st);
    return {};
}

// Watches the inode behind the descriptor, not the name: the name may already have moved on
// between open() and here. Without /proc, the name is the best we have.
detail::watch_id file_tail::impl::watch_file(int fd, error_code& ec) {
    auto by_fd = "/proc/self/fd/" + std::to_string(fd);
    auto watch = inotify_.add_watch(by_fd.c_str(), file_mask, {}, ec);
    if (ec && ec != asio::error::operation_aborted)
        watch = inotify_.add_watch(path_.c_str(), file_mask, {}, ec);
    return watch;
}

// The kernel drops a watch whose inode goes away or whose filesystem is unmounted. Watch again
// whatever is still there; a directory that is gone for good has nothing more to tell, and the
// attempt is repeated on each look in case it comes back.
void file_tail::impl::restore_lost_watches() {
    for (auto lost : inotify_.take_lost()) {
        if (lost == dir_watch_) dir_watch_ = 0;
        if (lost == file_watch_) file_watch_ = 0;
    }
    error_code ignored;
    if (!dir_watch_) dir_watch_ = inotify_.add_watch(dir_.c_str(), dir_mask, name_, ignored);
    if (!file_watch_ && file_) file_watch_ = watch_file(file_.get(), ignored);
}

bool file_tail::impl::name_moved_on() const {
    struct stat st {};
    if (::stat(path_.c_str(), &st) != 0) return false;
    return id_of(st) != file_id_;
}

error_code file_tail::impl::read_some(std::size_t max, std::string& out) {
    out.resize(max);
    ssize_t got;
    do {
        got = ::pread(file_.get(), out.data(), max, offset_);
    } while (got < 0 && errno == EINTR);
    if (got < 0) {
        out.clear();
        return last_error();
    }
    out.resize(static_cast<std::size_t>(got));
    offset_ += got;
    return {};
}

void file_tail::impl::park(read_handler handler) {
    pending_.swap(handler);  // not operator=, see take_pending()
    ++read_serial_;
    slot_ = asio::get_associated_cancellation_slot(pending_);
    if (slot_.is_connected()) {
        // weak_ptr: the slot belongs to the caller's signal and may outlive us.
        slot_.assign([weak = weak_from_this(), serial = read_serial_](asio::cancellation_type type) {
            if (type == asio::cancellation_type::none) return;
            if (auto self = weak.lock()) self->cancel(serial);
        });
    }
}

read_handler file_tail::impl::take_pending(bool clear_slot) {
    if (clear_slot && slot_.is_connected()) slot_.clear();
    slot_ = {};
    // Boost 1.81's any_completion_handler move assignment recurses forever (it copies `other` as
    // an lvalue into a new wrapper); swap and move construction are sound.
    read_handler handler;
    handler.swap(pending_);
    return handler;
}

// Runs inside the caller's signal emission: the slot is not cleared here (that would destroy the
// running handler); read_serial_ makes the leftover handler harmless.
void file_tail::impl::cancel(std::uint64_t serial) {
    if (!pending_ || serial != read_serial_) return;
    complete_later(take_pending(false), asio::error::operation_aborted);
    // Nobody is waiting any more: the hub may stop reading. The next read looks at the file
    // first anyway.
    inotify_.stop_waiting();
}

void file_tail::impl::wait_for_events() {
    if (auto ec = inotify_.wait()) complete_later(take_pending(true), ec);
}

void file_tail::impl::on_inotify_wakeup() {
    if (closed_ || !pending_) return;  // a late wake-up: the read was cancelled or completed
    restore_lost_watches();
    if (auto result = examine()) {
        complete_later(take_pending(true), result->ec, std::move(result->chunk));
        return;
    }
    wait_for_events();
}

void file_tail::impl::complete_later(read_handler handler, error_code ec, tail_chunk chunk) {
    // post(executor, handler) runs the handler on its own associated executor, never inline.
    asio::post(executor, asio::append(std::move(handler), ec, std::move(chunk)));
}

file_tail::file_tail(executor_type ex, std::filesystem::path file)
    : impl_(std::make_shared<impl>(std::move(ex), std::move(file))) {
    impl_->start();
}

file_tail::file_tail(file_tail&&) noexcept = default;

file_tail& file_tail::operator=(file_tail&& other) noexcept {
    if (this != &other) {
        close();
        impl_ = std::move(other.impl_);
    }
    return *this;
}

file_tail::~file_tail() { close(); }

const std::filesystem::path& file_tail::path() const noexcept { return impl_->given_path; }

file_tail::executor_type file_tail::get_executor() const noexcept { return impl_->executor; }

void file_tail::close() noexcept {
    if (impl_) impl_->close();
}

void file_tail::async_read_impl(read_handler h) {
    BOOST_ASSERT_MSG(impl_, "file_tail used after being moved from");
    impl_->read(std::move(h));
}

}  // namespace vmrt::io
