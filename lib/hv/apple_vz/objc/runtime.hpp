// The Objective-C runtime and Block runtime entry points the vmrt::objc layer calls, declared with
// Apple's signatures (<objc/objc.h>, <objc/runtime.h>, <objc/message.h>, <Block.h>) so that this file
// needs no Apple header and compiles as plain C++ on every platform.
//
// On macOS these symbols come from libobjc and libsystem_blocks. On Linux only the simulated runtime
// (tests/sim/objc, target vmrt_objc_sim) defines them; that is why the layer lives in its own static
// library (vmrt_apple_vz) and not in libvmrt.
//
// objc_msgSend is declared the way Apple declares it when OBJC_OLD_DISPATCH_PROTOTYPES=0:
// `void objc_msgSend(void)`. It must never be called through that type; message.hpp casts it to the
// exact function type of the method (self, _cmd, arguments...) at every call, which is what makes the
// call follow the platform's C calling convention for those argument and return types.
#pragma once

#include <cstddef>
#include <cstdint>

extern "C" {

// Opaque runtime types (Apple: struct objc_object / objc_selector / objc_class / objc_ivar).
struct objc_object;
struct objc_selector;
struct objc_class;
struct objc_ivar;

/// Apple's `struct objc_super` (<objc/message.h>, C++ / Objective-C 2 spelling).
struct objc_super {
    objc_object* receiver;
    objc_class* super_class;
};

}  // extern "C"

namespace vmrt::objc {

using id = objc_object*;
using SEL = objc_selector*;
using Class = objc_class*;
using Ivar = objc_ivar*;
/// `Protocol` is `struct objc_object` outside Objective-C source (<objc/runtime.h>).
using Protocol = objc_object;
/// IMP as declared with OBJC_OLD_DISPATCH_PROTOTYPES=0; cast to the method's exact type before use.
using IMP = void (*)();

// BOOL is `bool` where Apple sets OBJC_BOOL_IS_BOOL (arm64) and `signed char` on x86_64. The
// simulation follows the same rule per architecture, so type encodings ('B' or 'c') match too.
#if defined(__aarch64__) || defined(__arm64__)
using BOOL = bool;
#else
using BOOL = signed char;
#endif
inline constexpr BOOL YES = static_cast<BOOL>(1);
inline constexpr BOOL NO = static_cast<BOOL>(0);

/// Foundation's integer types on LP64 (NSInteger is `long`, NSUInteger `unsigned long`).
using NSInteger = long;
using NSUInteger = unsigned long;

}  // namespace vmrt::objc

extern "C" {

// --- <objc/runtime.h>: classes, selectors, objects -------------------------------------------
objc_class* objc_getClass(const char* name);
objc_class* objc_lookUpClass(const char* name);
objc_selector* sel_registerName(const char* str);
const char* sel_getName(objc_selector* sel);
objc_class* object_getClass(objc_object* obj);
const char* object_getClassName(objc_object* obj);
const char* class_getName(objc_class* cls);
objc_class* class_getSuperclass(objc_class* cls);
vmrt::objc::BOOL class_respondsToSelector(objc_class* cls, objc_selector* sel);
vmrt::objc::IMP class_getMethodImplementation(objc_class* cls, objc_selector* name);

// --- <objc/runtime.h>: runtime-created classes -----------------------------------------------
objc_class* objc_allocateClassPair(objc_class* superclass, const char* name, std::size_t extraBytes);
void objc_registerClassPair(objc_class* cls);
void objc_disposeClassPair(objc_class* cls);
vmrt::objc::BOOL class_addMethod(objc_class* cls, objc_selector* name, vmrt::objc::IMP imp,
                                 const char* types);
/// `alignment` is log2 of the ivar's alignment in bytes, as in Apple's runtime.
vmrt::objc::BOOL class_addIvar(objc_class* cls, const char* name, std::size_t size, std::uint8_t alignment,
                               const char* types);
objc_ivar* class_getInstanceVariable(objc_class* cls, const char* name);
std::ptrdiff_t ivar_getOffset(objc_ivar* v);
objc_object* objc_getProtocol(const char* name);
vmrt::objc::BOOL class_addProtocol(objc_class* cls, objc_object* protocol);
vmrt::objc::BOOL class_conformsToProtocol(objc_class* cls, objc_object* protocol);

// --- <objc/message.h> ------------------------------------------------------------------------
void objc_msgSend(void);
void objc_msgSendSuper(void);

// --- autorelease pools: the ABI clang emits for @autoreleasepool (exported by libobjc) ---------
void* objc_autoreleasePoolPush(void);
void objc_autoreleasePoolPop(void* context);

// --- <Block.h> / Block ABI -------------------------------------------------------------------
void* _Block_copy(const void* aBlock);
void _Block_release(const void* aBlock);
// "Used by the compiler. Do not use these variables yourself." (<Block.h>) — the layer builds block
// literals in C++, which is exactly the compiler's job, so it does.
extern void* _NSConcreteStackBlock[32];
extern void* _NSConcreteGlobalBlock[32];

}  // extern "C"
