#include "image/registry_session.hpp"

#include <vmrt/image/www_authenticate.hpp>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/detail/base64.hpp>

#include <algorithm>
#include <random>

namespace vmrt::image {

namespace asio = boost::asio;
namespace http = boost::beast::http;

namespace {

std::string basic_authorization(const registry_credentials& c) {
    const std::string plain = c.username + ":" + c.password;
    std::string encoded(boost::beast::detail::base64::encoded_size(plain.size()), '\0');
    encoded.resize(boost::beast::detail::base64::encode(encoded.data(), plain.data(), plain.size()));
    return "Basic " + encoded;
}

bool accepted_status(unsigned status, const std::vector<unsigned>& accepted) {
    return std::find(accepted.begin(), accepted.end(), status) != accepted.end();
}

double jitter() {
    static thread_local std::minstd_rand source{std::random_device{}()};
    return 0.5 + 0.5 * std::uniform_real_distribution<double>(0, 1)(source);
}

}  // namespace

registry_session::registry_session(io::https_client& client, image_reference ref,
                                   registry_credentials credentials, io::retry_policy retry)
    : client_(client), ref_(std::move(ref)), credentials_(std::move(credentials)), retry_(retry) {}

asio::awaitable<io::http_response> registry_session::get(std::string path, http::fields headers,
                                                         const std::vector<unsigned>& accepted) {
    const std::string url = ref_.registry_url() + "/v2/" + ref_.repository + "/" + path;
    const std::string what = "GET " + url;
    bool challenge_answered = false;
    unsigned busy = 0;
    for (;;) {
        io::http_request request{.url = io::parse_https_url(url), .headers = headers};
        if (!authorization_.empty()) request.headers.set(http::field::authorization, authorization_);
        auto response = co_await client_.async_send_following(std::move(request), 5);
        const unsigned status = response.status();
        if (accepted_status(status, accepted)) co_return response;

        if (status == 401 && !challenge_answered) {
            // A 401 to the first request asks for credentials; a later one says that the token
            // expired mid-pull (or that another request's refresh replaced it): answer it once.
            challenge_answered = true;
            const auto challenge = std::string(response.headers()[http::field::www_authenticate]);
            co_await answer_challenge(challenge, what);
            continue;
        }
        if (status == 401) {
            // Refused again right after the challenge was answered: the credentials, or the token
            // the service has just issued for them, are not good for this repository. Another
            // token would be refused too.
            const std::string why =
                authorization_.starts_with("Bearer ")
                    ? "the registry refused the bearer token just issued by " + token_service_
                    : "the registry refused the credentials configured for " + ref_.domain;
            auto failure = co_await io::status_error_of(response, "authentication failed for " + ref_.domain +
                                                                      "/" + ref_.repository + ": " + why);
            throw failure;
        }
        if (io::is_retryable_status(status) && busy < retry_.max_retries) {
            auto demand = response.headers()[http::field::retry_after];
            auto retry_after =
                io::parse_retry_after({demand.data(), demand.size()}, std::chrono::system_clock::now());
            if (!retry_after || *retry_after <= retry_.max_retry_after) {
                ++busy;
                ++busy_retries_;
                auto ex = co_await asio::this_coro::executor;  // not inside the constructor call (GCC 12)
                asio::steady_timer wait(ex, io::retry_delay(retry_, busy, retry_after, jitter()));
                co_await wait.async_wait(asio::use_awaitable);
                continue;
            }
        }
        auto failure = co_await io::status_error_of(response, what);
        throw failure;
    }
}

asio::awaitable<void> registry_session::answer_challenge(const std::string& header, const std::string& what) {
    if (header.empty())
        throw error(make_error_code(errc::protocol_error),
                    {.message = what + ": 401 without a WWW-Authenticate challenge"});
    const auto challenges = parse_www_authenticate(header);
    if (const auto* bearer = find_challenge(challenges, "bearer")) {
        std::vector<std::string> scopes;
        scopes.push_back(pull_scope(ref_.repository));
        io::http_request token_request{.url = bearer_token_url(*bearer, scopes)};
        if (!credentials_.username.empty() || !credentials_.password.empty())
            token_request.headers.set(http::field::authorization, basic_authorization(credentials_));
        const std::string token_what = "token request to " + token_request.url.str();
        // For messages: the service without the query (scope, service), never a credential.
        token_service_ = token_request.url.origin() +
                         token_request.url.target.substr(0, token_request.url.target.find('?'));
        auto response = co_await client_.async_send_following(std::move(token_request), 5);
        if (response.status() != 200) {
            auto failure = co_await io::status_error_of(response, token_what);
            throw failure;
        }
        auto body = co_await response.async_read_all(max_token_response_length);
        auto token = parse_token_response(body);
        authorization_ = "Bearer " + token.token;
        ++token_fetches_;
        co_return;
    }
    if (find_challenge(challenges, "basic")) {
        if (credentials_.username.empty() && credentials_.password.empty())
            throw error(make_error_code(errc::http_status),
                        {.message = what +
                                    ": the registry asks for a user name and password (Basic), and none "
                                    "is configured for " +
                                    ref_.domain + " (docker login, or ~/.docker/config.json)"});
        authorization_ = basic_authorization(credentials_);
        co_return;
    }
    throw error(make_error_code(errc::unsupported),
                {.message = what + ": the registry asks for an authentication scheme vmrt does not speak: " +
                            header.substr(0, 200)});
}

}  // namespace vmrt::image
