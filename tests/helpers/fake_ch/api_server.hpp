// The REST API of the Cloud Hypervisor double on the wire (§2.2): micro_http's framing, its
// limits and its quirks, in front of fake_ch::vmm.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/local/stream_protocol.hpp>

namespace fake_ch {

/// Accepts API connections until the acceptor fails; each is served by its own coroutine.
boost::asio::awaitable<void> accept_loop(boost::asio::local::stream_protocol::acceptor& acceptor);

}  // namespace fake_ch
