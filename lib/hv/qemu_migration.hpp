// QMP migration helpers shared by snapshot (outgoing) and restore (incoming): QEMU reports
// progress as MIGRATION events once asked to, so nothing polls query-migrate.
#pragma once

#include "hv/qmp_client.hpp"

#include <boost/asio/awaitable.hpp>

#include <chrono>

namespace vmrt::hv {

/// Asks QEMU to report migration progress as MIGRATION events instead of being polled.
boost::asio::awaitable<void> enable_migration_events(qmp::client& qmp);

/// Waits for MIGRATION {status: completed}; a failed or cancelled migration, the end of the QMP
/// connection or the time limit throw vmrt::error.
boost::asio::awaitable<void> wait_migration_done(io::subscription<qmp::event>& events,
                                                 std::chrono::seconds limit);

}  // namespace vmrt::hv
