// Simulated NSString and NSURL.
#include "foundation_model.hpp"
#include "runtime_model.hpp"

#include <unistd.h>

#include <functional>

namespace vmrt::objc::sim::detail {

namespace {

constexpr NSUInteger ascii_encoding = 1;
constexpr NSUInteger utf8_encoding = 4;

// -length counts UTF-16 code units: one per code point, two above U+FFFF.
NSUInteger utf16_length(const std::string& utf8) {
    NSUInteger units = 0;
    for (std::size_t i = 0; i < utf8.size();) {
        auto c = static_cast<unsigned char>(utf8[i]);
        std::size_t width = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : 4;
        units += width == 4 ? 2 : 1;
        i += width;
    }
    return units;
}

id init_string(self_t<string_payload> self, std::string text) {
    self->utf8 = std::move(text);
    return self;
}

id fail_init(id self) {
    send<void>(self, sel<"release">());
    return nullptr;
}

std::string absolute_path(std::string path) {
    if (!path.empty() && path.front() == '/') return path;
    char cwd[4096];
    std::string base = ::getcwd(cwd, sizeof cwd) ? cwd : "/";
    return base + (base.back() == '/' ? "" : "/") + path;
}

std::string percent_encoded_path(const std::string& path) {
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out;
    for (char ch : path) {
        auto c = static_cast<unsigned char>(ch);
        bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                     std::string_view("-._~/").find(ch) != std::string_view::npos;
        if (plain) {
            out += ch;
        } else {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 0xf];
        }
    }
    return out;
}

id init_file_url(self_t<url_payload> self, id path) {
    const std::string* text = string_value(path);
    if (!text) fatal("-[NSURL initFileURLWithPath:]: nil string parameter");
    if (text->empty()) fatal("-[NSURL initFileURLWithPath:]: empty string parameter");
    self->text = absolute_path(*text);
    self->file = true;
    return self;
}

std::string url_path(const url_payload& url) {
    if (url.file) {
        std::string path = url.text;
        while (path.size() > 1 && path.back() == '/') path.pop_back();  // -path drops a trailing slash
        return path;
    }
    auto scheme_end = url.text.find("://");
    if (scheme_end == std::string::npos) return {};
    auto path_start = url.text.find('/', scheme_end + 3);
    if (path_start == std::string::npos) return {};
    return url.text.substr(path_start, url.text.find_first_of("?#", path_start) - path_start);
}

}  // namespace

bool valid_utf8(std::string_view bytes) {
    std::size_t i = 0;
    while (i < bytes.size()) {
        auto c = static_cast<unsigned char>(bytes[i]);
        std::size_t extra;
        std::uint32_t cp;
        std::uint32_t min;
        if (c < 0x80) {
            ++i;
            continue;
        } else if ((c >> 5) == 0x6) {
            extra = 1, cp = c & 0x1f, min = 0x80;
        } else if ((c >> 4) == 0xe) {
            extra = 2, cp = c & 0x0f, min = 0x800;
        } else if ((c >> 3) == 0x1e) {
            extra = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if (i + extra >= bytes.size()) return false;  // truncated sequence
        for (std::size_t k = 1; k <= extra; ++k) {
            auto cc = static_cast<unsigned char>(bytes[i + k]);
            if ((cc >> 6) != 0x2) return false;
            cp = (cp << 6) | (cc & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
        i += extra + 1;
    }
    return true;
}

id make_string(std::string utf8) {
    id s = send<id>(cls<"NSString">(), sel<"alloc">());
    payload<string_payload>(s)->utf8 = std::move(utf8);
    return s;
}

const std::string* string_value(id obj) {
    string_payload* p = obj ? payload<string_payload>(obj) : nullptr;
    return p ? &p->utf8 : nullptr;
}

void install_strings() {
    using str = self_t<string_payload>;
    class_def<string_payload>("NSString")
        .method("initWithUTF8String:",
                [](str self, const char* text) -> id {
                    if (!text) fatal("-[NSString initWithUTF8String:]: NULL cString");
                    if (!valid_utf8(text)) return fail_init(self);
                    return init_string(self, text);
                })
        .method("initWithBytes:length:encoding:",
                [](str self, const void* bytes, NSUInteger length, NSUInteger encoding) -> id {
                    std::string text(static_cast<const char*>(bytes), length);
                    if (encoding == utf8_encoding) {
                        if (!valid_utf8(text)) return fail_init(self);
                    } else if (encoding == ascii_encoding) {
                        for (char c : text)
                            if (static_cast<unsigned char>(c) >= 0x80) return fail_init(self);
                    } else {
                        fatal("-[NSString initWithBytes:length:encoding:]: encoding " +
                              std::to_string(encoding) + " is not simulated");
                    }
                    return init_string(self, std::move(text));
                })
        .method("initWithString:",
                [](str self, id other) -> id {
                    const std::string* text = string_value(other);
                    if (!text) fatal("-[NSString initWithString:]: nil argument");
                    return init_string(self, *text);
                })
        .method("UTF8String", [](str self) -> const char* { return self->utf8.c_str(); })
        .method("length", [](str self) -> NSUInteger { return utf16_length(self->utf8); })
        .method("lengthOfBytesUsingEncoding:",
                [](str self, NSUInteger encoding) -> NSUInteger {
                    return encoding == utf8_encoding || encoding == ascii_encoding ? self->utf8.size() : 0;
                })
        .method("isEqualToString:",
                [](str self, id other) -> BOOL {
                    const std::string* text = string_value(other);
                    return text && *text == self->utf8 ? YES : NO;
                })
        .method("isEqual:",
                [](str self, id other) -> BOOL {
                    const std::string* text = string_value(other);
                    return text && *text == self->utf8 ? YES : NO;
                })
        .method("hash", [](str self) -> NSUInteger { return std::hash<std::string>{}(self->utf8); })
        .method("copyWithZone:",
                [](str self, void*) -> id { return send<id>(self, sel<"retain">()); })  // immutable
        .method("description", [](str self) -> id { return self; })
        .class_method("stringWithUTF8String:",
                      [](Class c, const char* text) -> id {
                          return autorelease(send<id, const char*>(send<id>(c, sel<"alloc">()),
                                                                   sel<"initWithUTF8String:">(), text));
                      })
        .class_method("string", [](Class) -> id { return autorelease(make_string("")); })
        .done();

    using url = self_t<url_payload>;
    class_def<url_payload>("NSURL")
        .method("initFileURLWithPath:", [](url self, id path) -> id { return init_file_url(self, path); })
        .method("initFileURLWithPath:isDirectory:",
                [](url self, id path, BOOL is_directory) -> id {
                    id result = init_file_url(self, path);
                    if (is_directory && self->text.back() != '/') self->text += '/';
                    return result;
                })
        .method("initWithString:",
                [](url self, id text) -> id {
                    const std::string* value = string_value(text);
                    if (!value) fatal("-[NSURL initWithString:]: nil string parameter");
                    if (value->empty() || value->find("://") == std::string::npos) return fail_init(self);
                    self->text = *value;
                    self->file = value->rfind("file://", 0) == 0;
                    if (self->file) self->text = value->substr(7);
                    return self;
                })
        .method("path", [](url self) -> id { return autorelease(make_string(url_path(*self))); })
        .method("absoluteString",
                [](url self) -> id {
                    return autorelease(
                        make_string(self->file ? "file://" + percent_encoded_path(self->text) : self->text));
                })
        .method("isFileURL", [](url self) -> BOOL { return self->file ? YES : NO; })
        .method("isEqual:",
                [](url self, id other) -> BOOL {
                    auto* that = other ? payload<url_payload>(other) : nullptr;
                    return that && that->file == self->file && that->text == self->text ? YES : NO;
                })
        .method("copyWithZone:", [](url self, void*) -> id { return send<id>(self, sel<"retain">()); })
        .class_method("fileURLWithPath:",
                      [](Class c, id path) -> id {
                          return autorelease(
                              send<id, id>(send<id>(c, sel<"alloc">()), sel<"initFileURLWithPath:">(), path));
                      })
        .class_method("URLWithString:",
                      [](Class c, id text) -> id {
                          return autorelease(
                              send<id, id>(send<id>(c, sel<"alloc">()), sel<"initWithString:">(), text));
                      })
        .done();
}

}  // namespace vmrt::objc::sim::detail
