// Strict JSON for hand-written documents (VM specs): syntax errors that say where, and repeated
// keys reported instead of silently collapsed.
#include "strict_json.hpp"

#include <boost/json.hpp>
#include <boost/json/basic_parser_impl.hpp>

#include <set>
#include <vector>

namespace vmrt::detail {

namespace json = boost::json;

std::string child_path(const std::string& parent, std::string_view key) {
    return parent.empty() ? std::string(key) : parent + "." + std::string(key);
}

std::string element_path(const std::string& parent, std::size_t index) {
    return parent + "[" + std::to_string(index) + "]";
}

namespace {

// Boost.JSON reports *what* is wrong but not *where*: on error it claims to have consumed the
// whole buffer. Syntax errors are monotonic (a prefix that is already wrong stays wrong when it
// grows), so a binary search over prefixes, parsed as "more input follows", finds the first byte
// that makes the text invalid. This only runs on the error path.
std::size_t first_bad_byte(std::string_view text) {
    const auto prefix_fails = [&](std::size_t n) {
        json::stream_parser parser;
        json::error_code ec;
        const std::size_t used = parser.write_some(text.data(), n, ec);
        // write_some stops quietly after a complete document; anything it left is extra data.
        return ec || used < n;
    };
    if (!prefix_fails(text.size())) return text.size();  // only incomplete: the end is at fault
    std::size_t good = 0, bad = text.size();             // invariant: prefix(good) ok, prefix(bad) fails
    while (bad - good > 1) {
        const std::size_t mid = good + (bad - good) / 2;
        (prefix_fails(mid) ? bad : good) = mid;
    }
    return bad - 1;
}

std::string describe_position(std::string_view text, std::size_t offset) {
    std::size_t line = 1, line_start = 0;
    for (std::size_t i = 0; i < offset && i < text.size(); ++i) {
        if (text[i] == '\n') {
            ++line;
            line_start = i + 1;
        }
    }
    return "line " + std::to_string(line) + ", column " + std::to_string(offset - line_start + 1) +
           " (byte " + std::to_string(offset) + ")";
}

}  // namespace

boost::system::result<json::value, std::string> parse_json_strictly(std::string_view text) {
    json::stream_parser parser;  // default options: strict RFC 8259, no comments, valid UTF-8 only
    json::error_code ec;
    parser.write(text.data(), text.size(), ec);
    if (!ec) parser.finish(ec);
    if (ec)
        return boost::system::result<json::value, std::string>(
            boost::system::in_place_error,
            "invalid JSON at " + describe_position(text, first_bad_byte(text)) + ": " + ec.message());
    return parser.release();
}

namespace {

// Boost.JSON silently keeps the last of repeated keys. In a hand-written spec a repeated key is
// nearly always a copy-and-paste mistake, so a second pass over the (already valid) text with a
// value-less handler looks for them and names the key's path.
class duplicate_key_finder {
public:
    static constexpr std::size_t max_object_size = std::size_t(-1);
    static constexpr std::size_t max_array_size = std::size_t(-1);
    static constexpr std::size_t max_key_size = std::size_t(-1);
    static constexpr std::size_t max_string_size = std::size_t(-1);

    std::optional<std::string> duplicate;  // the path of the first repeated key

    bool on_document_begin(json::error_code&) { return true; }
    bool on_document_end(json::error_code&) { return true; }
    bool on_array_begin(json::error_code&) { return open(false); }
    bool on_array_end(std::size_t, json::error_code&) { return close(); }
    bool on_object_begin(json::error_code&) { return open(true); }
    bool on_object_end(std::size_t, json::error_code&) { return close(); }
    bool on_string_part(json::string_view, std::size_t, json::error_code&) { return true; }
    bool on_string(json::string_view, std::size_t, json::error_code&) { return value_done(); }
    bool on_key_part(json::string_view part, std::size_t, json::error_code&) {
        key_.append(part.data(), part.size());
        return true;
    }
    bool on_key(json::string_view part, std::size_t, json::error_code&) {
        key_.append(part.data(), part.size());
        auto& top = frames_.back();
        top.key = std::move(key_);
        key_.clear();
        if (!top.keys.insert(top.key).second && !duplicate) duplicate = current_path();
        return true;
    }
    bool on_number_part(json::string_view, json::error_code&) { return true; }
    bool on_int64(std::int64_t, json::string_view, json::error_code&) { return value_done(); }
    bool on_uint64(std::uint64_t, json::string_view, json::error_code&) { return value_done(); }
    bool on_double(double, json::string_view, json::error_code&) { return value_done(); }
    bool on_bool(bool, json::error_code&) { return value_done(); }
    bool on_null(json::error_code&) { return value_done(); }
    bool on_comment_part(json::string_view, json::error_code&) { return true; }
    bool on_comment(json::string_view, json::error_code&) { return true; }

private:
    struct frame {
        bool is_object = false;
        std::set<std::string> keys;
        std::string key;        // objects: the key whose value is being read
        std::size_t index = 0;  // arrays: the index of the element being read
    };

    bool open(bool is_object) {
        frames_.push_back(frame{is_object, {}, {}, 0});
        return true;
    }
    bool close() {
        frames_.pop_back();
        return value_done();
    }
    bool value_done() {
        if (!frames_.empty() && !frames_.back().is_object) ++frames_.back().index;
        return true;
    }
    std::string current_path() const {
        std::string path;
        for (const auto& f : frames_)
            path = f.is_object ? child_path(path, f.key) : element_path(path, f.index);
        return path;
    }

    std::vector<frame> frames_;
    std::string key_;
};

}  // namespace

std::optional<std::string> first_duplicate_key(std::string_view text) {
    json::basic_parser<duplicate_key_finder> parser{json::parse_options{}};
    json::error_code ec;
    parser.write_some(false, text.data(), text.size(), ec);
    return parser.handler().duplicate;
}

}  // namespace vmrt::detail
