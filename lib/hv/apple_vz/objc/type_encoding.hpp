// Objective-C type encodings (the strings @encode produces) for C++ signatures: the `types` argument
// of class_addMethod and the `signature` field of a block descriptor. The runtime and the frameworks
// read them (NSMethodSignature, Swift bridging, -respondsToSelector: does not), so they must describe
// the real C types: "v24@0:8@16" is `void m(id self, SEL _cmd, id arg)`.
//
// Format (clang, ASTContext::getObjCEncodingForMethodDecl / ForBlock): return type, size of the
// argument frame, then each argument's type followed by its offset. Integer and enum arguments count
// at least sizeof(int) bytes in that arithmetic. `long` is encoded 'q' on LP64, as clang does.
#pragma once

#include "hv/apple_vz/objc/runtime.hpp"

#include <cstddef>
#include <string>
#include <type_traits>

namespace vmrt::objc {

namespace detail {

template <class T>
inline constexpr bool always_false = false;

}  // namespace detail

/// The type code of T ("@" for id, "q" for long, "^v" for an untyped pointer...).
template <class T>
std::string type_code() {
    using U = std::remove_cv_t<T>;
    if constexpr (std::is_enum_v<U>) {
        return type_code<std::underlying_type_t<U>>();
    } else if constexpr (std::is_same_v<U, const char*>) {
        return "r*";
    } else if constexpr (std::is_same_v<U, char*>) {
        return "*";
    } else if constexpr (std::is_pointer_v<U> && !std::is_same_v<U, id> && !std::is_same_v<U, Class> &&
                         !std::is_same_v<U, SEL>) {
        // "^" and the pointee's code, "r" first when it is const: `const id*` is "r^@". Pointers to
        // anything without a code of its own (structs, functions) are described as `void*`.
        using pointee = std::remove_pointer_t<U>;
        using bare = std::remove_cv_t<pointee>;
        const std::string prefix = std::is_const_v<pointee> ? "r^" : "^";
        if constexpr (std::is_arithmetic_v<bare> || std::is_enum_v<bare> || std::is_same_v<bare, id> ||
                      std::is_same_v<bare, Class> || std::is_same_v<bare, SEL>)
            return prefix + type_code<bare>();
        else
            return prefix + "v";
    } else {
        // clang-format off
        if constexpr (std::is_void_v<U>) return "v";
        else if constexpr (std::is_same_v<U, id>) return "@";
        else if constexpr (std::is_same_v<U, Class>) return "#";
        else if constexpr (std::is_same_v<U, SEL>) return ":";
        else if constexpr (std::is_same_v<U, bool>) return "B";
        else if constexpr (std::is_same_v<U, char> || std::is_same_v<U, signed char>) return "c";
        else if constexpr (std::is_same_v<U, unsigned char>) return "C";
        else if constexpr (std::is_same_v<U, short>) return "s";
        else if constexpr (std::is_same_v<U, unsigned short>) return "S";
        else if constexpr (std::is_same_v<U, int>) return "i";
        else if constexpr (std::is_same_v<U, unsigned int>) return "I";
        else if constexpr (std::is_same_v<U, long> || std::is_same_v<U, long long>) return "q";
        else if constexpr (std::is_same_v<U, unsigned long> || std::is_same_v<U, unsigned long long>) return "Q";
        else if constexpr (std::is_same_v<U, float>) return "f";
        else if constexpr (std::is_same_v<U, double>) return "d";
        else static_assert(detail::always_false<T>, "no Objective-C type encoding for this C++ type");
        // clang-format on
    }
}

/// Bytes an argument of type T occupies in the encoding's offset arithmetic.
template <class T>
constexpr std::size_t encoded_size() {
    if constexpr (std::is_integral_v<T> || std::is_enum_v<T>)
        return sizeof(T) < sizeof(int) ? sizeof(int) : sizeof(T);
    else
        return sizeof(T);
}

namespace detail {

template <class... A>
void append_arguments([[maybe_unused]] std::string& out, [[maybe_unused]] std::size_t offset) {
    ((out += type_code<A>() + std::to_string(offset), offset += encoded_size<A>()), ...);
}

}  // namespace detail

/// Method types for `R method(id self, SEL _cmd, A...)`, e.g. "c24@0:8@16" for -respondsToSelector:.
template <class R, class... A>
std::string method_type_encoding() {
    std::size_t frame = sizeof(id) + sizeof(SEL) + (std::size_t{0} + ... + encoded_size<A>());
    std::string out = type_code<R>() + std::to_string(frame) + "@0:" + std::to_string(sizeof(id));
    detail::append_arguments<A...>(out, sizeof(id) + sizeof(SEL));
    return out;
}

/// Block signature for `R (^)(A...)`: the block itself is the hidden first argument, "@?".
template <class R, class... A>
std::string block_type_encoding() {
    std::size_t frame = sizeof(void*) + (std::size_t{0} + ... + encoded_size<A>());
    std::string out = type_code<R>() + std::to_string(frame) + "@?0";
    detail::append_arguments<A...>(out, sizeof(void*));
    return out;
}

}  // namespace vmrt::objc
