// Fuzz target: the https URL parser, Location resolution and the Content-Range parser.
// Input: a URL, then optionally '\n' and a Location value, then optionally '\n' and a
// Content-Range value. Invariants: no crash; an accepted URL is canonical (its str() parses back
// to the same URL) and its target has no byte that could break a request line; a resolved
// location is accepted the same way; an accepted Content-Range is internally consistent.
#include <vmrt/io/http_range.hpp>
#include <vmrt/io/url.hpp>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

void check_url(const vmrt::io::https_url& url) {
    if (url.target.empty() || url.target.front() != '/') std::abort();
    for (char c : url.target)
        if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f) std::abort();
    std::string why;
    auto again = vmrt::io::try_parse_https_url(url.str(), why);
    if (!again || !(*again == url)) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view input(reinterpret_cast<const char*>(data), size);
    auto nl = input.find('\n');
    std::string_view url_text = input.substr(0, nl);
    std::string_view rest = nl == std::string_view::npos ? std::string_view{} : input.substr(nl + 1);
    auto nl2 = rest.find('\n');
    std::string_view location = rest.substr(0, nl2);
    std::string_view range = nl2 == std::string_view::npos ? std::string_view{} : rest.substr(nl2 + 1);

    std::string why;
    if (auto url = vmrt::io::try_parse_https_url(url_text, why)) {
        check_url(*url);
        if (auto next = vmrt::io::try_resolve_location(*url, location, why)) check_url(*next);
    } else if (why.empty()) {
        std::abort();
    }
    if (auto r = vmrt::io::parse_content_range(range)) {
        if (r->first.has_value() != r->last.has_value()) std::abort();
        if (r->first && *r->first > *r->last) std::abort();
        if (r->last && r->complete_length && *r->last >= *r->complete_length) std::abort();
        if (!r->first && !r->complete_length) std::abort();
    }
    return 0;
}
