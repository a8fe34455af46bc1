// Fuzz target: WWW-Authenticate parsing, the bearer token URL and the token response parser.
// Input: a header value, then optionally '\n' and a token response body. Invariants: no crash;
// only vmrt::error escapes; parsed schemes and parameter names are non-empty lowercase tokens;
// a challenge has either params or a token68; a token URL is an https URL that parses back.
#include <vmrt/error.hpp>
#include <vmrt/image/www_authenticate.hpp>

#include <cstdint>
#include <cstdlib>
#include <string_view>

namespace {

void check_lowercase_token(const std::string& s) {
    if (s.empty()) std::abort();
    for (char c : s)
        if ((c >= 'A' && c <= 'Z') || static_cast<unsigned char>(c) <= 0x20 || c == ',' || c == '"' ||
            c == '=')
            std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    const auto nl = input.find('\n');
    const std::string_view header = input.substr(0, nl);
    const std::string_view body = nl == std::string_view::npos ? std::string_view{} : input.substr(nl + 1);
    try {
        for (const auto& ch : vmrt::image::parse_www_authenticate(header)) {
            check_lowercase_token(ch.scheme);
            if (!ch.token68.empty() && !ch.params.empty()) std::abort();
            for (const auto& [name, value] : ch.params) check_lowercase_token(name);
            if (ch.scheme == "bearer") {
                try {
                    const auto url = vmrt::image::bearer_token_url(ch);
                    std::string why;
                    const auto again = vmrt::io::try_parse_https_url(url.str(), why);
                    if (!again || !(*again == url)) std::abort();
                } catch (const vmrt::error&) {
                }
            }
        }
    } catch (const vmrt::error& e) {
        if (e.diag().message.empty()) std::abort();
    }
    try {
        const auto token = vmrt::image::parse_token_response(body);
        if (token.token.empty() || token.expires_in.count() <= 0) std::abort();
    } catch (const vmrt::error& e) {
        if (e.diag().message.empty()) std::abort();
    }
    return 0;
}
