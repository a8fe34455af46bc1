// Fuzz target: the OCI store's reference walk over manifests and indexes (registry-supplied JSON).
// Invariants: no crash, no exception; every digest returned is a well-formed sha256 digest; the
// result depends on the bytes alone (parsing twice gives the same answer).
#include "image/oci_store_detail.hpp"

#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    auto refs = vmrt::image::store_detail::references_of(text);
    for (const auto* list : {&refs.leaves, &refs.children})
        for (const auto& d : *list)
            if (!vmrt::image::is_sha256_digest(d)) std::abort();
    auto again = vmrt::image::store_detail::references_of(text);
    if (again.leaves != refs.leaves || again.children != refs.children) std::abort();
    return 0;
}
