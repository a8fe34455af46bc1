// Uses vmrt's public API the way an outside project would: through the installed headers and
// library only. Exits non-zero if the package links but behaves unlike its documentation.
#include <vmrt/error.hpp>
#include <vmrt/vm_spec.hpp>

#include <iostream>
#include <string_view>

int main() {
    vmrt::vm_spec spec;
    spec.name = "consumer-vm";
    spec.cpus = 2;
    spec.memory_mib = 256;

    // The documented name syntax: [A-Za-z0-9][A-Za-z0-9._-]{0,127}.
    if (!vmrt::is_valid_vm_name(spec.name) || vmrt::is_valid_vm_name("../escape")) {
        std::cerr << "is_valid_vm_name disagrees with the documented name syntax\n";
        return 1;
    }

    const vmrt::error_code ec = vmrt::errc::invalid_spec;
    if (ec.category().name() != std::string_view("vmrt") || ec.message().empty()) {
        std::cerr << "the vmrt error category is not usable from the package\n";
        return 1;
    }
    std::cout << "vmrt package works: spec '" << spec.name << "', errc::invalid_spec says '" << ec.message()
              << "'\n";
    return 0;
}
