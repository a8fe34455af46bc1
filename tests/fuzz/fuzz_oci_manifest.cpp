// Fuzz target: manifest/index parsing, platform selection, layer types and config parsing.
// Input: a Content-Type line ('\n'), then the document (also tried as an image config).
// Invariants: no crash; only vmrt::error escapes; an accepted manifest has a manifest media
// type, an accepted index an index media type; every descriptor size is <= 2^53; selection
// returns an entry of the index.
#include <vmrt/error.hpp>
#include <vmrt/image/oci_manifest.hpp>

#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <variant>

namespace img = vmrt::image;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    const auto nl = input.find('\n');
    const std::string_view content_type =
        nl == std::string_view::npos ? std::string_view{} : input.substr(0, nl);
    const std::string_view document = nl == std::string_view::npos ? input : input.substr(nl + 1);
    try {
        const auto doc = img::parse_manifest(document, content_type);
        if (const auto* m = std::get_if<img::image_manifest>(&doc)) {
            if (m->media_type != img::media_type::oci_manifest &&
                m->media_type != img::media_type::docker_manifest)
                std::abort();
            if (m->config.size > img::max_descriptor_size) std::abort();
            for (const auto& layer : m->layers) {
                if (layer.size > img::max_descriptor_size) std::abort();
                try {
                    (void)img::layer_compression_of(layer);
                } catch (const vmrt::error&) {
                }
            }
            try {
                img::check_pullable(*m);
            } catch (const vmrt::error&) {
            }
        } else {
            const auto& index = std::get<img::image_index>(doc);
            if (index.media_type != img::media_type::oci_index &&
                index.media_type != img::media_type::docker_manifest_list)
                std::abort();
            for (const char* p : {"linux/amd64", "linux/arm64", "linux/arm/v7", "windows/amd64"}) {
                try {
                    const auto& chosen = img::select_platform(index, img::parse_platform_spec(p));
                    if (&chosen < index.manifests.data() ||
                        &chosen >= index.manifests.data() + index.manifests.size())
                        std::abort();
                } catch (const vmrt::error&) {
                }
            }
        }
    } catch (const vmrt::error& e) {
        if (e.diag().message.empty()) std::abort();
    }
    try {
        const auto config = img::parse_image_config(document);
        for (const auto& id : config.diff_ids)
            if (!img::is_supported_digest(id)) std::abort();
    } catch (const vmrt::error& e) {
        if (e.diag().message.empty()) std::abort();
    }
    return 0;
}
