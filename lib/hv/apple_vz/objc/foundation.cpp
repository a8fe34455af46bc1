#include "hv/apple_vz/objc/foundation.hpp"

#include <vmrt/error.hpp>

#include <cstring>

namespace vmrt::objc {

namespace {

// Every Foundation class used here exists on every macOS the backend supports: cached look-ups.
Class ns_string_class() { return cls<"NSString">(); }

std::string printable_prefix(std::string_view text) {
    std::string out;
    for (char c : text.substr(0, 40)) {
        auto u = static_cast<unsigned char>(c);
        if (u >= 0x20 && u < 0x7f) {
            out += c;
        } else {
            static constexpr char hex[] = "0123456789abcdef";
            out += "\\x";
            out += hex[u >> 4];
            out += hex[u & 0xf];
        }
    }
    return out;
}

}  // namespace

strong ns_string(std::string_view utf8) {
    if (!ns_string_class())
        throw error(errc::internal, {.message = "the Objective-C runtime has no NSString class"});
    // -initWithBytes:length:encoding: takes an explicit length and returns nil for bytes that are not
    // valid in the encoding (after releasing the allocated object).
    strong s = alloc_init<const void*, NSUInteger, NSUInteger>(
        ns_string_class(), sel<"initWithBytes:length:encoding:">(), utf8.data(), utf8.size(), utf8_encoding);
    if (!s)
        throw error(errc::unsupported,
                    {.message = "text is not valid UTF-8 and cannot become an NSString: \"" +
                                printable_prefix(utf8) + "\""});
    return s;
}

std::string to_string(id ns_string) {
    if (!ns_string) return {};
    autorelease_pool pool;  // -UTF8String's buffer may be autoreleased: copy it before the pool ends
    const char* text = send<const char*>(ns_string, sel<"UTF8String">());
    return text ? std::string(text) : std::string();
}

strong ns_file_url(const std::filesystem::path& path) {
    strong text = ns_string(path.native());
    return alloc_init<id>(cls<"NSURL">(), sel<"initFileURLWithPath:">(), text.get());
}

strong ns_directory_url(const std::filesystem::path& path) {
    strong text = ns_string(path.native());
    return alloc_init<id, BOOL>(cls<"NSURL">(), sel<"initFileURLWithPath:isDirectory:">(), text.get(), YES);
}

std::string url_path(id ns_url) {
    if (!ns_url) return {};
    autorelease_pool pool;
    return to_string(send<id>(ns_url, sel<"path">()));
}

strong ns_array(std::span<const id> items) {
    return alloc_init<const id*, NSUInteger>(cls<"NSArray">(), sel<"initWithObjects:count:">(), items.data(),
                                             items.size());
}

strong ns_array(const std::vector<strong>& items) {
    std::vector<id> raw;
    raw.reserve(items.size());
    for (const strong& item : items) raw.push_back(item.get());
    return ns_array(std::span<const id>(raw));
}

std::vector<strong> array_items(id ns_array) {
    std::vector<strong> out;
    if (!ns_array) return out;
    autorelease_pool pool;
    auto count = send<NSUInteger>(ns_array, sel<"count">());
    out.reserve(count);
    for (NSUInteger i = 0; i < count; ++i)
        out.push_back(strong::retain(send<id, NSUInteger>(ns_array, sel<"objectAtIndex:">(), i)));
    return out;
}

strong ns_dictionary(const std::vector<std::pair<std::string, id>>& entries) {
    std::vector<strong> keys;
    std::vector<id> raw_keys;
    std::vector<id> values;
    for (const auto& [key, value] : entries) {
        keys.push_back(ns_string(key));
        raw_keys.push_back(keys.back().get());
        values.push_back(value);
    }
    return alloc_init<const id*, const id*, NSUInteger>(cls<"NSDictionary">(),
                                                        sel<"initWithObjects:forKeys:count:">(),
                                                        values.data(), raw_keys.data(), values.size());
}

strong dictionary_value(id ns_dictionary, std::string_view key) {
    if (!ns_dictionary) return {};
    strong k = ns_string(key);
    autorelease_pool pool;
    return strong::retain(send<id, id>(ns_dictionary, sel<"objectForKey:">(), k.get()));
}

strong ns_data(std::span<const std::uint8_t> bytes) {
    return alloc_init<const void*, NSUInteger>(cls<"NSData">(), sel<"initWithBytes:length:">(), bytes.data(),
                                               bytes.size());
}

std::vector<std::uint8_t> data_bytes(id ns_data) {
    if (!ns_data) return {};
    autorelease_pool pool;
    auto length = send<NSUInteger>(ns_data, sel<"length">());
    const auto* bytes = static_cast<const std::uint8_t*>(send<const void*>(ns_data, sel<"bytes">()));
    if (length == 0 || !bytes) return {};
    return std::vector<std::uint8_t>(bytes, bytes + length);
}

strong ns_number_bool(bool value) {
    return alloc_init<BOOL>(cls<"NSNumber">(), sel<"initWithBool:">(), value ? YES : NO);
}
strong ns_number_int64(std::int64_t value) {
    return alloc_init<long long>(cls<"NSNumber">(), sel<"initWithLongLong:">(), value);
}
strong ns_number_uint64(std::uint64_t value) {
    return alloc_init<unsigned long long>(cls<"NSNumber">(), sel<"initWithUnsignedLongLong:">(), value);
}
strong ns_number_double(double value) {
    return alloc_init<double>(cls<"NSNumber">(), sel<"initWithDouble:">(), value);
}
bool number_bool(id ns_number) { return send<BOOL>(ns_number, sel<"boolValue">()); }
std::int64_t number_int64(id ns_number) { return send<long long>(ns_number, sel<"longLongValue">()); }
std::uint64_t number_uint64(id ns_number) {
    return send<unsigned long long>(ns_number, sel<"unsignedLongLongValue">());
}
double number_double(id ns_number) { return send<double>(ns_number, sel<"doubleValue">()); }

strong file_handle_owning(io::unique_fd& fd) {
    strong handle = alloc_init<int, BOOL>(cls<"NSFileHandle">(),
                                          sel<"initWithFileDescriptor:closeOnDealloc:">(), fd.get(), YES);
    if (handle) static_cast<void>(fd.release());  // the handle closes it now
    return handle;
}

strong file_handle_borrowing(int fd) {
    return alloc_init<int, BOOL>(cls<"NSFileHandle">(), sel<"initWithFileDescriptor:closeOnDealloc:">(), fd,
                                 NO);
}

int file_handle_fd(id handle) {
    if (!handle) return -1;
    return send<int>(handle, sel<"fileDescriptor">());
}

bool is_equal(id a, id b) {
    if (!a || !b) return false;
    return send<BOOL, id>(a, sel<"isEqual:">(), b);
}

}  // namespace vmrt::objc
