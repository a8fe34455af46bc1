// Autorelease pools of the simulated runtime: a per-thread stack of pending objects in which a null
// entry marks where a pool begins (Apple's AutoreleasePoolPage keeps a POOL_BOUNDARY the same way).
// objc_autoreleasePoolPop releases everything above its boundary, newest first, including objects
// autoreleased while it does so and pools nested inside it that were never popped.
#include "runtime_model.hpp"
#include "sim.hpp"

#include <cstdint>
#include <vector>

namespace vmrt::objc::sim::detail {

namespace {

std::atomic<long> without_pool{0};

struct thread_pools {
    std::vector<objc_object*> stack;
    std::size_t boundaries = 0;

    // Releases entries until `keep` remain.
    void drain(std::size_t keep) {
        while (stack.size() > keep) {
            objc_object* obj = stack.back();
            stack.pop_back();
            if (obj)
                send<void>(obj, sel<"release">());
            else
                --boundaries;
        }
    }
    // A thread that ends with objects pending releases them (Apple: the pool page's TLS destructor).
    ~thread_pools() { drain(0); }
};

thread_local thread_pools pools;

}  // namespace

objc_object* autorelease(objc_object* obj) noexcept {
    if (!obj) return obj;
    // Apple's runtime then creates a pool page implicitly (and, with OBJC_DEBUG_MISSING_POOLS, reports
    // "autoreleased with no pool in place"): the object waits until its thread ends. Count it.
    if (pools.boundaries == 0) without_pool.fetch_add(1, std::memory_order_relaxed);
    pools.stack.push_back(obj);
    return obj;
}

}  // namespace vmrt::objc::sim::detail

namespace vmrt::objc::sim {

id autorelease(id obj) noexcept { return detail::autorelease(obj); }

long autoreleased_without_pool() { return detail::without_pool.load(); }

std::size_t pending_autoreleases() {
    std::size_t n = 0;
    for (objc_object* obj : detail::pools.stack)
        if (obj) ++n;
    return n;
}

}  // namespace vmrt::objc::sim

using vmrt::objc::sim::detail::fatal;
using vmrt::objc::sim::detail::pools;

void* objc_autoreleasePoolPush(void) {
    pools.stack.push_back(nullptr);
    ++pools.boundaries;
    return reinterpret_cast<void*>(static_cast<std::uintptr_t>(pools.stack.size()));
}

void objc_autoreleasePoolPop(void* context) {
    auto position = static_cast<std::size_t>(reinterpret_cast<std::uintptr_t>(context));
    if (position == 0 || position > pools.stack.size() || pools.stack[position - 1] != nullptr)
        fatal("objc_autoreleasePoolPop: the token is not a pool of this thread (popped twice, or on another "
              "thread)");
    pools.drain(position);  // leaves this pool's boundary on top
    pools.stack.pop_back();
    --pools.boundaries;
}
