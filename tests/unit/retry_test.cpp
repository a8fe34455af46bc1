// Retry decisions for busy HTTP servers (include/vmrt/io/retry.hpp).
#include <vmrt/io/retry.hpp>

#include <boost/test/unit_test.hpp>

using namespace std::chrono_literals;
using vmrt::io::parse_retry_after;

BOOST_AUTO_TEST_SUITE(retry_test)

BOOST_AUTO_TEST_CASE(only_not_now_statuses_are_retried) {
    for (unsigned s : {429u, 500u, 502u, 503u, 504u}) BOOST_TEST(vmrt::io::is_retryable_status(s), s);
    for (unsigned s : {200u, 400u, 401u, 403u, 404u, 416u, 501u, 505u})
        BOOST_TEST(!vmrt::io::is_retryable_status(s), s);
}

BOOST_AUTO_TEST_CASE(retry_after_in_seconds_or_as_a_date) {
    const auto now = std::chrono::sys_days(std::chrono::year(2026) / 11 / 27) + 10h;
    BOOST_TEST((parse_retry_after("120", now) == std::optional(120s)));
    BOOST_TEST((parse_retry_after("  0 ", now) == std::optional(0s)));
    BOOST_TEST((parse_retry_after("Fri, 27 Nov 2026 10:01:30 GMT", now) == std::optional(90s)));
    BOOST_TEST((parse_retry_after("Fri, 27 Nov 2026 09:00:00 GMT", now) == std::optional(0s)));  // past
    for (auto bad : {"", "-1", "1.5", "soon", "Fri, 27 Nov 2026 10:01:30 UTC",
                     "Fri, 31 Feb 2026 10:00:00 GMT", "Friday, 27-Nov-26 10:01:30 GMT", "99999999999"})
        BOOST_TEST(!parse_retry_after(bad, now).has_value(), bad);
}

BOOST_AUTO_TEST_CASE(backoff_doubles_up_to_the_cap_and_yields_to_the_server) {
    vmrt::io::retry_policy p;
    p.initial_delay = 100ms;
    p.max_delay = 1s;
    BOOST_TEST((vmrt::io::retry_delay(p, 1, std::nullopt) == 100ms));
    BOOST_TEST((vmrt::io::retry_delay(p, 2, std::nullopt) == 200ms));
    BOOST_TEST((vmrt::io::retry_delay(p, 4, std::nullopt) == 800ms));
    BOOST_TEST((vmrt::io::retry_delay(p, 9, std::nullopt) == 1s));
    BOOST_TEST((vmrt::io::retry_delay(p, 2, std::nullopt, 0.5) == 100ms));
    BOOST_TEST((vmrt::io::retry_delay(p, 1, 7s) == 7s));
}

BOOST_AUTO_TEST_SUITE_END()
