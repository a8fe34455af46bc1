// Boot loaders: VZBootLoader, VZLinuxBootLoader (macOS 11), VZEFIBootLoader and VZEFIVariableStore
// (macOS 13).
#include "vz_sim_model.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <string>

namespace vmrt::objc::sim::vz::detail {

namespace {

using linux_loader = self_t<linux_boot_loader_payload>;
using efi_loader = self_t<efi_boot_loader_payload>;
using store = self_t<efi_variable_store_payload>;

// Simulation: the content of a new store. VZ writes an EFI variable store of its own format.
bool write_new_store(int fd) {
    std::string content(efi_variable_store_magic);
    content.resize(4096, '\0');
    std::size_t done = 0;
    while (done < content.size()) {
        ssize_t n = ::write(fd, content.data() + done, content.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        done += static_cast<std::size_t>(n);
    }
    return true;
}

// -initCreatingVariableStoreAtURL:options:error: "Creates a new EFI variable store at the URL";
// without VZEFIVariableStoreInitializationOptionAllowOverwrite an existing file is an error.
// Simulation: the error is Foundation's NSFileWriteFileExistsError, the code Cocoa uses for "a file
// with the same name already exists"; other failures are the POSIX error of open/write.
id create_store(store self, id url, NSUInteger options, id* error) {
    if (strong injected =
            take_injected("VZEFIVariableStore", "initCreatingVariableStoreAtURL:options:error:"))
        return fail_init(self, error, std::move(injected));
    const std::string path = path_of(url);
    const bool overwrite = (options & 1) != 0;
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | (overwrite ? O_TRUNC : O_EXCL), 0644);
    if (fd < 0) {
        if (errno == EEXIST)
            return fail_init(self, error,
                             make_error(cocoa_domain, cocoa_file_exists,
                                        "The file \u201c" + path +
                                            "\u201d couldn\u2019t be saved because a file with the same name "
                                            "already exists.",
                                        "The EFI variable store already exists."));
        return fail_init(self, error, posix_error(errno, "Cannot create the EFI variable store", path));
    }
    const bool written = write_new_store(fd);
    const int write_errno = errno;
    ::close(fd);
    if (!written)
        return fail_init(self, error, posix_error(write_errno, "Cannot write the EFI variable store", path));
    self->url = copied(url);
    return self;
}

}  // namespace

void install_boot() {
    // Abstract (Apple: +new and -init NS_UNAVAILABLE); NSCopying.
    class_def<>("VZBootLoader")
        .method("init", [](self_t<> self) -> id { unavailable(self, "init"); })
        .method("copyWithZone:", [](self_t<> self, void*) -> id { return send<id>(self, sel<"retain">()); })
        .done();

    class_def<linux_boot_loader_payload>("VZLinuxBootLoader", "VZBootLoader")
        .method("initWithKernelURL:",
                [](linux_loader self, id kernel) -> id {
                    self->kernel_url = copied(kernel);
                    self->command_line = ns_string("");
                    return self;
                })
        .method("kernelURL", [](linux_loader self) -> id { return self->kernel_url.get(); })
        .method("setKernelURL:", [](linux_loader self, id url) { self->kernel_url = copied(url); })
        .method("commandLine", [](linux_loader self) -> id { return self->command_line.get(); })
        .method("setCommandLine:", [](linux_loader self, id text) { self->command_line = copied(text); })
        .method("initialRamdiskURL", [](linux_loader self) -> id { return self->initial_ramdisk_url.get(); })
        .method("setInitialRamdiskURL:",
                [](linux_loader self, id url) { self->initial_ramdisk_url = copied(url); })
        .done();

    class_def<efi_boot_loader_payload>("VZEFIBootLoader", "VZBootLoader")
        .method("init", [](efi_loader self) -> id { return self; })
        .method("variableStore", [](efi_loader self) -> id { return self->variable_store.get(); })
        .method("setVariableStore:", [](efi_loader self, id s) { self->variable_store = retained(s); })
        .done();

    class_def<efi_variable_store_payload>("VZEFIVariableStore")
        .method("init", [](store self) -> id { unavailable(self, "init"); })
        // "Initialize the variable store from the URL of an existing file": no error parameter; a
        // missing file surfaces when the configuration is validated (see vz_sim_configuration.cpp).
        .method("initWithURL:",
                [](store self, id url) -> id {
                    self->url = copied(url);
                    return self;
                })
        .method("initCreatingVariableStoreAtURL:options:error:", &create_store)
        .method("URL", [](store self) -> id { return self->url.get(); })
        .done();
}

}  // namespace vmrt::objc::sim::vz::detail
