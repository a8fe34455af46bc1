// Objective-C classes created at run time whose methods are C++ functions: delegates and listeners
// (VZVirtualMachineDelegate, VZVirtioSocketListenerDelegate) that call back into C++.
//
//   struct vm_events { std::shared_ptr<sink> to; };
//   void guest_did_stop(vm_events& e, id vm) { e.to->guest_stopped(); }
//   void did_stop_with_error(vm_events& e, id vm, id error) { e.to->failed(objc::to_error(error, "VM")); }
//
//   static const objc::cpp_class<vm_events> delegate_class =
//       objc::cpp_class_builder<vm_events>("VmrtVirtualMachineDelegate")
//           .method<&guest_did_stop>("guestDidStopVirtualMachine:")
//           .method<&did_stop_with_error>("virtualMachine:didStopWithError:")
//           .finish();
//   objc::strong delegate = delegate_class.make(vm_events{sink});
//
// Each instance owns one C++ value of type State, created by make() and destroyed in the class's
// -dealloc (which then calls [super dealloc]), i.e. when the last reference to the object goes away
// on whatever thread that is. A method is a function or captureless lambda R(State&, A...): it is
// added with class_addMethod under an IMP `R imp(id self, SEL _cmd, A...)` and its type encoding.
// Methods must not throw (they are called from the framework's Objective-C code); they run on the
// framework's thread, so State must be safe to use from there. A class name can be registered only
// once per process: keep the cpp_class in a function-local static. Built classes must not be
// subclassed.
#pragma once

#include "hv/apple_vz/objc/handle.hpp"
#include "hv/apple_vz/objc/type_encoding.hpp"

#include <vmrt/error.hpp>

#include <functional>
#include <string>
#include <type_traits>
#include <utility>

namespace vmrt::objc {

template <class State>
class cpp_class;

namespace detail {

/// What the instance's state ivar points to: the C++ value and how to destroy it.
struct state_box {
    const void* type;                      ///< identifies State (type_tag<State>())
    void (*destroy)(state_box*) noexcept;  ///< deletes the whole typed box
};

template <class State>
struct typed_state_box : state_box {
    State value;
};

template <class State>
const void* type_tag() noexcept {
    static const char tag = 0;
    return &tag;
}

/// The box an instance owns, or nullptr (nil, no state ivar, or not made by make()).
state_box* box_of(id obj) noexcept;
/// Stores `box` in the instance's state ivar.
void set_box(id obj, state_box* box) noexcept;

/// Allocates the class pair with the state ivar and the -dealloc that frees the box. Throws
/// vmrt::error(errc::internal) if the name is taken or the superclass is missing.
Class allocate_class(const char* name, Class superclass);
void add_method(Class cls, const char* selector, IMP imp, const std::string& types);

template <class T>
struct method_signature;
template <class R, class S, class... A>
struct method_signature<R (*)(S&, A...)> {
    using result = R;
    using state = S;
    template <class State, auto Fn>
    static R imp(id self, SEL, A... args) noexcept {
        State* state = cpp_class<State>::state_of(self);
        if (!state) {
            // An instance made with plain alloc/init, or one whose -dealloc has begun: nothing to call.
            if constexpr (std::is_void_v<R>)
                return;
            else
                return R{};
        }
        return std::invoke(Fn, *state, args...);
    }
    static std::string types() { return method_type_encoding<R, A...>(); }
};
template <class R, class S, class... A>
struct method_signature<R (*)(S&, A...) noexcept> : method_signature<R (*)(S&, A...)> {};
template <class C, class R, class S, class... A>
struct method_signature<R (C::*)(S&, A...) const> : method_signature<R (*)(S&, A...)> {};
template <class C, class R, class S, class... A>
struct method_signature<R (C::*)(S&, A...) const noexcept> : method_signature<R (*)(S&, A...)> {};

/// Function pointers keep their type; a lambda is described by its call operator.
template <class F>
struct callable_signature : method_signature<decltype(&F::operator())> {};
template <class F>
requires std::is_pointer_v<F>
struct callable_signature<F> : method_signature<F> {
};

}  // namespace detail

/// A class made by cpp_class_builder<State>: makes instances that own a State.
template <class State>
class cpp_class {
public:
    cpp_class() = default;
    Class get() const noexcept { return cls_; }

    /// A new instance ([[cls alloc] init]) owning `state`.
    strong make(State state) const {
        strong obj = alloc_init(cls_);
        if (!obj)
            throw error(errc::internal,
                        {.message = std::string("cannot create an instance of ") + ::class_getName(cls_)});
        auto* box =
            new detail::typed_state_box<State>{{detail::type_tag<State>(), &destroy}, std::move(state)};
        detail::set_box(obj.get(), box);
        return obj;
    }

    /// The State owned by `obj`, or nullptr if `obj` is nil or was not made by a cpp_class<State>.
    static State* state_of(id obj) noexcept {
        detail::state_box* box = detail::box_of(obj);
        if (!box || box->type != detail::type_tag<State>()) return nullptr;
        return &static_cast<detail::typed_state_box<State>*>(box)->value;
    }

private:
    template <class>
    friend class cpp_class_builder;
    explicit cpp_class(Class c) noexcept : cls_(c) {}
    static void destroy(detail::state_box* box) noexcept {
        delete static_cast<detail::typed_state_box<State>*>(box);
    }

    Class cls_ = nullptr;
};

template <class State>
class cpp_class_builder {
public:
    /// Starts class `name` below `superclass` (NSObject by default).
    explicit cpp_class_builder(const char* name, Class superclass = cls<"NSObject">())
        : cls_(detail::allocate_class(name, superclass)) {}
    cpp_class_builder(const cpp_class_builder&) = delete;
    cpp_class_builder& operator=(const cpp_class_builder&) = delete;
    /// A class that was never registered is disposed of.
    ~cpp_class_builder() {
        if (cls_) ::objc_disposeClassPair(cls_);
    }

    /// Adds the instance method `selector` calling Fn(State&, args...).
    template <auto Fn>
    cpp_class_builder& method(const char* selector) {
        using signature = detail::callable_signature<std::remove_cvref_t<decltype(Fn)>>;
        static_assert(std::is_same_v<std::remove_cv_t<typename signature::state>, State>,
                      "the method's first parameter must be State&");
        detail::add_method(cls_, selector, reinterpret_cast<IMP>(&signature::template imp<State, Fn>),
                           signature::types());
        return *this;
    }

    /// Declares conformance to protocol `name` if this runtime knows it; returns whether it did.
    /// (Frameworks test delegates with -respondsToSelector:, so conformance is documentation.)
    bool adopt_protocol(const char* name) {
        objc_object* protocol = ::objc_getProtocol(name);
        return protocol && ::class_addProtocol(cls_, protocol);
    }

    /// Registers the class; the builder is spent.
    cpp_class<State> finish() {
        ::objc_registerClassPair(cls_);
        return cpp_class<State>(std::exchange(cls_, nullptr));
    }

private:
    Class cls_;
};

}  // namespace vmrt::objc
