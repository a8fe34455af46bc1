// The switch's MAC table on its own: learning, aging against timestamps the test chooses,
// eviction of the stalest entry when full, forgetting a port, and a flood of random addresses
// that must leave the table bounded and still consistent.
#include "net/mac_table.hpp"

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <cstdint>
#include <random>
#include <vector>

namespace {

using namespace std::chrono_literals;
using vmrt::net::mac_table;
using vmrt::net::no_port;
using clock_type = mac_table::clock;

const clock_type::time_point t0 = clock_type::time_point(1h);

}  // namespace

BOOST_AUTO_TEST_SUITE(mac_table_test)

BOOST_AUTO_TEST_CASE(learns_and_moves_addresses) {
    mac_table t(16, 5min);
    BOOST_TEST(t.lookup(0x525400000001, t0) == no_port);
    t.learn(0x525400000001, 3, t0);
    t.learn(0x525400000002, 4, t0);
    BOOST_TEST(t.lookup(0x525400000001, t0) == 3u);
    BOOST_TEST(t.lookup(0x525400000002, t0) == 4u);
    BOOST_TEST(t.size() == 2u);
    // The station moved (a VM migrated, a cable was replugged): the newest sighting wins.
    t.learn(0x525400000001, 7, t0 + 1s);
    BOOST_TEST(t.lookup(0x525400000001, t0 + 1s) == 7u);
    BOOST_TEST(t.size() == 2u);
}

BOOST_AUTO_TEST_CASE(entries_age_out) {
    mac_table t(16, 10s);
    t.learn(1, 1, t0);
    t.learn(2, 2, t0 + 5s);
    BOOST_TEST(t.lookup(1, t0 + 10s) == 1u);  // exactly the aging time: still known
    BOOST_TEST(t.lookup(1, t0 + 11s) == no_port);
    BOOST_TEST(t.size() == 1u);  // the stale lookup removed it
    BOOST_TEST(t.lookup(2, t0 + 11s) == 2u);
    // A sighting refreshes an entry.
    t.learn(2, 2, t0 + 14s);
    t.expire(t0 + 20s);
    BOOST_TEST(t.size() == 1u);
    t.expire(t0 + 25s);
    BOOST_TEST(t.size() == 0u);
    BOOST_TEST(t.lookup(2, t0 + 25s) == no_port);
}

BOOST_AUTO_TEST_CASE(a_full_table_evicts_the_stalest_entry) {
    mac_table t(3, 1h);
    t.learn(0xa, 1, t0);
    t.learn(0xb, 2, t0 + 1s);
    t.learn(0xc, 3, t0 + 2s);
    t.learn(0xa, 1, t0 + 3s);  // refreshed: now b is the stalest
    t.learn(0xd, 4, t0 + 4s);
    BOOST_TEST(t.size() == 3u);
    BOOST_TEST(t.lookup(0xb, t0 + 4s) == no_port);
    BOOST_TEST(t.lookup(0xa, t0 + 4s) == 1u);
    BOOST_TEST(t.lookup(0xc, t0 + 4s) == 3u);
    BOOST_TEST(t.lookup(0xd, t0 + 4s) == 4u);
}

BOOST_AUTO_TEST_CASE(forgetting_a_port_drops_only_its_entries) {
    mac_table t(64, 1h);
    for (std::uint64_t m = 1; m <= 40; ++m) t.learn(m, static_cast<vmrt::net::port_slot>(m % 3), t0);
    t.forget_port(1);
    std::size_t left = 0;
    for (std::uint64_t m = 1; m <= 40; ++m) {
        auto p = t.lookup(m, t0);
        if (m % 3 == 1) {
            BOOST_TEST(p == no_port);
        } else {
            BOOST_TEST(p == m % 3);
            ++left;
        }
    }
    BOOST_TEST(t.size() == left);
}

BOOST_AUTO_TEST_CASE(a_flood_of_random_sources_stays_bounded_and_consistent) {
    constexpr std::size_t capacity = 4096;
    mac_table t(capacity, 5min);
    std::mt19937_64 rng(42);
    std::vector<std::uint64_t> recent(capacity);
    for (std::size_t i = 0; i < 1'000'000; ++i) {
        std::uint64_t mac = rng() & 0xfeffffffffffull;  // unicast, 48 bits
        t.learn(mac, static_cast<vmrt::net::port_slot>(i % 8), t0 + std::chrono::microseconds(i));
        recent[i % capacity] = mac;
        BOOST_REQUIRE(t.size() <= capacity);
    }
    BOOST_TEST(t.size() == capacity);
    // Eviction takes the stalest, and deletions keep every probe chain intact: the last
    // `capacity` addresses learned are all still found, on the port they came from.
    auto now = t0 + std::chrono::microseconds(1'000'000);
    for (std::size_t k = 0; k < capacity; ++k) {
        std::size_t i = 1'000'000 - capacity + k;
        BOOST_REQUIRE(t.lookup(recent[i % capacity], now) == i % 8);
    }
    // And they all age out together.
    t.expire(now + 6min);
    BOOST_TEST(t.size() == 0u);
}

BOOST_AUTO_TEST_CASE(a_zero_capacity_is_refused) {
    BOOST_CHECK_THROW(mac_table(0, 1s), std::invalid_argument);
}

BOOST_AUTO_TEST_SUITE_END()
