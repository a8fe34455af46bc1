// Fuzz target: image reference parsing. Invariants: no crash; only vmrt::error escapes; an
// accepted reference is canonical: parse(to_string(r)) == r, and its fields obey the grammar's
// limits (name <= 255 bytes, tag <= 128, tag or digest set).
#include <vmrt/error.hpp>
#include <vmrt/image/oci_reference.hpp>

#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    vmrt::image::image_reference ref;
    try {
        ref = vmrt::image::parse_image_reference(input);
    } catch (const vmrt::error& e) {
        if (e.diag().message.empty()) std::abort();
        return 0;
    }
    if (ref.name().size() > vmrt::image::max_image_name_length) std::abort();
    if (ref.tag.size() > vmrt::image::max_tag_length) std::abort();
    if (ref.tag.empty() && ref.digest.empty()) std::abort();
    if (ref.reference().empty() || ref.repository.empty() || ref.domain.empty()) std::abort();
    try {
        if (!(vmrt::image::parse_image_reference(ref.to_string()) == ref)) std::abort();
    } catch (const vmrt::error&) {
        std::abort();  // the canonical form of an accepted reference must be accepted
    }
    return 0;
}
