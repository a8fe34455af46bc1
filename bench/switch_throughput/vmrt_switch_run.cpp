#include "vmrt_switch_run.hpp"

#include <boost/asio/post.hpp>

#include <chrono>
#include <future>
#include <thread>

namespace swbench {

namespace asio = boost::asio;
using namespace std::chrono_literals;

vmrt_switch_run::vmrt_switch_run(framing kind, std::size_t ports) : work_(ctx_.get_executor()) {
    switch_ = std::make_unique<vmrt::net::l2_switch>(ctx_.get_executor());
    auto net = switch_->add_network("bench");
    auto port_kind = kind == framing::dgram ? vmrt::net::port_kind::dgram : vmrt::net::port_kind::stream;
    for (std::size_t i = 0; i < ports; ++i) {
        vmrt::net::port_options opts;
        opts.name = "endpoint" + std::to_string(i);
        auto [id, fd] = switch_->add_socketpair_port(net, port_kind, opts);
        ports_.push_back(id);
        endpoints_.push_back(std::move(fd));
    }
    thread_ = std::thread([this] {
        tid_ = current_tid();
        ctx_.run();
    });
}

vmrt_switch_run::~vmrt_switch_run() {
    std::promise<void> destroyed;
    asio::post(ctx_, [&] {
        switch_.reset();  // closes every port; its coroutines end
        destroyed.set_value();
    });
    destroyed.get_future().wait();
    work_.reset();
    // The port coroutines finish on their own once their sockets are closed; a bench must not
    // hang if one does not, so the context is stopped after a grace period.
    for (int i = 0; i < 200 && !ctx_.stopped(); ++i) std::this_thread::sleep_for(10ms);
    ctx_.stop();
    thread_.join();
}

std::vector<int> vmrt_switch_run::endpoints() const {
    std::vector<int> fds;
    for (auto& fd : endpoints_) fds.push_back(fd.get());
    return fds;
}

thread_ref vmrt_switch_run::forwarder() const {
    while (tid_ == 0) std::this_thread::yield();
    return {::getpid(), tid_};
}

switch_drops vmrt_switch_run::drops() {
    std::promise<switch_drops> result;
    asio::post(ctx_, [&] {
        switch_drops d;
        for (auto id : ports_)
            if (auto c = switch_->counters(id))
                for (std::size_t r = 0; r < d.by_reason.size(); ++r) d.by_reason[r] += c->drops[r];
        result.set_value(d);
    });
    return result.get_future().get();
}

}  // namespace swbench
