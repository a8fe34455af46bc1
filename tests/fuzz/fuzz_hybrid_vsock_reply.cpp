// Fuzz target: the hybrid-vsock reply-line parser (net/hybrid_vsock_codec.hpp), fed arbitrary
// bytes one at a time as the connect loop does. Invariants: no crash; it never consumes a byte
// after its verdict nor more than 32 bytes; `ok` only for `OK <digits>\n` whose value is the
// reported port; the error text, sanitised, is printable ASCII.
#include "net/hybrid_vsock_codec.hpp"

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    namespace hv = vmrt::net::hybrid_vsock;
    using status = hv::reply_parser::status;
    const std::string_view bytes(reinterpret_cast<const char*>(data), size);

    hv::reply_parser p;
    std::size_t consumed = 0;
    for (char c : bytes) {
        ++consumed;
        if (p.feed(c) != status::incomplete) break;
    }
    if (p.line() != bytes.substr(0, consumed)) std::abort();
    if (p.line().size() > hv::max_line_bytes) std::abort();
    if (p.state() != status::incomplete) {  // a verdict is final: no byte is taken after it
        hv::reply_parser after = p;
        if (after.feed('\n') != p.state() || after.line() != p.line()) std::abort();
    }

    hv::reply_parser whole = hv::parse_reply_line(bytes);
    if (whole.state() != p.state() || whole.line() != p.line()) std::abort();

    if (p.state() == status::ok) {
        const std::string& line = p.line();
        if (!line.starts_with("OK ") || line.back() != '\n' || line.size() < 5) std::abort();
        std::uint64_t value = 0;
        for (std::size_t i = 3; i + 1 < line.size(); ++i) {
            if (line[i] < '0' || line[i] > '9') std::abort();
            value = value * 10 + static_cast<std::uint64_t>(line[i] - '0');
            if (value > UINT32_MAX) std::abort();
        }
        if (value != p.host_port()) std::abort();
    }
    if (p.state() == status::malformed && p.error().empty()) std::abort();
    for (char c : hv::printable(bytes))
        if (c < 0x20 || c > 0x7e) std::abort();
    return 0;
}
