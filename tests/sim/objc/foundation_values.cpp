// Simulated NSData and NSNumber.
#include "foundation_model.hpp"
#include "runtime_model.hpp"

#include <cstring>

namespace vmrt::objc::sim::detail {

namespace {

using number = self_t<number_payload>;
using kind = number_payload::kind;

id set_signed(number self, std::int64_t value) {
    self->type = kind::signed_integer;
    self->signed_value = value;
    return self;
}
id set_unsigned(number self, std::uint64_t value) {
    self->type = kind::unsigned_integer;
    self->unsigned_value = value;
    return self;
}

std::int64_t as_signed(const number_payload& n) {
    switch (n.type) {
    case kind::boolean:
    case kind::signed_integer:
        return n.signed_value;
    case kind::unsigned_integer:
        return static_cast<std::int64_t>(n.unsigned_value);
    case kind::real:
        return static_cast<std::int64_t>(n.real_value);
    }
    return 0;
}

std::uint64_t as_unsigned(const number_payload& n) {
    switch (n.type) {
    case kind::unsigned_integer:
        return n.unsigned_value;
    case kind::real:
        return static_cast<std::uint64_t>(n.real_value);
    case kind::boolean:
    case kind::signed_integer:
        break;
    }
    return static_cast<std::uint64_t>(n.signed_value);
}

double as_real(const number_payload& n) {
    switch (n.type) {
    case kind::real:
        return n.real_value;
    case kind::unsigned_integer:
        return static_cast<double>(n.unsigned_value);
    case kind::boolean:
    case kind::signed_integer:
        break;
    }
    return static_cast<double>(n.signed_value);
}

// A class factory: [[cls alloc] <init>:value] autoreleased.
template <class T>
id autoreleased_number(Class c, SEL init, T value) {
    return autorelease(send<id, T>(send<id>(c, sel<"alloc">()), init, value));
}

}  // namespace

void install_values() {
    using data = self_t<data_payload>;
    class_def<data_payload>("NSData")
        .method("initWithBytes:length:",
                [](data self, const void* bytes, NSUInteger length) -> id {
                    const auto* first = static_cast<const std::uint8_t*>(bytes);
                    if (length) self->bytes.assign(first, first + length);
                    return self;
                })
        .method("bytes",
                [](data self) -> const void* { return self->bytes.empty() ? nullptr : self->bytes.data(); })
        .method("length", [](data self) -> NSUInteger { return self->bytes.size(); })
        .method("isEqual:",
                [](data self, id other) -> BOOL {
                    auto* that = other ? payload<data_payload>(other) : nullptr;
                    return that && that->bytes == self->bytes ? YES : NO;
                })
        .method("copyWithZone:", [](data self, void*) -> id { return send<id>(self, sel<"retain">()); })
        .class_method("dataWithBytes:length:",
                      [](Class c, const void* bytes, NSUInteger length) -> id {
                          return autorelease(send<id, const void*, NSUInteger>(
                              send<id>(c, sel<"alloc">()), sel<"initWithBytes:length:">(), bytes, length));
                      })
        .done();

    class_def<number_payload>("NSNumber")
        .method("initWithBool:",
                [](number self, BOOL value) -> id {
                    self->type = kind::boolean;
                    self->signed_value = value ? 1 : 0;
                    return self;
                })
        .method("initWithInt:", [](number self, int value) -> id { return set_signed(self, value); })
        .method(
            "initWithInteger:", [](number self, NSInteger value) -> id { return set_signed(self, value); })
        .method(
            "initWithLongLong:", [](number self, long long value) -> id { return set_signed(self, value); })
        .method("initWithUnsignedInt:",
                [](number self, unsigned int value) -> id { return set_unsigned(self, value); })
        .method("initWithUnsignedInteger:",
                [](number self, NSUInteger value) -> id { return set_unsigned(self, value); })
        .method("initWithUnsignedLongLong:",
                [](number self, unsigned long long value) -> id { return set_unsigned(self, value); })
        .method("initWithDouble:",
                [](number self, double value) -> id {
                    self->type = kind::real;
                    self->real_value = value;
                    return self;
                })
        .method("boolValue", [](number self) -> BOOL { return as_real(*self) != 0 ? YES : NO; })
        .method("intValue", [](number self) -> int { return static_cast<int>(as_signed(*self)); })
        .method("integerValue", [](number self) -> NSInteger { return as_signed(*self); })
        .method("longLongValue", [](number self) -> long long { return as_signed(*self); })
        .method("unsignedIntValue",
                [](number self) -> unsigned int { return static_cast<unsigned>(as_unsigned(*self)); })
        .method("unsignedIntegerValue", [](number self) -> NSUInteger { return as_unsigned(*self); })
        .method("unsignedLongLongValue", [](number self) -> unsigned long long { return as_unsigned(*self); })
        .method("doubleValue", [](number self) -> double { return as_real(*self); })
        .method("isEqual:",
                [](number self, id other) -> BOOL {
                    auto* that = other ? payload<number_payload>(other) : nullptr;
                    if (!that) return NO;
                    if (self->type == kind::real || that->type == kind::real)
                        return as_real(*self) == as_real(*that) ? YES : NO;
                    return as_signed(*self) == as_signed(*that) && as_unsigned(*self) == as_unsigned(*that)
                               ? YES
                               : NO;
                })
        .method("copyWithZone:", [](number self, void*) -> id { return send<id>(self, sel<"retain">()); })
        .class_method("numberWithBool:",
                      [](Class c, BOOL v) { return autoreleased_number<BOOL>(c, sel<"initWithBool:">(), v); })
        .class_method("numberWithInt:",
                      [](Class c, int v) { return autoreleased_number<int>(c, sel<"initWithInt:">(), v); })
        .class_method("numberWithInteger:",
                      [](Class c, NSInteger v) {
                          return autoreleased_number<NSInteger>(c, sel<"initWithInteger:">(), v);
                      })
        .class_method("numberWithLongLong:",
                      [](Class c, long long v) {
                          return autoreleased_number<long long>(c, sel<"initWithLongLong:">(), v);
                      })
        .class_method("numberWithUnsignedInteger:",
                      [](Class c, NSUInteger v) {
                          return autoreleased_number<NSUInteger>(c, sel<"initWithUnsignedInteger:">(), v);
                      })
        .class_method("numberWithUnsignedLongLong:",
                      [](Class c, unsigned long long v) {
                          return autoreleased_number<unsigned long long>(
                              c, sel<"initWithUnsignedLongLong:">(), v);
                      })
        .class_method(
            "numberWithDouble:",
            [](Class c, double v) { return autoreleased_number<double>(c, sel<"initWithDouble:">(), v); })
        .done();
}

}  // namespace vmrt::objc::sim::detail
