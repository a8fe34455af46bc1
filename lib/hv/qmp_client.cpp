// The QMP client's I/O: a reader coroutine that feeds qmp::session and dispatches what comes
// out, a writer coroutine that drains a queue, and a table of waiting commands keyed by id.
//
// Waits are plain asynchronous operations (async_initiate) whose handlers are kept type-erased
// in the table, so any number can be outstanding and each has its own cancellation slot. They
// complete with (exception_ptr, value): under use_awaitable an exception_ptr is rethrown in the
// caller, which is how a vmrt::error keeps its diagnostics on the way out.
#include "hv/qmp_client.hpp"

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/append.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <deque>
#include <exception>
#include <map>
#include <utility>

namespace vmrt::hv::qmp {

namespace asio = boost::asio;

namespace {

vmrt::error make_error(error_code ec, std::string message) {
    return vmrt::error(ec, {.message = std::move(message)});
}

// EOF, a reset and a broken pipe all mean the same to a caller: QEMU is gone (usually it exited,
// after `quit` or a guest poweroff), so they share one code and one message.
vmrt::error connection_error(error_code ec) {
    if (ec == asio::error::eof) return make_error(asio::error::eof, "QMP connection closed (QEMU exited?)");
    if (ec == asio::error::connection_reset || ec == asio::error::broken_pipe)
        return make_error(asio::error::eof, "QMP connection closed (QEMU exited?): " + ec.message());
    return make_error(ec, "QMP connection failed: " + ec.message());
}

// The error a waiting command sees when the connection ends: the connection's, naming the command.
std::exception_ptr ended_while_waiting(const vmrt::error& end, const std::string& command) {
    return std::make_exception_ptr(
        make_error(end.code(), end.diag().message + " (QMP command \"" + command + "\" got no reply)"));
}

}  // namespace

command_failure::command_failure(std::string command, command_error qmp_error)
    : vmrt::error(make_error_code(errc::command_failed), {.message = qmp_error.desc}),
      command_(std::move(command)), qmp_error_(std::move(qmp_error)) {}

struct client::impl : std::enable_shared_from_this<client::impl> {
    using reply_handler = asio::any_completion_handler<void(std::exception_ptr, json::value)>;
    using greeting_handler = asio::any_completion_handler<void(std::exception_ptr, greeting)>;

    // Handlers are only ever move-constructed (Boost 1.81's any_completion_handler recurses on
    // move assignment): std::map never moves its values, and they leave it through extract().
    struct waiting_command {
        waiting_command(std::string n, reply_handler h, asio::cancellation_slot s)
            : name(std::move(n)), handler(std::move(h)), slot(s) {}
        std::string name;
        reply_handler handler;
        asio::cancellation_slot slot;
    };

    impl(socket_type s, std::size_t max_message_bytes)
        : socket(std::move(s)), ex(socket.get_executor()), sess(max_message_bytes) {}

    socket_type socket;
    executor_type ex;
    session sess;
    std::map<std::uint64_t, waiting_command> waiting;
    std::optional<greeting_handler> handshake_waiter;
    asio::cancellation_slot handshake_slot;
    bool handshake_started = false;
    io::broadcast_channel<event> events;
    std::deque<std::string> outbox;
    bool writing = false;
    std::optional<vmrt::error> end;
    std::array<char, 64 * 1024> read_buffer{};

    // ---- completion helpers (never inline: always through the executor) ----

    template <typename Handler, typename Value>
    void complete(Handler h, std::exception_ptr e, Value v) {
        asio::post(ex, asio::append(std::move(h), std::move(e), std::move(v)));
    }

    // `from_own_slot`: called by the wait's own cancellation handler, which must not clear the
    // slot it is running from.
    void finish_command(std::map<std::uint64_t, waiting_command>::iterator it, std::exception_ptr e,
                        json::value v, bool from_own_slot = false) {
        auto node = waiting.extract(it);
        if (!from_own_slot) node.mapped().slot.clear();
        complete(reply_handler(std::move(node.mapped().handler)), std::move(e), std::move(v));
    }

    void finish_handshake(std::exception_ptr e, greeting g, bool from_own_slot = false) {
        if (!handshake_waiter) return;
        greeting_handler h(std::move(*handshake_waiter));
        handshake_waiter.reset();
        if (!from_own_slot) handshake_slot.clear();
        complete(std::move(h), std::move(e), std::move(g));
    }

    // ---- the end of the connection ----

    void shut_down(vmrt::error why) {
        if (end) return;
        end.emplace(std::move(why));
        error_code ignored;
        socket.shutdown(socket_type::shutdown_both, ignored);
        socket.close(ignored);
        outbox.clear();
        finish_handshake(std::make_exception_ptr(*end), {});
        while (!waiting.empty()) {
            auto it = waiting.begin();
            auto e = ended_while_waiting(*end, it->second.name);
            finish_command(it, std::move(e), {});
        }
        events.close();
    }

    // ---- handshake ----

    void start_handshake(greeting_handler h) {
        if (end) return complete(std::move(h), std::make_exception_ptr(*end), greeting{});
        if (handshake_started) {
            auto e = make_error(make_error_code(errc::invalid_state), "QMP handshake already started");
            return complete(std::move(h), std::make_exception_ptr(e), greeting{});
        }
        handshake_started = true;
        handshake_slot = asio::get_associated_cancellation_slot(h);
        handshake_waiter.emplace(std::move(h));
        if (handshake_slot.is_connected()) {
            handshake_slot.assign([weak = weak_from_this()](asio::cancellation_type) {
                if (auto self = weak.lock()) self->cancel_handshake();
            });
        }
        spawn_reader();
    }

    void cancel_handshake() {
        auto e = make_error(asio::error::operation_aborted, "QMP handshake cancelled");
        finish_handshake(std::make_exception_ptr(e), {}, true);
        shut_down(e);
    }

    // ---- commands ----

    void start_command(std::string name, const json::object& arguments, reply_handler h) {
        if (end) return complete(std::move(h), std::make_exception_ptr(*end), json::value{});
        if (sess.current_phase() != session::phase::ready) {
            auto e = make_error(make_error_code(errc::invalid_state),
                                "QMP command \"" + name + "\" issued before the handshake completed");
            return complete(std::move(h), std::make_exception_ptr(e), json::value{});
        }
        auto cmd = sess.execute(name, arguments);
        auto slot = asio::get_associated_cancellation_slot(h);
        waiting.try_emplace(cmd.id, std::move(name), std::move(h), slot);
        if (slot.is_connected()) {
            slot.assign([weak = weak_from_this(), id = cmd.id](asio::cancellation_type) {
                if (auto self = weak.lock()) self->abandon(id);
            });
        }
        send(std::move(cmd.wire));
    }

    // The caller stopped waiting. The session still expects the reply, so when it arrives it
    // is recognised and dropped instead of being taken for a protocol fault.
    void abandon(std::uint64_t id) {
        auto it = waiting.find(id);
        if (it == waiting.end()) return;
        auto e =
            make_error(asio::error::operation_aborted, "QMP command \"" + it->second.name + "\" cancelled");
        finish_command(it, std::make_exception_ptr(e), {}, true);
    }

    // ---- input ----

    void dispatch(reply& r) {
        auto it = waiting.find(r.id);
        if (it == waiting.end()) return;  // its wait was cancelled
        if (r.ok()) return finish_command(it, nullptr, std::move(r.value));
        auto e = std::make_exception_ptr(command_failure(it->second.name, std::move(*r.error)));
        finish_command(it, std::move(e), {});
    }

    void on_input(std::string_view bytes) {
        auto got = sess.receive(bytes);
        for (auto& m : got.messages) {
            if (auto* r = std::get_if<reply>(&m))
                dispatch(*r);
            else
                events.publish(std::get<event>(m));
        }
        if (auto out = sess.take_output(); !out.empty()) send(std::move(out));
        if (sess.current_phase() == session::phase::ready && sess.peer_greeting())
            finish_handshake(nullptr, *sess.peer_greeting());
        if (got.fault) shut_down(make_error(make_error_code(errc::protocol_error), got.fault->message));
    }

    static asio::awaitable<void> read_loop(std::shared_ptr<impl> self) {
        while (!self->end) {
            auto [ec, n] = co_await self->socket.async_read_some(asio::buffer(self->read_buffer),
                                                                 asio::as_tuple(asio::use_awaitable));
            if (self->end) break;  // close() raced with the read: the input no longer matters
            if (n > 0) self->on_input(std::string_view(self->read_buffer.data(), n));
            if (ec) self->shut_down(connection_error(ec));
        }
    }

    void spawn_reader() { spawn(read_loop(shared_from_this())); }

    // ---- output ----

    void send(std::string bytes) {
        if (end) return;
        outbox.push_back(std::move(bytes));
        if (writing) return;
        writing = true;
        spawn(write_loop(shared_from_this()));
    }

    static asio::awaitable<void> write_loop(std::shared_ptr<impl> self) {
        // The front element stays in the deque (whose elements do not move on push_back) until
        // it is written, so the buffer stays valid while more commands are queued behind it.
        while (!self->end && !self->outbox.empty()) {
            auto [ec, n] = co_await asio::async_write(self->socket, asio::buffer(self->outbox.front()),
                                                      asio::as_tuple(asio::use_awaitable));
            if (self->end) break;
            if (ec) {
                self->shut_down(connection_error(ec));
                break;
            }
            self->outbox.pop_front();
        }
        self->writing = false;
    }

    // Runs a loop; an exception escaping it (only bad_alloc is possible) ends the connection
    // instead of vanishing.
    void spawn(asio::awaitable<void> loop) {
        asio::co_spawn(ex, std::move(loop), [self = shared_from_this()](std::exception_ptr e) {
            if (!e) return;
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& x) {
                self->shut_down(
                    make_error(make_error_code(errc::internal), std::string("QMP client: ") + x.what()));
            }
        });
    }
};

namespace {

// Initiations of the two waits. They are named types rather than lambdas, and they hold a
// plain pointer: GCC 12 mishandles temporaries in a co_await full-expression (seen here: with a
// shared_ptr member, the count dropped to zero and the impl was freed under the running call).
// The calling coroutine's `self` keeps the impl alive instead.
struct handshake_initiation {
    client::impl* self;
    template <typename Handler>
    void operator()(Handler&& h) const {
        self->start_handshake(client::impl::greeting_handler(std::forward<Handler>(h)));
    }
};

struct command_initiation {
    client::impl* self;
    template <typename Handler>
    void operator()(Handler&& h, std::string name, json::object arguments) const {
        self->start_command(std::move(name), arguments,
                            client::impl::reply_handler(std::forward<Handler>(h)));
    }
};

std::shared_ptr<client::impl> checked(const std::shared_ptr<client::impl>& p) {
    if (!p) throw make_error(make_error_code(errc::invalid_state), "QMP client used after being moved from");
    return p;
}

}  // namespace

client::client(socket_type socket, std::size_t max_message_bytes)
    : impl_(std::make_shared<impl>(std::move(socket), max_message_bytes)) {}

client& client::operator=(client&& other) noexcept {
    if (this != &other) {
        close();
        impl_ = std::move(other.impl_);
    }
    return *this;
}

client::~client() { close(); }

client::executor_type client::get_executor() const { return checked(impl_)->ex; }

io::subscription<event> client::subscribe_events() { return checked(impl_)->events.subscribe(impl_->ex); }

asio::awaitable<greeting> client::async_handshake() {
    auto self = checked(impl_);
    co_return co_await asio::async_initiate<decltype(asio::use_awaitable),
                                            void(std::exception_ptr, greeting)>(
        handshake_initiation{self.get()}, asio::use_awaitable);
}

asio::awaitable<json::value> client::async_execute(std::string name, json::object arguments) {
    auto self = checked(impl_);
    co_return co_await asio::async_initiate<decltype(asio::use_awaitable),
                                            void(std::exception_ptr, json::value)>(
        command_initiation{self.get()}, asio::use_awaitable, std::move(name), std::move(arguments));
}

bool client::is_open() const noexcept { return impl_ && !impl_->end; }

std::optional<greeting> client::peer_greeting() const { return checked(impl_)->sess.peer_greeting(); }

std::optional<vmrt::error> client::end_reason() const { return checked(impl_)->end; }

void client::close() {
    if (impl_) impl_->shut_down(make_error(asio::error::operation_aborted, "QMP connection closed by vmrt"));
}

}  // namespace vmrt::hv::qmp
