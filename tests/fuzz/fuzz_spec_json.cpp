// Fuzz target: the spec JSON parser and validator must turn any input into either a spec or an
// error that names what is wrong — never a crash, a hang or an exception.
#include <vmrt/vm_spec.hpp>

#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    auto parsed = vmrt::parse_spec_json(text, "/nonexistent-base");
    if (!parsed) {
        if (parsed.error().message.empty()) std::abort();  // every error must say something
        return 0;
    }
    for (auto& problem : vmrt::validate_spec(*parsed))
        if (problem.message.empty()) std::abort();
    // What was parsed must serialise and parse back.
    auto again = vmrt::parse_spec_json(vmrt::spec_to_json(*parsed), "/nonexistent-base");
    if (!again) std::abort();
    return 0;
}
