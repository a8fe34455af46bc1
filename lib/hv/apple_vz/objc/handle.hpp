// Ownership of Objective-C objects from C++ (manual retain/release, the rules of Apple's "Advanced
// Memory Management Programming Guide"): a method whose name begins with alloc, new, copy or
// mutableCopy returns an object the caller owns (+1); every other method returns one it does not own
// (+0: a getter's ivar, or an autoreleased result that lives until the enclosing pool drains).
//
//   objc::strong s = objc::strong::adopt(objc::send<id>(objc::alloc(c), objc::sel<"init">()));  // +1
//   objc::strong p = objc::strong::retain(objc::send<id>(url, objc::sel<"path">()));              // +0
//
// `strong` releases what it owns exactly once. Copies retain, moves transfer.
#pragma once

#include "hv/apple_vz/objc/message.hpp"

#include <cstddef>
#include <utility>

namespace vmrt::objc {

class strong {
public:
    strong() noexcept = default;
    strong(std::nullptr_t) noexcept {}

    /// Takes over a reference the caller already owns (+1: alloc/init, new, copy, mutableCopy).
    static strong adopt(id obj) noexcept { return strong(obj); }
    /// Retains an object the caller does not own (+0) and owns that new reference.
    static strong retain(id obj) {
        if (obj) send<id>(obj, sel<"retain">());
        return strong(obj);
    }

    strong(const strong& other) : obj_(other.obj_) {
        if (obj_) send<id>(obj_, sel<"retain">());
    }
    strong(strong&& other) noexcept : obj_(std::exchange(other.obj_, nullptr)) {}
    strong& operator=(strong other) noexcept {
        std::swap(obj_, other.obj_);
        return *this;
    }
    ~strong() { reset(); }

    id get() const noexcept { return obj_; }
    explicit operator bool() const noexcept { return obj_ != nullptr; }

    /// Gives up ownership without releasing: the +1 reference passes to the caller.
    [[nodiscard]] id detach() noexcept { return std::exchange(obj_, nullptr); }
    /// Releases the object (if any) now.
    void reset() noexcept {
        if (id obj = std::exchange(obj_, nullptr)) send<void>(obj, sel<"release">());
    }

    friend bool operator==(const strong& a, const strong& b) noexcept { return a.obj_ == b.obj_; }
    friend bool operator==(const strong& a, std::nullptr_t) noexcept { return a.obj_ == nullptr; }

private:
    explicit strong(id obj) noexcept : obj_(obj) {}
    id obj_ = nullptr;
};

/// An @autoreleasepool scope: objects autoreleased on this thread while it lives are released when it
/// ends. Needed around code that reads +0 results on threads without a pool of their own.
class autorelease_pool {
public:
    autorelease_pool() : token_(::objc_autoreleasePoolPush()) {}
    autorelease_pool(const autorelease_pool&) = delete;
    autorelease_pool& operator=(const autorelease_pool&) = delete;
    ~autorelease_pool() { ::objc_autoreleasePoolPop(token_); }

private:
    void* token_;
};

/// [[c alloc] init] as an owned handle; null if `c` is null or init fails.
inline strong alloc_init(Class c) { return strong::adopt(send<id>(alloc(c), sel<"init">())); }

/// [[c alloc] <init>:args...] as an owned handle; null if `c` is null or the initializer fails (an
/// initializer that fails releases the allocated object itself and returns nil).
template <class... A>
strong alloc_init(Class c, SEL init, std::type_identity_t<A>... args) {
    return strong::adopt(send<id, A...>(alloc(c), init, args...));
}

}  // namespace vmrt::objc
