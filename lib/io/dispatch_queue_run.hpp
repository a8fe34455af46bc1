// What both serial_queue implementations (libdispatch and thread-backed) do around a submitted
// function, so that the two behave the same way on the error paths.
#pragma once

#include <vmrt/detail/unique_function.hpp>

#include <cstdio>
#include <exception>
#include <string>

namespace vmrt::io::detail {

/// Runs one queued function. GCD terminates the process when a block lets an exception escape
/// (libdispatch wraps its callouts in a catch-all that calls objc_terminate); a serial_queue
/// function that throws does the same, after saying which queue it was.
inline void run_queue_function(vmrt::detail::unique_function<void()>& fn, const std::string& label) noexcept {
    try {
        fn();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "vmrt: a function on serial queue '%s' threw: %s (terminating, as GCD does)\n",
                     label.c_str(), e.what());
        std::terminate();
    } catch (...) {
        std::fprintf(stderr,
                     "vmrt: a function on serial queue '%s' threw a non-standard exception "
                     "(terminating, as GCD does)\n",
                     label.c_str());
        std::terminate();
    }
}

/// A queue destroyed from one of its own functions would wait for that function to return.
[[noreturn]] inline void die_destroyed_on_itself(const std::string& label) noexcept {
    std::fprintf(stderr,
                 "vmrt: serial queue '%s' destroyed from one of its own functions; its destructor would wait "
                 "for itself (terminating)\n",
                 label.c_str());
    std::terminate();
}

}  // namespace vmrt::io::detail
