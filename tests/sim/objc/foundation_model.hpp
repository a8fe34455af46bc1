// The simulated Foundation classes' payloads (private to tests/sim/objc) and the helpers the
// Foundation source files share.
#pragma once

#include "sim.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace vmrt::objc::sim::detail {

struct string_payload {
    std::string utf8;
};

struct url_payload {
    std::string text;  ///< the absolute path of a file URL, else the URL string
    bool file = false;
};

struct array_payload {
    std::vector<strong> items;
};

struct dictionary_payload {
    std::vector<std::pair<strong, strong>> entries;  ///< (copied key, retained value)
};

struct data_payload {
    std::vector<std::uint8_t> bytes;
};

struct number_payload {
    enum class kind { boolean, signed_integer, unsigned_integer, real };
    kind type = kind::signed_integer;
    std::int64_t signed_value = 0;
    std::uint64_t unsigned_value = 0;
    double real_value = 0;
};

struct error_payload {
    strong domain;
    NSInteger code = 0;
    strong user_info;
};

struct file_handle_payload {
    int fd = -1;
    bool close_on_dealloc = false;
    file_handle_payload() = default;
    file_handle_payload(const file_handle_payload&) = delete;
    file_handle_payload& operator=(const file_handle_payload&) = delete;
    ~file_handle_payload();
};

/// A new NSString (+1) holding `utf8`.
id make_string(std::string utf8);
/// The text of an NSString, or nullptr when `obj` is nil or not an NSString.
const std::string* string_value(id obj);
/// Whether `bytes` is well-formed UTF-8 (no overlong forms, surrogates or code points past U+10FFFF).
bool valid_utf8(std::string_view bytes);

}  // namespace vmrt::objc::sim::detail
