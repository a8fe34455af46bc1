// Foundation values to and from C++: NSString, NSURL, NSArray, NSDictionary, NSData, NSNumber and
// NSFileHandle. Every object is created with alloc/init... (an owned +1 result), never with an
// autoreleasing convenience constructor, so creating values needs no autorelease pool; reading values
// (whose results are +0 and may be autoreleased) opens a pool of its own around the read.
#pragma once

#include "hv/apple_vz/objc/handle.hpp"

#include <vmrt/io/unique_fd.hpp>

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace vmrt::objc {

/// NSUTF8StringEncoding.
inline constexpr NSUInteger utf8_encoding = 4;

// --- NSString ---------------------------------------------------------------------------------
/// An NSString with the UTF-8 text `utf8`. Throws vmrt::error(errc::unsupported) when the bytes are
/// not valid UTF-8 (NSString refuses them; no Apple API could be given such a value).
strong ns_string(std::string_view utf8);
/// The UTF-8 text of an NSString; "" for nil.
std::string to_string(id ns_string);

// --- NSURL ------------------------------------------------------------------------------------
/// A file URL for `path` (-[NSURL initFileURLWithPath:]; a relative path is taken relative to the
/// current directory, as Foundation does).
strong ns_file_url(const std::filesystem::path& path);
/// A file URL for the directory `path` (-[NSURL initFileURLWithPath:isDirectory:YES]): no file
/// system access to find out, and a trailing slash, as VZSharedDirectory's URL has.
strong ns_directory_url(const std::filesystem::path& path);
/// The path of a file URL (-[NSURL path]); "" for nil.
std::string url_path(id ns_url);

// --- NSArray / NSDictionary --------------------------------------------------------------------
/// An NSArray holding `items` (each retained by the array). Items must not be nil.
strong ns_array(std::span<const id> items);
strong ns_array(const std::vector<strong>& items);
/// The items of an NSArray, each retained by the returned handles.
std::vector<strong> array_items(id ns_array);
/// An NSDictionary from string keys to objects (values must not be nil).
strong ns_dictionary(const std::vector<std::pair<std::string, id>>& entries);
/// [dict objectForKey:key] retained, or null.
strong dictionary_value(id ns_dictionary, std::string_view key);

// --- NSData -----------------------------------------------------------------------------------
strong ns_data(std::span<const std::uint8_t> bytes);
/// The bytes of an NSData; empty for nil.
std::vector<std::uint8_t> data_bytes(id ns_data);

// --- NSNumber ---------------------------------------------------------------------------------
strong ns_number_bool(bool value);
strong ns_number_int64(std::int64_t value);
strong ns_number_uint64(std::uint64_t value);
strong ns_number_double(double value);
bool number_bool(id ns_number);
std::int64_t number_int64(id ns_number);
std::uint64_t number_uint64(id ns_number);
double number_double(id ns_number);

// --- NSFileHandle -----------------------------------------------------------------------------
/// An NSFileHandle that owns `fd` and closes it when deallocated (initWithFileDescriptor:
/// closeOnDealloc:YES). If no handle can be made, `fd` stays owned by the caller's unique_fd.
strong file_handle_owning(io::unique_fd& fd);
/// An NSFileHandle on `fd` that leaves closing it to the caller (closeOnDealloc:NO); `fd` must
/// outlive every user of the handle.
strong file_handle_borrowing(int fd);
/// -[NSFileHandle fileDescriptor]; -1 for nil.
int file_handle_fd(id handle);

/// [a isEqual:b] (NO when either is nil).
bool is_equal(id a, id b);

}  // namespace vmrt::objc
