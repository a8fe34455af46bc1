// Fuzz target: the HTTP/1.1 response parser used for Cloud Hypervisor's API socket
// (lib/io/http1_codec.hpp), fed the same bytes in reads of arbitrary sizes. Invariants: no crash;
// only vmrt::error with errc::protocol_error escapes; the responses, the error text and the bytes
// left over are the same however the bytes are split (a differential check against one read).
#include "io/http1_codec.hpp"

#include <vmrt/error.hpp>

#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace {

struct outcome {
    std::vector<std::string> responses;  // status, reason, headers and body, flattened
    std::optional<std::string> error;
    std::size_t left = 0;
    bool operator==(const outcome&) const = default;
};

outcome parse(std::string_view bytes, std::size_t chunk, vmrt::io::http1::limits l) {
    vmrt::io::http1::response_parser p(l);
    outcome out;
    try {
        for (std::size_t at = 0; at < bytes.size(); at += chunk) {
            p.feed(bytes.substr(at, chunk));
            while (auto r = p.next()) {
                if (r->status < 200 || r->status > 999) std::abort();
                std::string flat = std::to_string(r->status) + '|' + r->reason;
                for (const auto& h : r->headers) flat += '|' + h.name + ':' + h.value;
                flat += '|' + r->body;
                out.responses.push_back(std::move(flat));
            }
        }
    } catch (const vmrt::error& e) {
        if (e.code() != vmrt::errc::protocol_error) std::abort();
        out.error = e.what();
    }
    if (!out.error) out.left = p.buffered();  // after an error it only says how much was fed
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2) return 0;
    // The first byte chooses the read size, the second the limits; the rest is the stream.
    const std::size_t chunk = 1 + data[0] % 61;
    const vmrt::io::http1::limits l{.max_header_bytes = 32 + data[1] % 224u, .max_body_bytes = data[1] % 97u};
    const std::string_view bytes(reinterpret_cast<const char*>(data + 2), size - 2);
    const auto whole = parse(bytes, bytes.size() + 1, l);
    if (!(whole == parse(bytes, chunk, l))) std::abort();
    return 0;
}
