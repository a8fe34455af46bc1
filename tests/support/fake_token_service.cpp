#include "support/fake_token_service.hpp"

#include <chrono>
#include <ctime>
#include <random>

namespace vmrt::test {
namespace {

/// The repository a /v2/ target names: "/v2/demo/app/blobs/sha256:…" → "demo/app"; "" for /v2/.
std::string repository_of(std::string_view target) {
    if (!target.starts_with("/v2/")) return {};
    target.remove_prefix(4);
    for (std::string_view kind : {"/manifests/", "/blobs/", "/tags/"})
        if (auto at = target.find(kind); at != std::string_view::npos)
            return std::string(target.substr(0, at));
    return {};
}

std::string random_hex(std::size_t digits) {
    static constexpr char hex[] = "0123456789abcdef";
    std::random_device rd;
    std::string out;
    for (std::size_t i = 0; i < digits; ++i) out += hex[rd() % 16];
    return out;
}

std::string now_rfc3339() {
    const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
    std::tm utc{};
    gmtime_r(&now, &utc);
    char text[32];
    std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
    return text;
}

std::string http_response(const std::string& status_line, const std::string& fields,
                          const std::string& body) {
    return "HTTP/1.1 " + status_line + "\r\n" + fields + "Content-Length: " + std::to_string(body.size()) +
           "\r\n\r\n" + body;
}

}  // namespace

fake_token_service::fake_token_service(faulty_token_auth options, std::string realm)
    : options_(std::move(options)), realm_(std::move(realm)) {}

bool fake_token_service::is_token_request(std::string_view target) const {
    return target == options_.path || target.starts_with(options_.path + "?");
}

std::string fake_token_service::answer_token_request(std::string_view target,
                                                     std::string_view authorization) {
    std::string token;
    {
        std::lock_guard lock(mutex_);
        const auto number = static_cast<unsigned>(issued_.size() + 1);
        token = options_.issue ? options_.issue(number)
                               : "faulty-token-" + std::to_string(number) + "-" + random_hex(16);
        issued_.push_back({token, number, 0});
        requests_.push_back({std::string(target), std::string(authorization), token});
    }
    // Tokens are printable ASCII without quotes (JWTs, or ours): no JSON escaping needed.
    const std::string body = "{\"token\":\"" + token + "\",\"access_token\":\"" + token +
                             "\",\"expires_in\":" + std::to_string(options_.expires_in) +
                             ",\"issued_at\":\"" + now_rfc3339() + "\"}\n";
    return http_response("200 OK", "Content-Type: application/json\r\n", body);
}

std::optional<std::string> fake_token_service::refuse(std::string_view target,
                                                      std::string_view authorization) {
    constexpr std::string_view bearer = "Bearer ";
    const bool sent = authorization.starts_with(bearer);
    if (sent) {
        const auto token = authorization.substr(bearer.size());
        std::lock_guard lock(mutex_);
        for (auto& t : issued_) {
            if (t.token != token) continue;
            if (t.number <= options_.good_tokens && t.uses < options_.uses_per_token) {
                ++t.uses;
                return std::nullopt;
            }
            break;
        }
    }
    const std::string name = repository_of(target);
    std::string challenge = "Bearer realm=\"" + realm_ + "\",service=\"" + options_.service + "\"";
    if (!name.empty()) challenge += ",scope=\"repository:" + name + ":pull\"";
    // distribution adds the RFC 6750 error code when a token came and was refused.
    if (sent) challenge += ",error=\"invalid_token\"";
    const std::string detail = name.empty() ? "null"
                                            : "[{\"Type\":\"repository\",\"Class\":\"\",\"Name\":\"" + name +
                                                  "\",\"Action\":\"pull\"}]";
    const std::string body =
        "{\"errors\":[{\"code\":\"UNAUTHORIZED\",\"message\":\"authentication required\",\"detail\":" +
        detail + "}]}\n";
    return http_response("401 Unauthorized",
                         "Content-Type: application/json; charset=utf-8\r\n"
                         "Docker-Distribution-Api-Version: registry/2.0\r\n"
                         "Www-Authenticate: " +
                             challenge + "\r\n",
                         body);
}

std::vector<token_request_record> fake_token_service::token_requests() const {
    std::lock_guard lock(mutex_);
    return requests_;
}

}  // namespace vmrt::test
