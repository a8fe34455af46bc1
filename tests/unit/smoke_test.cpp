#include <vmrt/error.hpp>

#include <boost/test/unit_test.hpp>

BOOST_AUTO_TEST_SUITE(smoke_test)
BOOST_AUTO_TEST_CASE(error_category_names_codes) {
    vmrt::error_code ec = vmrt::errc::invalid_spec;
    BOOST_TEST(ec.category().name() == std::string("vmrt"));
    BOOST_TEST(ec.message() == "invalid VM spec");
}
BOOST_AUTO_TEST_SUITE_END()
