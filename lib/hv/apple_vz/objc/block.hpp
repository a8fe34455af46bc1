// Blocks (Objective-C closures) made from C++ callables, laid out by hand as the compiler would lay
// out a block literal: see clang's "Block Implementation Specification"
// (https://clang.llvm.org/docs/Block-ABI-Apple.html, ABI.2010.3.16).
//
//   objc::block<void(id)> done = objc::make_block<void(id)>([state](id error) { ... });
//   objc::send<void, id>(vm, objc::sel<"startWithCompletionHandler:">(), done.get());
//
// make_block builds a stack literal (isa _NSConcreteStackBlock, flags BLOCK_HAS_COPY_DISPOSE |
// BLOCK_HAS_CTOR | BLOCK_HAS_SIGNATURE) whose one captured variable is a shared owner of the C++
// callable, and copies it to the heap with _Block_copy: the runtime calls the descriptor's copy
// helper, which copy-constructs that owner into the heap block. The `block` handle owns one reference
// to the heap block. A framework that keeps the handler (to call it later, on its own queue/thread)
// _Block_copy's it again, which only counts a reference; when the last reference is released — after
// a call or without one — the runtime calls the dispose helper, which destroys the owner, and the
// callable is destroyed exactly once, on whichever thread let go last.
//
// The callable must not throw: an exception cannot unwind through the framework's Objective-C frames,
// so the invoke function is noexcept and a throw terminates the program.
#pragma once

#include "hv/apple_vz/objc/runtime.hpp"
#include "hv/apple_vz/objc/type_encoding.hpp"

#include <functional>
#include <memory>
#include <new>
#include <string>
#include <type_traits>
#include <utility>

namespace vmrt::objc {

namespace block_abi {

/// Flags of a block literal (Block-ABI-Apple "flags" enum).
enum : int {
    has_copy_dispose = 1 << 25,  ///< the descriptor has copy and dispose helpers
    has_ctor = 1 << 26,          ///< the helpers run C++ code (constructors/destructors)
    is_global = 1 << 28,         ///< statically allocated; copy and release do nothing
    has_stret = 1 << 29,         ///< invoke returns a struct through a hidden pointer (never used here)
    has_signature = 1 << 30,     ///< the descriptor has the signature field
};

/// The fields every block literal starts with.
struct header {
    void* isa;               ///< &_NSConcreteStackBlock, &_NSConcreteGlobalBlock (or the heap class)
    int flags;               ///< the enum above, plus the runtime's reference count bits on heap copies
    int reserved;            ///< zero
    void (*invoke)();        ///< R (*)(void* block, A...), stored type-erased
    const void* descriptor;  ///< descriptor_with_helpers or descriptor_plain, as the flags say
};

/// Descriptor of a literal with BLOCK_HAS_COPY_DISPOSE and BLOCK_HAS_SIGNATURE.
struct descriptor_with_helpers {
    unsigned long reserved;  ///< zero
    unsigned long size;      ///< sizeof the whole literal: _Block_copy copies this much
    void (*copy_helper)(void* dst, void* src);
    void (*dispose_helper)(void* src);
    const char* signature;  ///< Objective-C type encoding of R (^)(A...)
};

/// Descriptor of a literal with BLOCK_HAS_SIGNATURE only (a global block captures nothing).
struct descriptor_plain {
    unsigned long reserved;
    unsigned long size;
    const char* signature;
};

}  // namespace block_abi

/// Calls a block as its caller would (a framework calling a completion handler): through the invoke
/// pointer, passing the block itself first.
template <class R, class... A>
R invoke_block(id blk, std::type_identity_t<A>... args) {
    auto* head = reinterpret_cast<block_abi::header*>(blk);
    return reinterpret_cast<R (*)(void*, A...)>(head->invoke)(blk, args...);
}

/// The block signature of a C++ function type, e.g. "v16@?0@8" for void(id).
template <class Sig>
struct block_signature;
template <class R, class... A>
struct block_signature<R(A...)> {
    static const char* get() {
        static const std::string encoded = block_type_encoding<R, A...>();
        return encoded.c_str();
    }
};

/// An owned reference to a heap (or global) block of type Sig. Copying takes another reference
/// (_Block_copy), destruction gives one back (_Block_release).
template <class Sig>
class block;

template <class R, class... A>
class block<R(A...)> {
public:
    block() noexcept = default;
    /// Takes over one reference to a block that is already on the heap or global.
    static block adopt(void* heap_block) noexcept {
        block b;
        b.ptr_ = heap_block;
        return b;
    }
    block(const block& other) : ptr_(other.ptr_ ? ::_Block_copy(other.ptr_) : nullptr) {}
    block(block&& other) noexcept : ptr_(std::exchange(other.ptr_, nullptr)) {}
    block& operator=(block other) noexcept {
        std::swap(ptr_, other.ptr_);
        return *this;
    }
    ~block() {
        if (ptr_) ::_Block_release(ptr_);
    }

    /// The block as an object pointer, to pass as a message argument (blocks are objects).
    id get() const noexcept { return static_cast<id>(ptr_); }
    explicit operator bool() const noexcept { return ptr_ != nullptr; }
    R operator()(A... args) const { return invoke_block<R, A...>(get(), args...); }

private:
    void* ptr_ = nullptr;
};

namespace detail {

/// A block literal whose one captured variable is a std::shared_ptr<F>.
template <class F, class R, class... A>
struct callable_literal {
    using owner = std::shared_ptr<F>;

    block_abi::header head;
    alignas(owner) unsigned char capture[sizeof(owner)];

    owner& captured() noexcept { return *std::launder(reinterpret_cast<owner*>(capture)); }

    static R invoke(void* self, A... args) noexcept {
        return (*static_cast<callable_literal*>(self)->captured())(args...);
    }
    // The runtime has already copied the literal's bytes into `dst`; its capture bytes are a bitwise
    // duplicate, not an object: construct the heap copy's owner over them (as clang's copy helper
    // copy-constructs a captured C++ object).
    static void copy_helper(void* dst, void* src) {
        new (static_cast<callable_literal*>(dst)->capture)
            owner(static_cast<callable_literal*>(src)->captured());
    }
    static void dispose_helper(void* src) {
        std::destroy_at(&static_cast<callable_literal*>(src)->captured());
    }

    static const block_abi::descriptor_with_helpers* descriptor() {
        static const block_abi::descriptor_with_helpers d{0, sizeof(callable_literal), &copy_helper,
                                                          &dispose_helper, block_signature<R(A...)>::get()};
        return &d;
    }
};

template <class Sig, class F>
struct literal_for;
template <class R, class... A, class F>
struct literal_for<R(A...), F> {
    using type = callable_literal<F, R, A...>;
};

}  // namespace detail

/// A heap block of type Sig (e.g. void(id)) that calls `fn`. The block is created as a stack literal
/// and copied with _Block_copy, so the copy/dispose helpers run exactly as they do for a block a
/// compiler made.
template <class Sig, class F>
block<Sig> make_block(F&& fn) {
    using callable = std::decay_t<F>;
    using literal = typename detail::literal_for<Sig, callable>::type;
    static_assert(std::is_standard_layout_v<literal>, "a block literal must be standard-layout");

    literal on_stack;
    on_stack.head.isa = static_cast<void*>(_NSConcreteStackBlock);
    on_stack.head.flags = block_abi::has_copy_dispose | block_abi::has_ctor | block_abi::has_signature;
    on_stack.head.reserved = 0;
    on_stack.head.invoke = reinterpret_cast<void (*)()>(&literal::invoke);
    on_stack.head.descriptor = literal::descriptor();
    using owner = typename literal::owner;
    new (on_stack.capture) owner(std::make_shared<callable>(std::forward<F>(fn)));

    void* heap = ::_Block_copy(&on_stack);
    // The stack literal's scope ends here: destroy its capture, as compiled code does at the end of
    // the enclosing scope. The heap copy holds its own owner.
    std::destroy_at(&on_stack.captured());
    if (!heap) throw std::bad_alloc();
    return block<Sig>::adopt(heap);
}

namespace detail {

template <auto Fn, class R, class... A>
struct global_literal {
    block_abi::header head;

    static R invoke(void*, A... args) noexcept { return Fn(args...); }
    static const global_literal* instance() {
        static const block_abi::descriptor_plain d{0, sizeof(global_literal),
                                                   block_signature<R(A...)>::get()};
        static const global_literal literal{{static_cast<void*>(_NSConcreteGlobalBlock),
                                             block_abi::is_global | block_abi::has_signature, 0,
                                             reinterpret_cast<void (*)()>(&invoke), &d}};
        return &literal;
    }
};

template <class Sig, auto Fn>
struct global_literal_for;
template <class R, class... A, auto Fn>
struct global_literal_for<R(A...), Fn> {
    using type = global_literal<Fn, R, A...>;
};

}  // namespace detail

/// A global block (captures nothing, lives forever) calling the function `Fn`: what the compiler
/// emits for a block literal without captures. _Block_copy and _Block_release leave it alone.
template <class Sig, auto Fn>
block<Sig> global_block() {
    using literal = typename detail::global_literal_for<Sig, Fn>::type;
    return block<Sig>::adopt(const_cast<literal*>(literal::instance()));
}

}  // namespace vmrt::objc
