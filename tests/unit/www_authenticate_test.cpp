// WWW-Authenticate parsing (RFC 7235), the bearer token URL and token responses
// (lib/image/www_authenticate.cpp), with real registries' headers.
#include <vmrt/error.hpp>
#include <vmrt/image/www_authenticate.hpp>

#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

namespace {

using vmrt::image::auth_challenge;
using vmrt::image::parse_www_authenticate;

std::string refusal(const std::string& header) {
    try {
        auto parsed = parse_www_authenticate(header);
        BOOST_TEST(false, header << " was accepted (" << parsed.size() << " challenges)");
    } catch (const vmrt::error& e) {
        BOOST_TEST(e.code() == make_error_code(vmrt::errc::protocol_error));
        return e.diag().message;
    }
    return {};
}

std::string token_refusal(const std::string& body) {
    try {
        (void)vmrt::image::parse_token_response(body);
        BOOST_TEST(false, body << " was accepted");
    } catch (const vmrt::error& e) {
        BOOST_TEST(e.code() == make_error_code(vmrt::errc::protocol_error));
        return e.diag().message;
    }
    return {};
}

}  // namespace

BOOST_AUTO_TEST_SUITE(www_authenticate_test)

BOOST_AUTO_TEST_CASE(docker_hub_challenge) {
    const auto ch = parse_www_authenticate(
        R"(Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/ubuntu:pull")");
    BOOST_TEST_REQUIRE(ch.size() == 1u);
    BOOST_TEST(ch[0].scheme == "bearer");
    BOOST_TEST(ch[0].params.size() == 3u);
    BOOST_TEST(*ch[0].param("Realm") == "https://auth.docker.io/token");
    BOOST_TEST(*ch[0].param("service") == "registry.docker.io");
    BOOST_TEST(*ch[0].param("scope") == "repository:library/ubuntu:pull");
    const auto url = vmrt::image::bearer_token_url(ch[0]);
    BOOST_TEST(
        url.str() ==
        "https://auth.docker.io/token?service=registry.docker.io&scope=repository%3Alibrary%2Fubuntu%3Apull");
}

BOOST_AUTO_TEST_CASE(ghcr_challenge_and_scope_override) {
    const auto ch = parse_www_authenticate(
        R"(Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:user/image:pull")");
    BOOST_TEST_REQUIRE(ch.size() == 1u);
    const std::vector<std::string> scopes = {"repository:org/app:pull", "repository:org/base:pull"};
    BOOST_TEST(
        vmrt::image::bearer_token_url(ch[0], scopes).str() ==
        "https://ghcr.io/token?service=ghcr.io&scope=repository%3Aorg%2Fapp%3Apull&scope=repository%3Aorg%"
        "2Fbase%3Apull");
    BOOST_TEST(vmrt::image::pull_scope("org/app") == "repository:org/app:pull");
}

BOOST_AUTO_TEST_CASE(several_challenges_in_one_value) {
    const auto ch = parse_www_authenticate(
        R"(Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/ubuntu:pull", Basic realm="x")");
    BOOST_TEST_REQUIRE(ch.size() == 2u);
    BOOST_TEST(ch[0].scheme == "bearer");
    BOOST_TEST(ch[1].scheme == "basic");
    BOOST_TEST(*ch[1].param("realm") == "x");
    BOOST_TEST(vmrt::image::find_challenge(ch, "BASIC") == &ch[1]);
    BOOST_TEST(vmrt::image::find_challenge(ch, "digest") == nullptr);
}

BOOST_AUTO_TEST_CASE(rfc7235_syntax) {
    // Quoted strings with escapes and commas, tokens, case-insensitive names, whitespace
    // everywhere it may be, empty list elements, token68, schemes without parameters.
    const auto ch = parse_www_authenticate(
        " , BEARER   Realm = \"https://a.example/t?x=1,2\" ,\tSERVICE=svc , scope=\"a \\\"b\\\\ c\"  ,, "
        "Newauth abc123==, Basic, Negotiate YII/+a=");
    BOOST_TEST_REQUIRE(ch.size() == 4u);
    BOOST_TEST(ch[0].scheme == "bearer");
    BOOST_TEST(ch[0].params.at("realm") == "https://a.example/t?x=1,2");
    BOOST_TEST(ch[0].params.at("service") == "svc");
    BOOST_TEST(ch[0].params.at("scope") == "a \"b\\ c");
    BOOST_TEST(ch[1].scheme == "newauth");
    BOOST_TEST(ch[1].token68 == "abc123==");
    BOOST_TEST(ch[1].params.empty());
    BOOST_TEST(ch[2].scheme == "basic");
    BOOST_TEST(ch[2].params.empty());
    BOOST_TEST(ch[3].token68 == "YII/+a=");
    BOOST_TEST(parse_www_authenticate("").empty());
    BOOST_TEST(parse_www_authenticate(" ,, ").empty());
    // The realm's own query is kept; the challenge's scope is split at spaces.
    BOOST_TEST(vmrt::image::bearer_token_url(ch[0]).str() ==
               "https://a.example/t?x=1,2&service=svc&scope=a&scope=%22b%5C&scope=c");
}

BOOST_AUTO_TEST_CASE(malformed_headers_are_refused_with_a_position) {
    struct bad_case {
        std::string header, says;
    };
    const std::vector<bad_case> cases = {
        {R"(Bearer realm="x", realm="y")", "occurs twice"},
        {R"(Bearer realm="x", REALM="y")", "occurs twice"},
        {R"(Bearer realm="unterminated)", "unterminated"},
        {"Bearer realm=\"a\\", "unterminated"},
        {"Bearer realm=\"a\x01\"", "control character"},
        {R"(Bearer realm="x" service="y")", "expected ','"},
        {"=x", "expected an authentication scheme"},
        {"Bearer\"x\"", "expected a space"},
        {"Basic abc==x", "expected ',' or the end after a token68"},
        {"Basic @@@", "token68 or parameters"},
        {std::string(20000, 'a'), "longer than"},
    };
    for (const auto& c : cases) {
        BOOST_TEST_CONTEXT(c.header) {
            const std::string message = refusal(c.header);
            BOOST_TEST(message.find(c.says) != std::string::npos, message);
        }
    }
}

BOOST_AUTO_TEST_CASE(token_url_refusals) {
    const auto refuse = [](const std::string& header, const std::string& says) {
        const auto ch = parse_www_authenticate(header);
        try {
            (void)vmrt::image::bearer_token_url(ch.at(0));
            BOOST_TEST(false, header << " gave a token URL");
        } catch (const vmrt::error& e) {
            BOOST_TEST(e.code() == make_error_code(vmrt::errc::protocol_error));
            BOOST_TEST(e.diag().message.find(says) != std::string::npos, e.diag().message);
        }
    };
    refuse(R"(Basic realm="https://x")", "needs a Bearer challenge");
    refuse(R"(Bearer service="x")", "no realm");
    refuse(R"(Bearer realm="http://auth.example/token")", "refused");
    refuse(R"(Bearer realm="https://user:pw@auth.example/token")", "refused");
    // A service without a scope gives just the service.
    const auto ch = parse_www_authenticate(R"(Bearer realm="https://auth.example/token",service="reg")");
    BOOST_TEST(vmrt::image::bearer_token_url(ch[0]).str() == "https://auth.example/token?service=reg");
}

BOOST_AUTO_TEST_CASE(token_responses) {
    auto t = vmrt::image::parse_token_response(
        R"({"token":"abc.def","access_token":"other","expires_in":300,"issued_at":"2024-05-01T12:34:56.123456789Z"})");
    BOOST_TEST(t.token == "abc.def");
    BOOST_TEST(t.expires_in.count() == 300);
    BOOST_TEST_REQUIRE(t.issued_at.has_value());
    BOOST_TEST(t.issued_at->time_since_epoch().count() == 1714566896);

    t = vmrt::image::parse_token_response(R"({"access_token":"xyz"})");
    BOOST_TEST(t.token == "xyz");
    BOOST_TEST(t.expires_in.count() == 60);  // the spec's default
    BOOST_TEST(!t.issued_at.has_value());

    t = vmrt::image::parse_token_response(
        R"({"token":"t","expires_in":0,"issued_at":"2024-05-01T14:34:56+02:00","refresh_token":"r"})");
    BOOST_TEST(t.expires_in.count() == 60);
    BOOST_TEST(t.issued_at->time_since_epoch().count() == 1714566896);
    BOOST_TEST(t.refresh_token == "r");
}

BOOST_AUTO_TEST_CASE(bad_token_responses_never_echo_the_body) {
    const std::string secret = "SECRETTOKENVALUE";
    const std::vector<std::string> bodies = {
        "not json " + secret,
        R"({"token":")" + secret + R"(","expires_in":"soon"})",
        R"({"token":")" + secret + R"(","expires_in":-5})",
        R"({"token":")" + secret + R"(","expires_in":1.5})",
        R"({"token":")" + secret + R"(","issued_at":"yesterday"})",
        R"({"token":")" + secret + R"(","issued_at":"2024-02-30T00:00:00Z"})",
        R"({"token":")" + secret + R"(\r\nX: y"})",
        R"({"nothing":")" + secret + R"("})",
        R"({"token":42})",
        R"([")" + secret + R"("])",
    };
    for (const auto& body : bodies) {
        BOOST_TEST_CONTEXT(body) {
            const std::string message = token_refusal(body);
            BOOST_TEST(message.find(secret) == std::string::npos, message);
            BOOST_TEST(!message.empty());
        }
    }
}

BOOST_AUTO_TEST_CASE(percent_encoding) {
    BOOST_TEST(vmrt::image::percent_encode("aZ09-._~ :/?&=+%\xc3\xa9") ==
               "aZ09-._~%20%3A%2F%3F%26%3D%2B%25%C3%A9");
}

BOOST_AUTO_TEST_SUITE_END()
