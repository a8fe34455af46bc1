// Entry-name rules for image layers; see layer_paths.hpp.
#include "image/layer_paths.hpp"

#include <vmrt/error.hpp>

namespace vmrt::image::detail {

namespace {

constexpr std::string_view whiteout_prefix = ".wh.";
constexpr std::string_view meta_prefix = ".wh..wh.";
constexpr std::string_view opaque_marker = ".wh..wh..opq";

}  // namespace

std::string sanitise_name(std::string_view raw) {
    constexpr std::size_t limit = 200;
    std::string out;
    for (std::size_t i = 0; i < raw.size() && i < limit; ++i) {
        const auto c = static_cast<unsigned char>(raw[i]);
        if (c >= 0x20 && c < 0x7f && c != '\\') {
            out.push_back(static_cast<char>(c));
        } else {
            static constexpr char hex[] = "0123456789abcdef";
            out += "\\x";
            out.push_back(hex[c >> 4]);
            out.push_back(hex[c & 0xf]);
        }
    }
    if (raw.size() > limit) out += "...";
    return out;
}

void refuse_entry(std::string_view raw_entry, const std::string& reason) {
    throw vmrt::error(errc::protocol_error,
                      {.message = "layer entry \"" + sanitise_name(raw_entry) + "\": " + reason,
                       .field = sanitise_name(raw_entry)});
}

std::vector<std::string> normalize_entry_path(std::string_view raw) {
    if (raw.empty()) refuse_entry(raw, "empty name");
    if (raw.find('\0') != std::string_view::npos) refuse_entry(raw, "NUL byte in the name");
    std::vector<std::string> parts;
    std::size_t pos = 0;
    while (pos <= raw.size()) {
        const std::size_t slash = raw.find('/', pos);
        const std::size_t end = slash == std::string_view::npos ? raw.size() : slash;
        const std::string_view part = raw.substr(pos, end - pos);
        if (part == "..") refuse_entry(raw, "\"..\" component (it would leave the rootfs)");
        if (!part.empty() && part != ".") parts.emplace_back(part);
        if (parts.size() > max_entry_depth) refuse_entry(raw, "path deeper than 256 components");
        if (slash == std::string_view::npos) break;
        pos = slash + 1;
    }
    return parts;
}

std::string join_path(const std::vector<std::string>& parts, std::size_t count) {
    std::string out;
    for (std::size_t i = 0; i < count && i < parts.size(); ++i) {
        if (i) out.push_back('/');
        out += parts[i];
    }
    return out;
}

whiteout_kind classify_whiteout(std::string_view name) noexcept {
    if (name == opaque_marker) return whiteout_kind::opaque;
    if (name.starts_with(meta_prefix)) return whiteout_kind::meta;
    if (name.starts_with(whiteout_prefix)) return whiteout_kind::remove;
    return whiteout_kind::none;
}

std::string whiteout_target(std::string_view name, std::string_view raw_entry) {
    const std::string_view target = name.substr(whiteout_prefix.size());
    if (target.empty() || target == "." || target == "..")
        refuse_entry(raw_entry, "whiteout of \"" + sanitise_name(target) + "\" names no entry");
    return std::string(target);
}

}  // namespace vmrt::image::detail
