#include "hv/qemu_migration.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace vmrt::hv {

namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;

asio::awaitable<void> enable_migration_events(qmp::client& qmp) {
    boost::json::object cap;
    cap["capability"] = "events";
    cap["state"] = true;
    boost::json::array caps;
    caps.push_back(std::move(cap));
    boost::json::object args;
    args["capabilities"] = std::move(caps);
    co_await qmp.async_execute("migrate-set-capabilities", std::move(args));
}

asio::awaitable<void> wait_migration_done(io::subscription<qmp::event>& events, std::chrono::seconds limit) {
    asio::steady_timer timer(co_await asio::this_coro::executor, limit);
    for (;;) {
        auto next = co_await (events.async_next(asio::as_tuple(asio::use_awaitable)) ||
                              timer.async_wait(asio::as_tuple(asio::use_awaitable)));
        if (next.index() == 1)
            throw error(make_error_code(errc::timeout),
                        {.message = "the migration did not complete in time"});
        auto& [ec, ev] = std::get<0>(next);
        if (ec) throw error(ec, {.message = "QMP connection ended during a migration"});
        if (ev.name != "MIGRATION" || !ev.data.contains("status")) continue;
        auto status = std::string(ev.data.at("status").as_string());
        if (status == "completed") co_return;
        if (status == "failed" || status == "cancelled")
            throw error(make_error_code(errc::command_failed), {.message = "migration " + status});
    }
}

}  // namespace vmrt::hv
