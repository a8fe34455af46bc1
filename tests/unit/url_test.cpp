// https URL parsing and Location resolution (lib/io/url.cpp): what is accepted and normalised,
// what is refused and why, and generated inputs whose accepted forms must round-trip.
#include <vmrt/error.hpp>
#include <vmrt/io/url.hpp>

#include <boost/test/unit_test.hpp>

#include <random>
#include <string>
#include <vector>

namespace {

using vmrt::io::https_url;
using vmrt::io::parse_https_url;
using vmrt::io::try_parse_https_url;
using vmrt::io::try_resolve_location;

https_url parsed(const std::string& text) {
    std::string why;
    auto url = try_parse_https_url(text, why);
    BOOST_TEST_REQUIRE(url.has_value(), text << " refused: " << why);
    return *url;
}

std::string refusal(const std::string& text) {
    std::string why;
    auto url = try_parse_https_url(text, why);
    BOOST_TEST(!url.has_value(), text << " was accepted as " << (url ? url->str() : ""));
    BOOST_TEST(!why.empty());
    return why;
}

std::string resolved(const std::string& base, const std::string& location) {
    std::string why;
    auto url = try_resolve_location(parsed(base), location, why);
    BOOST_TEST_REQUIRE(url.has_value(), location << " refused: " << why);
    return url->str();
}

}  // namespace

BOOST_AUTO_TEST_SUITE(url_test)

BOOST_AUTO_TEST_CASE(parses_host_port_and_target) {
    auto u = parsed("https://Example.ORG:8443/a/b.img?x=1&y=%20#frag");
    BOOST_TEST(u.host == "example.org");
    BOOST_TEST(u.port == 8443);
    BOOST_TEST(u.target == "/a/b.img?x=1&y=%20");
    BOOST_TEST(!u.ip_literal);
    BOOST_TEST(u.authority() == "example.org:8443");
    BOOST_TEST(u.str() == "https://example.org:8443/a/b.img?x=1&y=%20");
}

BOOST_AUTO_TEST_CASE(defaults_and_normalisation) {
    BOOST_TEST(parsed("HTTPS://host").str() == "https://host/");
    BOOST_TEST(parsed("https://host:443/x").str() == "https://host/x");
    BOOST_TEST(parsed("https://host:/x").port == 443);
    BOOST_TEST(parsed("https://host?q").target == "/?q");
    BOOST_TEST(parsed("https://host/a/./b/../c").target == "/a/c");
    BOOST_TEST(parsed("https://host/a/..").target == "/");
    BOOST_TEST(parsed("https://host/../../x").target == "/x");
    BOOST_TEST(parsed("https://host/dir/").target == "/dir/");
}

BOOST_AUTO_TEST_CASE(ip_literals) {
    auto v4 = parsed("https://127.0.0.1:4443/f");
    BOOST_TEST(v4.ip_literal);
    BOOST_TEST(v4.host == "127.0.0.1");
    auto v6 = parsed("https://[::1]:4443/f");
    BOOST_TEST(v6.ip_literal);
    BOOST_TEST(v6.host == "::1");
    BOOST_TEST(v6.authority() == "[::1]:4443");
    BOOST_TEST(parsed("https://[0:0:0:0:0:0:0:1]/").host == "::1");
}

BOOST_AUTO_TEST_CASE(refusals_say_why) {
    BOOST_TEST(refusal("http://host/x").find("only https") != std::string::npos);
    BOOST_TEST(refusal("ftp://host/x").find("\"ftp\"") != std::string::npos);
    BOOST_TEST(refusal("/just/a/path").find("no scheme") != std::string::npos);
    BOOST_TEST(refusal("https://user:pw@host/").find("credentials") != std::string::npos);
    BOOST_TEST(refusal("https:///x").find("no host") != std::string::npos);
    BOOST_TEST(refusal("https://host:0/").find("port") != std::string::npos);
    BOOST_TEST(refusal("https://host:65536/").find("port") != std::string::npos);
    BOOST_TEST(refusal("https://host:+1/").find("port") != std::string::npos);
    BOOST_TEST(refusal("https://host:44a/").find("port") != std::string::npos);
    BOOST_TEST(refusal("https://1.2.3.999/").find("IPv4") != std::string::npos);
    BOOST_TEST(refusal("https://[::1/").find("IPv6") != std::string::npos);
    BOOST_TEST(refusal("https://[fe80::1%25eth0]/").find("IPv6") != std::string::npos);
    BOOST_TEST(refusal("https://ho st/").find("host") != std::string::npos);
    BOOST_TEST(refusal("https:host/x").find("//") != std::string::npos);
    // Anything that could end or split the request line must be percent-encoded by the caller.
    for (std::string bad : {"https://h/a b", "https://h/a\r\nX-Injected: 1", "https://h/\x7f",
                            "https://h/a\\b", "https://h/%zz", "https://h/%4", "https://h/caf\xc3\xa9"})
        BOOST_TEST(refusal(bad).find("encoded") != std::string::npos, bad);
    BOOST_TEST(refusal("https://h/" + std::string(9000, 'a')).find("longer") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(parse_https_url_throws_a_clear_error) {
    try {
        parse_https_url("http://example.org/kernel");
        BOOST_FAIL("accepted plain http");
    } catch (const vmrt::error& e) {
        BOOST_TEST(e.code() == boost::system::errc::invalid_argument);
        BOOST_TEST(e.diag().message.find("http://example.org/kernel") != std::string::npos);
        BOOST_TEST(e.diag().message.find("only https") != std::string::npos);
    }
}

BOOST_AUTO_TEST_CASE(location_resolution) {
    const std::string base = "https://a.example:8443/dir/file?x=1";
    BOOST_TEST(resolved(base, "https://b.example/y") == "https://b.example/y");
    BOOST_TEST(resolved(base, "//c.example/z") == "https://c.example/z");
    BOOST_TEST(resolved(base, "/abs/p?q=2") == "https://a.example:8443/abs/p?q=2");
    BOOST_TEST(resolved(base, "other") == "https://a.example:8443/dir/other");
    BOOST_TEST(resolved(base, "../up") == "https://a.example:8443/up");
    BOOST_TEST(resolved(base, "./same#frag") == "https://a.example:8443/dir/same");
    BOOST_TEST(resolved(base, "?only=query") == "https://a.example:8443/dir/file?only=query");

    std::string why;
    BOOST_TEST(!try_resolve_location(parsed(base), "http://a.example/downgrade", why));
    BOOST_TEST(why.find("only https") != std::string::npos);
    BOOST_TEST(!try_resolve_location(parsed(base), "", why));
    BOOST_TEST(!try_resolve_location(parsed(base), "/a b", why));
}

// Generated URLs from a small alphabet of meaningful pieces: whatever is accepted must be
// canonical (parsing its str() gives the same URL) and must hold no byte that could break a
// request line.
BOOST_AUTO_TEST_CASE(generated_urls_round_trip) {
    const std::vector<std::string> pieces = {
        "https://", "HTTPS://", "http://", "host", "EXAMPLE.org", "127.0.0.1", "[::1]", "[", "]", ":", ":443",
        ":8080",    ":0",       "@",       "/",    "/a",          "..",        ".",     "?", "#", "%", "%41",
        " ",        "\r\n",     "\\",      "\x80", "a",           "-",         "_",     "0", "//"};
    std::mt19937 rng(20240604);
    std::size_t accepted = 0;
    for (int i = 0; i < 20000; ++i) {
        std::string text = i % 2 ? "https://" : "";
        int n = 1 + static_cast<int>(rng() % 8);
        for (int k = 0; k < n; ++k) text += pieces[rng() % pieces.size()];
        std::string why;
        auto url = try_parse_https_url(text, why);
        if (!url) {
            BOOST_TEST(!why.empty());
            continue;
        }
        ++accepted;
        BOOST_TEST(url->target.front() == '/');
        for (char c : url->target) BOOST_TEST((c > 0x20 && c < 0x7f), text);
        for (char c : url->host) BOOST_TEST((c > 0x20 && c < 0x7f && c != '/' && c != '@'), text);
        auto again = try_parse_https_url(url->str(), why);
        BOOST_TEST_REQUIRE(again.has_value(), url->str() << " does not reparse: " << why);
        BOOST_TEST((*again == *url), text << " -> " << url->str());
        auto moved = try_resolve_location(*url, pieces[rng() % pieces.size()], why);
        if (moved) BOOST_TEST(moved->target.front() == '/');
    }
    BOOST_TEST(accepted > 1000u);
}

BOOST_AUTO_TEST_SUITE_END()
