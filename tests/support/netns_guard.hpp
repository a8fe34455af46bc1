// A network namespace of a test's own (`ip netns add`), deleted with every device in it when the
// guard goes away, also when the test fails. Needs root.
#pragma once

#include "support/test_support.hpp"

#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <atomic>
#include <string>
#include <utility>

namespace vmrt::test {

class netns_guard {
public:
    /// Names the namespace `<prefix>-<pid>-<n>`, unique within the run and across concurrent runs.
    explicit netns_guard(const std::string& prefix)
        : name_(prefix + "-" + std::to_string(::getpid()) + "-" + std::to_string(next_number())) {
        run_to_end("ip", strings("netns", "del", name_));  // a leftover of a crashed run with the same pid
        auto [code, output] = run_to_end("ip", strings("netns", "add", name_));
        BOOST_REQUIRE_MESSAGE(code == 0, "ip netns add " << name_ << " failed (needs root): " << output);
    }
    netns_guard(const netns_guard&) = delete;
    netns_guard& operator=(const netns_guard&) = delete;
    ~netns_guard() {
        try {
            run_to_end("ip", strings("netns", "del", name_));
        } catch (...) {  // a destructor must not throw; the leftover check reports what remains
        }
    }

    const std::string& name() const noexcept { return name_; }

    /// `ip -n <ns> <args...>`: (exit code, output).
    template <typename... Args>
    std::pair<int, std::string> try_ip(Args... args) const {
        return run_to_end("ip", strings("-n", name_, args...));
    }
    /// Same, failing the test if the command fails.
    template <typename... Args>
    std::string ip(Args... args) const {
        auto [code, output] = try_ip(args...);
        BOOST_REQUIRE_MESSAGE(code == 0, "ip -n " << name_ << " ... failed: " << output);
        return output;
    }

private:
    static int next_number() {
        static std::atomic<int> counter{0};
        return counter++;
    }
    std::string name_;
};

}  // namespace vmrt::test
