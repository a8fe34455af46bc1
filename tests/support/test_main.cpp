// The Boost.Test entry point shared by every test tier.
#define BOOST_TEST_MODULE vmrt
#include <boost/test/unit_test.hpp>
