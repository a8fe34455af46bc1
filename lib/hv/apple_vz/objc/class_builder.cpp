#include "hv/apple_vz/objc/class_builder.hpp"

#include <bit>

namespace vmrt::objc::detail {

namespace {

// The ivar holding the instance's state_box*. An untyped pointer ("^v"): the runtime neither retains
// nor releases it, the class's -dealloc deletes what it points to.
constexpr const char* state_ivar = "_vmrt_cpp_state";

state_box** slot_of(id obj) noexcept {
    if (!obj) return nullptr;
    Ivar ivar = ::class_getInstanceVariable(::object_getClass(obj), state_ivar);
    if (!ivar) return nullptr;
    return reinterpret_cast<state_box**>(reinterpret_cast<char*>(obj) + ::ivar_getOffset(ivar));
}

void dealloc_with_state(id self, SEL cmd) noexcept {
    if (state_box** slot = slot_of(self)) {
        if (state_box* box = std::exchange(*slot, nullptr)) box->destroy(box);
    }
    // [super dealloc], where "super" is the superclass of the class that added this -dealloc. The
    // object's class may be a subclass made by the system (KVO's NSKVONotifying_ classes), so walk up
    // to the last class whose -dealloc is this function.
    auto mine = reinterpret_cast<IMP>(&dealloc_with_state);
    Class owner = ::object_getClass(self);
    while (Class parent = ::class_getSuperclass(owner)) {
        if (::class_getMethodImplementation(parent, cmd) != mine) break;
        owner = parent;
    }
    send_super<void>(self, ::class_getSuperclass(owner), cmd);
}

}  // namespace

state_box* box_of(id obj) noexcept {
    state_box** slot = slot_of(obj);
    return slot ? *slot : nullptr;
}

void set_box(id obj, state_box* box) noexcept {
    if (state_box** slot = slot_of(obj)) *slot = box;
}

Class allocate_class(const char* name, Class superclass) {
    if (!superclass)
        throw error(errc::internal, {.message = std::string("cannot create Objective-C class ") + name +
                                                ": its superclass does not exist"});
    if (::class_getInstanceVariable(superclass, state_ivar))
        throw error(errc::internal, {.message = std::string("cannot create Objective-C class ") + name +
                                                ": classes made by cpp_class_builder cannot be subclassed"});
    Class c = ::objc_allocateClassPair(superclass, name, 0);
    if (!c)
        throw error(errc::internal, {.message = std::string("cannot create Objective-C class ") + name +
                                                ": the name is taken"});
    constexpr auto pointer_alignment = static_cast<std::uint8_t>(std::countr_zero(alignof(state_box*)));
    if (!::class_addIvar(c, state_ivar, sizeof(state_box*), pointer_alignment, "^v") ||
        !::class_addMethod(c, sel<"dealloc">(), reinterpret_cast<IMP>(&dealloc_with_state),
                           method_type_encoding<void>().c_str())) {
        ::objc_disposeClassPair(c);
        throw error(errc::internal, {.message = std::string("cannot set up Objective-C class ") + name});
    }
    return c;
}

void add_method(Class cls, const char* selector, IMP imp, const std::string& types) {
    if (!::class_addMethod(cls, sel(selector), imp, types.c_str()))
        throw error(errc::internal, {.message = std::string("cannot add method ") + selector + " to class " +
                                                ::class_getName(cls) + ": it already has one"});
}

}  // namespace vmrt::objc::detail
