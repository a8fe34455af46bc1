// The simulated Objective-C runtime (Linux, tests only): the C++ API for defining simulated classes
// and for asserting on the runtime's state. The runtime itself implements the same C entry points
// that lib/hv/apple_vz/objc/runtime.hpp declares (objc_msgSend, objc_getClass, _Block_copy, ...), so
// the vmrt::objc layer and everything built on it run unchanged against it.
//
// Defining a class
// ----------------
// A simulated class is a real class of this runtime: messages reach its methods through
// objc_msgSend exactly as on a Mac. A method is any C++ callable (lambdas may capture); its first
// parameter is the receiver, the rest are the message's arguments, with the exact C types of the
// Objective-C declaration (id, BOOL, NSInteger, NSUInteger, uint32_t, double, void*, const char*...):
//
//   struct vm_payload {                   // C++ state every instance of the class carries
//       objc::strong configuration;
//       objc::NSInteger state = 0;
//   };
//   Class vm = sim::class_def<vm_payload>("VZVirtualMachine")            // superclass "NSObject"
//       .method("initWithConfiguration:queue:",
//               [](sim::self_t<vm_payload> self, id config, void* /*queue*/) -> id {
//                   self->configuration = objc::strong::retain(config);
//                   return self;  // or, failing: release self and return nil
//               })
//       .method("state", [](sim::self_t<vm_payload> self) -> objc::NSInteger { return self->state; })
//       .class_method("isSupported", [](Class) -> objc::BOOL { return objc::YES; })
//       .done();                                  // objc_registerClassPair: objc_getClass finds it now
//
// * The payload is default-constructed in +alloc and destroyed in -dealloc, at its class's level:
//   a subclass has its own payload (class_def<Sub>("Derived", "Base")) and methods inherited from
//   Base still see Base's payload. Payload destructors may send messages (release what they hold).
//   sim::payload<P>(obj) reaches it from outside a method.
// * Methods without C++ state use class_def<> and take sim::self_t<> (convertible to id).
// * Class methods take `Class` as the receiver. NSObject supplies +alloc, +new, -init, -retain,
//   -release, -autorelease, -dealloc, -respondsToSelector:, -isKindOfClass:, -isEqual:, -hash,
//   -description, -copy; a method defined with the same selector overrides the inherited one.
// * class_def<P>::extend("Name") adds or replaces methods of an existing class (P must be that
//   class's payload type, or void).
// * Inside a method, read Foundation arguments with the layer's helpers (objc::to_string,
//   objc::url_path, objc::array_items, objc::number_int64, objc::file_handle_fd...), call blocks
//   with objc::invoke_block<R, A...>(block, args...) after _Block_copy'ing any you keep, and hand out
//   errors made with sim::make_ns_error. Results follow Cocoa's rules: return +0 from getters, +1
//   from alloc/new/copy/init, and autorelease (sim::autorelease) what a convenience constructor creates.
// * Methods must not throw: callers on a Mac are Objective-C frames. Misuse is reported with
//   sim::fatal (prints and aborts, like an uncaught NSException); for conditions a test wants
//   to check, record them in the payload or a captured object and assert afterwards.
// * A message to an unimplemented selector prints "-[Class selector]: unrecognized selector sent to
//   instance 0x..." and aborts. sim::find_method answers the same question without aborting.
// * Class names are process-wide and permanent, like on a Mac: define each class once (for example
//   in a function with a static guard) and let tests reconfigure behaviour through captured state.
//
// Building: vmrt_objc_sim exists on Linux x86-64 only. The unit and component test executables
// link it (and vmrt_apple_vz) there; test files named objc_*_test.cpp or vz_*_test.cpp are left out
// of the build where it does not exist (tests/CMakeLists.txt). Class names are process-wide: prefix
// test-only classes (the existing suites use VmrtTest*/VmrtSim*).
//
// Availability: sim::scoped_hidden_class / scoped_hidden_method make objc_getClass and
// -respondsToSelector: (and dispatch) behave as on a macOS without that class or method.
#pragma once

#include "hv/apple_vz/objc/handle.hpp"
#include "hv/apple_vz/objc/message.hpp"
#include "hv/apple_vz/objc/type_encoding.hpp"

#include <cstddef>
#include <functional>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

namespace vmrt::objc::sim {

/// The receiver of a simulated instance method: the object and its payload at the method's class.
template <class Payload = void>
struct self_t {
    id obj;
    Payload* payload;
    Payload* operator->() const noexcept { return payload; }
    Payload& operator*() const noexcept { return *payload; }
    operator id() const noexcept { return obj; }
    id get() const noexcept { return obj; }  ///< lets objc::send take self as its receiver
};

template <>
struct self_t<void> {
    id obj;
    operator id() const noexcept { return obj; }
    id get() const noexcept { return obj; }
};

namespace detail {

/// What the dispatcher found for the message now starting on this thread (set by objc_msgSend's
/// look-up immediately before it jumps to the method).
struct dispatch_info {
    const void* context;  ///< the std::function of the class_def method
    void* payload;        ///< the receiver's payload at the method's class, or nullptr
};

/// The dispatch record of the class_def method now running for (self, cmd); aborts if the IMP was
/// called other than through objc_msgSend/objc_msgSendSuper.
dispatch_info current_dispatch(id self, SEL cmd) noexcept;

void add_cpp_method(Class cls, bool class_method, const char* selector, IMP imp, std::string types,
                    std::shared_ptr<void> fn);
Class begin_class(const char* name, const char* superclass);
Class existing_class(const char* name);
void add_payload(Class cls, std::size_t size, std::size_t alignment, void (*construct)(void*),
                 void (*destroy)(void*), const void* type);
const void* payload_type(Class cls) noexcept;
void* payload_at(id obj, const void* type) noexcept;
void finish_class(Class cls);

template <class T>
const void* type_tag() noexcept {
    static const char tag = 0;
    return &tag;
}

template <class F>
struct fn_traits : fn_traits<decltype(&F::operator())> {};
template <class R, class S, class... A>
struct fn_traits<R (*)(S, A...)> {
    using result = R;
    using receiver = S;
    using function = std::function<R(S, A...)>;
    template <class Payload>
    static R instance_thunk(id self, SEL cmd, A... args) {
        dispatch_info d = current_dispatch(self, cmd);
        const auto& fn = *static_cast<const function*>(d.context);
        if constexpr (std::is_void_v<Payload>)
            return fn(self_t<>{self}, args...);
        else
            return fn(self_t<Payload>{self, static_cast<Payload*>(d.payload)}, args...);
    }
    static R class_thunk(id self, SEL cmd, A... args) {
        dispatch_info d = current_dispatch(self, cmd);
        return (*static_cast<const function*>(d.context))(reinterpret_cast<Class>(self), args...);
    }
    static std::string types() { return method_type_encoding<R, A...>(); }
};
template <class R, class S, class... A>
struct fn_traits<R (*)(S, A...) noexcept> : fn_traits<R (*)(S, A...)> {};
template <class C, class R, class S, class... A>
struct fn_traits<R (C::*)(S, A...)> : fn_traits<R (*)(S, A...)> {};
template <class C, class R, class S, class... A>
struct fn_traits<R (C::*)(S, A...) const> : fn_traits<R (*)(S, A...)> {};
template <class C, class R, class S, class... A>
struct fn_traits<R (C::*)(S, A...) noexcept> : fn_traits<R (*)(S, A...)> {};
template <class C, class R, class S, class... A>
struct fn_traits<R (C::*)(S, A...) const noexcept> : fn_traits<R (*)(S, A...)> {};
template <class R, class S, class... A>
struct fn_traits<R (&)(S, A...)> : fn_traits<R (*)(S, A...)> {};

template <class F>
using traits_of =
    fn_traits<std::conditional_t<std::is_function_v<std::remove_reference_t<F>>,
                                 std::add_pointer_t<std::remove_reference_t<F>>, std::decay_t<F>>>;

}  // namespace detail

/// Defines a simulated class (or extends one); see the file comment.
template <class Payload = void>
class class_def {
public:
    /// Starts the new class `name` below the registered class `superclass`.
    explicit class_def(const char* name, const char* superclass = "NSObject")
        : cls_(detail::begin_class(name, superclass)), pending_(true) {
        if constexpr (!std::is_void_v<Payload>) {
            static_assert(std::is_default_constructible_v<Payload>,
                          "a payload is default-constructed in +alloc");
            static_assert(alignof(Payload) <= 16, "payload alignment above 16 bytes is not simulated");
            detail::add_payload(
                cls_, sizeof(Payload), alignof(Payload), [](void* where) { new (where) Payload(); },
                [](void* where) { static_cast<Payload*>(where)->~Payload(); }, detail::type_tag<Payload>());
        }
    }

    /// Adds or replaces methods of the existing class `name`.
    static class_def extend(const char* name) { return class_def(detail::existing_class(name)); }

    /// Instance method: fn(self_t<Payload> self, args...) -> R.
    template <class F>
    class_def& method(const char* selector, F&& fn) {
        using traits = detail::traits_of<F>;
        static_assert(std::is_same_v<typename traits::receiver, self_t<Payload>>,
                      "an instance method's first parameter is sim::self_t<Payload>");
        auto callable = std::make_shared<typename traits::function>(std::forward<F>(fn));
        detail::add_cpp_method(cls_, false, selector,
                               reinterpret_cast<IMP>(&traits::template instance_thunk<Payload>),
                               traits::types(), std::move(callable));
        return *this;
    }

    /// Class method: fn(Class cls, args...) -> R.
    template <class F>
    class_def& class_method(const char* selector, F&& fn) {
        using traits = detail::traits_of<F>;
        static_assert(std::is_same_v<typename traits::receiver, Class>,
                      "a class method's first parameter is Class");
        auto callable = std::make_shared<typename traits::function>(std::forward<F>(fn));
        detail::add_cpp_method(cls_, true, selector, reinterpret_cast<IMP>(&traits::class_thunk),
                               traits::types(), std::move(callable));
        return *this;
    }

    /// Registers a new class (a no-op for extend()) and returns it.
    Class done() {
        if (pending_) detail::finish_class(cls_);
        pending_ = false;
        return cls_;
    }

    Class get() const noexcept { return cls_; }

private:
    explicit class_def(Class existing) : cls_(existing), pending_(false) {
        if constexpr (!std::is_void_v<Payload>) {
            if (detail::payload_type(cls_) != detail::type_tag<Payload>())
                throw std::logic_error("sim::class_def::extend: the class's payload is of another type");
        }
    }

    Class cls_;
    bool pending_;
};

/// The payload of type P that `obj` carries (at whichever class level defined it), or nullptr.
template <class P>
P* payload(id obj) noexcept {
    return static_cast<P*>(detail::payload_at(obj, detail::type_tag<P>()));
}

/// [obj autorelease] for simulated methods that return an object their caller does not own.
id autorelease(id obj) noexcept;

/// Ends the program with "*** vmrt objc simulation: <what>" on stderr, as an uncaught NSException
/// ends a Mac program: for API misuse a simulated framework would raise on.
[[noreturn]] void fatal(const std::string& what) noexcept;

// --- looking into the runtime -------------------------------------------------------------------

/// Instances of exactly the class `name` now alive / ever allocated (0 for an unknown class).
long live_instances(const char* class_name);
long created_instances(const char* class_name);
/// Instances of every class now alive.
long live_instances_total();
/// The retain count of an instance.
long retain_count(id obj);
/// Blocks _Block_copy has put on the heap and _Block_release has not yet freed.
long live_heap_blocks();
/// The signature string of a block (nullptr without BLOCK_HAS_SIGNATURE).
const char* block_signature(id block);
/// Objects autoreleased on a thread that had no pool (Apple logs these with OBJC_DEBUG_MISSING_POOLS;
/// they wait until their thread exits).
long autoreleased_without_pool();
/// Objects waiting in the current thread's autorelease pools.
std::size_t pending_autoreleases();

/// The IMP that [receiver sel] would run, or nullptr where objc_msgSend would report an
/// unrecognized selector.
IMP find_method(id receiver, SEL sel);
/// The text objc_msgSend prints before aborting on an unrecognized selector.
std::string unrecognized_selector_message(id receiver, SEL sel);

/// While alive, the class `name` does not exist for objc_getClass (an older macOS).
class scoped_hidden_class {
public:
    explicit scoped_hidden_class(std::string name);
    scoped_hidden_class(const scoped_hidden_class&) = delete;
    scoped_hidden_class& operator=(const scoped_hidden_class&) = delete;
    ~scoped_hidden_class();

private:
    std::string name_;
};

/// While alive, instances of `class_name` (and its subclasses) lack the instance method
/// `selector` (use "+selector" for a class method).
class scoped_hidden_method {
public:
    scoped_hidden_method(const char* class_name, const char* selector);
    scoped_hidden_method(const scoped_hidden_method&) = delete;
    scoped_hidden_method& operator=(const scoped_hidden_method&) = delete;
    ~scoped_hidden_method();

private:
    Class cls_;
    SEL sel_;
};

/// Declares the protocol `name` (objc_getProtocol finds it from now on) and returns it.
Protocol* define_protocol(const char* name);

// --- Foundation values the simulated frameworks hand out ------------------------------------------

/// An NSError (+1) with userInfo {NSLocalizedDescription: description} (when not empty) and
/// NSUnderlyingError: underlying (when not nil).
strong make_ns_error(const std::string& domain, NSInteger code, const std::string& description,
                     id underlying = nullptr);

}  // namespace vmrt::objc::sim
