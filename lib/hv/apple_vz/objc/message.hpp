// Typed Objective-C message sends from C++, plus selector and class look-ups.
//
//   id vm = objc::send<id, id, void*>(objc::alloc(cls), objc::sel<"initWithConfiguration:queue:">(), config,
//   q); auto state = objc::send<NSInteger>(vm, objc::sel<"state">());
//
// objc_msgSend is a trampoline: it finds the method's IMP and jumps to it with the argument registers
// untouched. The caller must therefore call it through a pointer of the method's exact C type, so that
// the compiler passes each argument where the callee expects it (integer vs. vector registers, stack
// slots beyond the sixth/eighth argument, widths). `send` makes every argument type explicit:
// `send<R, A...>` takes its arguments as exactly A... (they are not deduced), because a deduced `int`
// for an `NSUInteger` parameter would leave the upper half of the register undefined.
//
// Return types are limited to void, scalars, pointers and enums. Methods returning structs (NSRange,
// CGRect...) need objc_msgSend_stret on x86_64 and a different register convention; the layer does not
// call any and `send` rejects them at compile time. `long double` returns (objc_msgSend_fpret) likewise.
#pragma once

#include "hv/apple_vz/objc/runtime.hpp"

#include <algorithm>
#include <atomic>
#include <concepts>
#include <cstddef>
#include <type_traits>

namespace vmrt::objc {

/// Anything a message can be sent to: an object, a class (classes are objects), or a handle.
struct receiver {
    id object;
    receiver(std::nullptr_t) noexcept : object(nullptr) {}
    receiver(id obj) noexcept : object(obj) {}
    receiver(Class cls) noexcept : object(reinterpret_cast<id>(cls)) {}
    template <class Handle>
    requires requires(const Handle& h) {
        { h.get() } -> std::convertible_to<id>;
    }
    receiver(const Handle& h) noexcept : object(h.get()) {}
};

template <class R>
concept message_result = std::is_void_v<R> || std::is_pointer_v<R> || std::is_enum_v<R> ||
    (std::is_arithmetic_v<R> && !std::is_same_v<std::remove_cv_t<R>, long double>);

/// Sends `sel` to `to` with arguments of exactly the types A... and returns R. A nil receiver returns
/// zero (nil, 0, 0.0, NO) without evaluating anything, as on Apple's runtime.
template <class R = void, class... A>
requires message_result<R> R send(receiver to, SEL sel, std::type_identity_t<A>... args) {
    using method = R (*)(id, SEL, A...);
    return reinterpret_cast<method>(&::objc_msgSend)(to.object, sel, args...);
}

/// Like `send`, starting the method search at `super_class` (Objective-C's [super ...]).
template <class R = void, class... A>
requires message_result<R> R send_super(id self, Class super_class, SEL sel,
                                        std::type_identity_t<A>... args) {
    objc_super super{self, super_class};
    using method = R (*)(objc_super*, SEL, A...);
    return reinterpret_cast<method>(&::objc_msgSendSuper)(&super, sel, args...);
}

/// A string usable as a template argument: sel<"start">(), cls<"NSString">().
template <std::size_t N>
struct literal {
    char text[N];
    constexpr literal(const char (&s)[N]) { std::copy_n(s, N, text); }
};

/// The selector named `name` (interned by the runtime; thread-safe).
inline SEL sel(const char* name) { return ::sel_registerName(name); }

/// The selector `Name`, registered once per program and then read from a static.
template <literal Name>
SEL sel() {
    static const SEL cached = ::sel_registerName(Name.text);
    return cached;
}

/// The class named `name`, or nullptr when this runtime has no such class: the availability check
/// for classes newer than the running macOS. Deliberately not cached, so that it always answers for
/// the runtime as it is (the simulation hides classes per test to play an older macOS).
inline Class cls(const char* name) { return ::objc_getClass(name); }

/// The class `Name`, cached once found. Only for classes every supported macOS has (Foundation);
/// a class that may be missing must be looked up with cls(name) at the point of use.
template <literal Name>
Class cls() {
    static std::atomic<Class> cached{nullptr};
    Class c = cached.load(std::memory_order_acquire);
    if (!c) {
        c = ::objc_getClass(Name.text);
        if (c) cached.store(c, std::memory_order_release);
    }
    return c;
}

inline id as_id(Class c) noexcept { return reinterpret_cast<id>(c); }

/// [obj respondsToSelector:s]: honours the object's own answer (forwarding, dynamic methods).
inline bool responds_to(receiver obj, SEL s) { return send<BOOL, SEL>(obj, sel<"respondsToSelector:">(), s); }

/// Whether instances of `c` respond to `s` (the runtime's answer; false for a nil class).
inline bool instances_respond_to(Class c, SEL s) { return c && ::class_respondsToSelector(c, s); }

/// [c alloc]: a +1 uninitialised instance; pair it with an init... message.
inline id alloc(Class c) { return send<id>(c, sel<"alloc">()); }

}  // namespace vmrt::objc
