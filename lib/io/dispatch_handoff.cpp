// The portable half of the dispatch bridge (include/vmrt/detail/handoff.hpp): the exceptions a
// bridged wait completes with, and the per-execution-context service that lets go of waiting
// handlers when their io_context is destroyed while a foreign call is still pending.
#include <vmrt/detail/handoff.hpp>
#include <vmrt/error.hpp>

#include <boost/asio/error.hpp>
#include <boost/system/system_error.hpp>

#include <algorithm>
#include <mutex>
#include <vector>

namespace vmrt::detail {

std::exception_ptr operation_aborted_exception() {
    return std::make_exception_ptr(boost::system::system_error(boost::asio::error::operation_aborted));
}

std::exception_ptr never_called_exception() {
    diagnostics diag;
    diag.message = "completion handler was never called: every copy of it was released without being "
                   "invoked (the foreign API dropped the request)";
    return std::make_exception_ptr(vmrt::error(make_error_code(errc::protocol_error), std::move(diag)));
}

std::exception_ptr wait_misuse_exception(const char* what) {
    diagnostics diag;
    diag.message = what;
    return std::make_exception_ptr(vmrt::error(make_error_code(errc::invalid_state), std::move(diag)));
}

std::atomic<long>& live_handoffs() noexcept {
    static std::atomic<long> count{0};
    return count;
}

namespace {

// An execution_context destroys its services after shutting them down, newest first; this one is
// created after the scheduler, so its shutdown() runs while the scheduler can still take posts. A
// foreign thread posts a handler only under the handoff's mutex, which abandon() takes too: either
// the post completed before (the scheduler's own shutdown then destroys the posted handler) or the
// handoff is marked abandoned and nobody will post.
class abandon_registry final : public boost::asio::execution_context::service {
public:
    using key_type = abandon_registry;
    static boost::asio::execution_context::id id;

    explicit abandon_registry(boost::asio::execution_context& ctx) : service(ctx) {}

    void add(std::weak_ptr<abandonable> op) {
        std::unique_lock lock(mutex_);
        if (shut_down_) {  // a wait started during the context's own destruction
            lock.unlock();
            if (auto live = op.lock()) live->abandon();
            return;
        }
        // Finished operations expire on their own; sweep them when the list has doubled.
        if (ops_.size() >= sweep_at_) {
            std::erase_if(ops_, [](const std::weak_ptr<abandonable>& w) { return w.expired(); });
            sweep_at_ = std::max<std::size_t>(64, 2 * ops_.size());
        }
        ops_.push_back(std::move(op));
    }

private:
    void shutdown() override {
        std::vector<std::shared_ptr<abandonable>> live;
        {
            std::lock_guard lock(mutex_);
            shut_down_ = true;
            for (auto& w : ops_)
                if (auto op = w.lock()) live.push_back(std::move(op));
            ops_.clear();
        }
        for (auto& op : live) op->abandon();  // outside our mutex: abandon() may wait for a queue
    }

    std::mutex mutex_;
    std::vector<std::weak_ptr<abandonable>> ops_;
    std::size_t sweep_at_ = 64;
    bool shut_down_ = false;
};

boost::asio::execution_context::id abandon_registry::id;

}  // namespace

void abandon_at_shutdown(boost::asio::execution_context& ctx, std::weak_ptr<abandonable> op) {
    boost::asio::use_service<abandon_registry>(ctx).add(std::move(op));
}

}  // namespace vmrt::detail
