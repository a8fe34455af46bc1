#include "cli.hpp"

#include <cstdio>
#include <exception>
#include <iostream>

namespace vmrt::cli {

std::string usage() {
    return R"(vmrt - boot, supervise and wire up lightweight Linux VMs

usage:
  vmrt run [--json] [--stop-when-ready] [--stop-timeout SECONDS] [--state-dir DIR]
           [--backend NAME] SPEC.json [SPEC.json ...]
      Starts the VM in the foreground and prints its events, one per line (--json: one JSON
      object per line). Ctrl-C (or SIGTERM) stops it gracefully: ACPI power button, then after
      --stop-timeout (default 30) SIGTERM and SIGKILL. A second Ctrl-C kills it at once.
      --stop-when-ready stops it gracefully as soon as it is Ready. Several specs run at once in
      one manager: their NICs that name the same switch network ("switch": NAME) are joined by
      vmrt's L2 switch; Ctrl-C stops them all.
      --backend overrides the spec's backend: auto, qemu, cloud-hypervisor, apple-vz, fake
      (auto: Cloud Hypervisor when its driver and binary are there, else QEMU).
  vmrt validate [--json] [--backend NAME] SPEC.json
      Checks the spec (syntax, files, bounds) and that its backend can honour every field.
  vmrt guest build [--data-dir DIR] [--force]
      Builds the default guest (Debian cloud kernel + vmrt's initramfs), or finds it in the
      cache, and prints its kernel and initramfs paths, version and sha256s.
  vmrt image pull [--store DIR] [--platform OS/ARCH[/VARIANT]] [--ca FILE] REF
      Pulls an OCI or Docker image into vmrt's content-addressed store (default: $VMRT_IMAGE_STORE,
      else ~/.local/share/vmrt/images, /var/lib/vmrt/images as root), verifying every digest.
      Credentials come from ~/.docker/config.json and its credential helpers.
  vmrt image disk [--store DIR] [--platform P] [--ca FILE] REF OUT
      Pulls REF if needed and writes OUT, a bootable ext4 disk of its root file system: built
      once per image and cached in the store, then cloned copy-on-write.
  vmrt image list | verify [--remove-corrupt] | gc   [--store DIR]
      Lists the tags, re-hashes every blob, removes blobs no tag reaches.
  vmrt --help | --version

exit codes:
  0  done (run: the VM ran and stopped)
  1  the VM failed (its VMM crashed or could not be stopped)
  2  bad command line
  3  invalid spec, or a field the backend cannot honour
  4  the VMM could not be started
)";
}

std::optional<backend_kind> backend_option(const std::vector<std::string>& args, std::size_t& i,
                                           const char* command) {
    if (i + 1 >= args.size()) {
        std::cerr << "vmrt " << command << ": --backend needs a name\n";
        return std::nullopt;
    }
    auto kind = parse_backend(args[++i]);
    if (!kind)
        std::cerr << "vmrt " << command << ": unknown backend \"" << args[i]
                  << "\" (auto, qemu, cloud-hypervisor, apple-vz, fake)\n";
    return kind;
}

}  // namespace vmrt::cli

int main(int argc, char** argv) {
    using namespace vmrt::cli;
    std::vector<std::string> args(argv + 1, argv + argc);
    if (args.empty()) {
        std::cerr << usage();
        return exit_usage;
    }
    const std::string command = args.front();
    args.erase(args.begin());
    try {
        if (command == "--help" || command == "-h" || command == "help") {
            std::cout << usage();
            return exit_ok;
        }
        if (command == "--version") {
            std::cout << "vmrt " << VMRT_VERSION << "\n";
            return exit_ok;
        }
        if (command == "run") return run_command(args);
        if (command == "validate") return validate_command(args);
        if (command == "guest") return guest_command(args);
        if (command == "image") return image_command(args);
        std::cerr << "vmrt: unknown command \"" << command << "\"\n\n" << usage();
        return exit_usage;
    } catch (const std::exception& e) {
        std::cerr << "vmrt: " << e.what() << "\n";
        return exit_vm_failed;
    }
}
