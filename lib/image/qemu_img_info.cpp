#include "image/qemu_img_info.hpp"

#include <boost/json.hpp>

namespace vmrt::image::detail {
namespace {

namespace json = boost::json;

[[noreturn]] void malformed(const std::string& why, std::string_view output) {
    constexpr std::size_t shown = 512;
    std::string excerpt(output.substr(0, shown));
    if (output.size() > shown) excerpt += "...";
    throw error(
        make_error_code(errc::protocol_error),
        {.message = "malformed qemu-img info output: " + why + "\n" + excerpt, .field = "qemu-img info"});
}

std::uint64_t size_member(const json::object& o, std::string_view key, std::string_view output) {
    const json::value* v = o.if_contains(key);
    if (!v) malformed("no \"" + std::string(key) + "\"", output);
    if (const auto* u = v->if_uint64()) return *u;
    if (const auto* i = v->if_int64(); i && *i >= 0) return static_cast<std::uint64_t>(*i);
    malformed("\"" + std::string(key) + "\" is not a non-negative integer", output);
}

std::optional<std::string> optional_string(const json::object& o, std::string_view key,
                                           std::string_view output) {
    const json::value* v = o.if_contains(key);
    if (!v) return std::nullopt;
    if (!v->is_string()) malformed("\"" + std::string(key) + "\" is not a string", output);
    return std::string(v->get_string());
}

}  // namespace

disk_info parse_qemu_img_info(std::string_view output) {
    // The object starts on a line of its own; warnings qemu-img printed before it do not.
    std::size_t start = output.starts_with('{') ? 0 : output.find("\n{");
    if (start == std::string_view::npos) malformed("no JSON object", output);
    if (output[start] == '\n') ++start;

    json::stream_parser parser;
    json::error_code ec;
    parser.write_some(output.data() + start, output.size() - start, ec);
    if (!ec && !parser.done()) parser.finish(ec);
    if (ec) malformed(ec.message(), output);
    const json::value doc = parser.release();
    if (!doc.is_object()) malformed("not a JSON object", output);
    const json::object& o = doc.get_object();

    disk_info info;
    auto format = optional_string(o, "format", output);
    if (!format || format->empty()) malformed("no \"format\"", output);
    info.format = std::move(*format);
    info.virtual_size = size_member(o, "virtual-size", output);
    if (o.contains("actual-size")) info.actual_size = size_member(o, "actual-size", output);
    // full-backing-filename is resolved against the image's directory; prefer it when present.
    info.backing_file = optional_string(o, "full-backing-filename", output);
    if (!info.backing_file) info.backing_file = optional_string(o, "backing-filename", output);
    info.backing_format = optional_string(o, "backing-filename-format", output);
    return info;
}

}  // namespace vmrt::image::detail
