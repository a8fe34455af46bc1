#include <vmrt/error.hpp>
#include <vmrt/vsock_listener.hpp>

namespace vmrt {

boost::asio::awaitable<boost::asio::local::stream_protocol::socket> vsock_listener::accept() {
    if (!source_)
        throw error(make_error_code(errc::invalid_state),
                    {.message = "this vsock listener listens on nothing"});
    co_return co_await source_->accept();
}

}  // namespace vmrt
