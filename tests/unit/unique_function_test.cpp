// vmrt::detail::unique_function: the move-only callable the serial queue stores.
#include <vmrt/detail/unique_function.hpp>

#include <boost/test/unit_test.hpp>

#include <functional>
#include <memory>
#include <string>
#include <utility>

using vmrt::detail::unique_function;

BOOST_AUTO_TEST_SUITE(unique_function_test)

BOOST_AUTO_TEST_CASE(holds_move_only_callables_and_moves_with_them) {
    auto owned = std::make_unique<int>(41);
    unique_function<int(int)> f = [p = std::move(owned)](int x) {
        return *p + x;
    };
    BOOST_TEST(static_cast<bool>(f));
    BOOST_TEST(f(1) == 42);
    unique_function<int(int)> g = std::move(f);
    BOOST_TEST(!static_cast<bool>(f));  // a moved-from unique_function is empty
    BOOST_TEST(g(2) == 43);
}

BOOST_AUTO_TEST_CASE(destroys_the_target_when_reset_or_destroyed) {
    auto alive = std::make_shared<int>(0);
    std::weak_ptr<int> watch = alive;
    unique_function<void()> f = [a = std::move(alive)] {
    };
    BOOST_TEST(!watch.expired());
    f = nullptr;
    BOOST_TEST(watch.expired());
    BOOST_TEST(!static_cast<bool>(f));
}

BOOST_AUTO_TEST_CASE(a_void_signature_drops_the_result_and_arguments_are_forwarded) {
    std::string seen;
    unique_function<void(std::string &&)> f = [&seen](std::string&& s) {
        seen = std::move(s);
        return 5;  // dropped
    };
    f(std::string("forwarded"));
    BOOST_TEST(seen == "forwarded");
}

BOOST_AUTO_TEST_CASE(calling_an_empty_one_throws_bad_function_call) {
    unique_function<void()> f;
    BOOST_CHECK_THROW(f(), std::bad_function_call);
    unique_function<void()> g = nullptr;
    BOOST_CHECK_THROW(g(), std::bad_function_call);
}

BOOST_AUTO_TEST_SUITE_END()
