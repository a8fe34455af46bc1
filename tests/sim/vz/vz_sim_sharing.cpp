// Directory sharing: VZSharedDirectory, VZDirectoryShare, VZSingleDirectoryShare,
// VZMultipleDirectoryShare, VZDirectorySharingDeviceConfiguration,
// VZVirtioFileSystemDeviceConfiguration (macOS 12), VZLinuxRosettaDirectoryShare (macOS 13, arm64).
#include "vz_sim_model.hpp"

#include <climits>
#include <cstdio>
#include <cstdlib>

namespace vmrt::objc::sim::vz::detail {

namespace {

using shared_dir = self_t<shared_directory_payload>;
using single = self_t<single_share_payload>;
using multiple = self_t<multiple_share_payload>;
using fs_device = self_t<file_system_device_payload>;

// +[VZVirtioFileSystemDeviceConfiguration validateTag:error:]: "The tag must be non-empty and less
// than 36 bytes when encoded in UTF-8." Simulation: the error is VZErrorInvalidVirtualMachineConfiguration.
std::string tag_problem(id tag) {
    if (!tag) return "The tag is missing.";
    const std::string text = to_string(tag);
    if (text.empty()) return "The tag is empty.";
    if (text.size() >= 36) return "The tag \u201c" + text + "\u201d is 36 bytes or longer.";
    return {};
}

// +[VZMultipleDirectoryShare validateName:error:]: "The name must not be empty, have characters
// unsafe for file systems, be longer than NAME_MAX, or other restrictions." Simulation: a slash or a
// NUL is unsafe, "." and ".." are refused (they are not names of a directory of their own).
std::string name_problem(const std::string& name) {
    if (name.empty()) return "The directory name is empty.";
    if (name.size() > NAME_MAX) return "The directory name \u201c" + name + "\u201d is longer than NAME_MAX.";
    if (name.find('/') != std::string::npos || name.find('\0') != std::string::npos)
        return "The directory name \u201c" + name + "\u201d contains a character unsafe for file systems.";
    if (name == "." || name == "..") return "The directory name \u201c" + name + "\u201d is reserved.";
    return {};
}

}  // namespace

std::string directory_name_problem(const std::string& name) { return name_problem(name); }
std::string directory_tag_problem(id tag) { return tag_problem(tag); }

void install_sharing() {
    class_def<shared_directory_payload>("VZSharedDirectory")
        .method("init", [](shared_dir self) -> id { unavailable(self, "init"); })
        .method("initWithURL:readOnly:",
                [](shared_dir self, id url, BOOL read_only) -> id {
                    self->url = copied(url);
                    self->read_only = read_only != NO;
                    return self;
                })
        .method("URL", [](shared_dir self) -> id { return self->url.get(); })
        .method("setURL:", [](shared_dir self, id url) { self->url = copied(url); })
        .method("isReadOnly", [](shared_dir self) -> BOOL { return self->read_only ? YES : NO; })
        .method("setReadOnly:", [](shared_dir self, BOOL value) { self->read_only = value != NO; })
        .done();

    class_def<>("VZDirectoryShare")
        .method("init", [](self_t<> self) -> id { unavailable(self, "init"); })
        .done();

    class_def<single_share_payload>("VZSingleDirectoryShare", "VZDirectoryShare")
        .method("initWithDirectory:",
                [](single self, id directory) -> id {
                    self->directory = retained(directory);
                    return self;
                })
        .method("directory", [](single self) -> id { return self->directory.get(); })
        .done();

    class_def<multiple_share_payload>("VZMultipleDirectoryShare", "VZDirectoryShare")
        .method("init",
                [](multiple self) -> id {
                    self->directories = ns_dictionary({});
                    return self;
                })
        // "The dictionary string keys will be the name for the directory. The keys must be valid
        // names or an exception will be raised." An uncaught exception ends the process, as here.
        .method("initWithDirectories:",
                [](multiple self, id directories) -> id {
                    autorelease_pool pool;
                    id keys = send<id>(directories, sel<"allKeys">());
                    for (const strong& key : array_items(keys)) {
                        const std::string problem = name_problem(to_string(key.get()));
                        if (!problem.empty()) {
                            std::fprintf(stderr,
                                         "*** vmrt VZ simulation: -[VZMultipleDirectoryShare "
                                         "initWithDirectories:]: NSInvalidArgumentException: %s\n",
                                         problem.c_str());
                            std::abort();
                        }
                    }
                    self->directories = copied(directories);
                    return self;
                })
        .method("directories", [](multiple self) -> id { return self->directories.get(); })
        .class_method("validateName:error:",
                      [](Class, id name, id* error) -> BOOL {
                          if (strong injected =
                                  take_injected("VZMultipleDirectoryShare", "validateName:error:")) {
                              report(error, std::move(injected));
                              return NO;
                          }
                          const std::string problem = name_problem(to_string(name));
                          if (problem.empty()) return YES;
                          report(error, invalid_configuration(problem));
                          return NO;
                      })
        .class_method("canonicalizedNameFromName:",
                      [](Class, id name) -> id {
                          std::string text = to_string(name);
                          for (char& c : text)
                              if (c == '/' || c == '\0') c = '_';
                          if (text.empty() || text == "." || text == "..") text = "_" + text;
                          if (text.size() > NAME_MAX) text.resize(NAME_MAX);
                          return autorelease(ns_string(text).detach());
                      })
        .done();

    // Availability is the test's knob (set_rosetta_availability). "-initWithError: ... The call
    // returns an error if Rosetta is not available for a directory share." Simulation: the error is
    // VZErrorNotSupported with a description of which case it is.
    class_def<>("VZLinuxRosettaDirectoryShare", "VZDirectoryShare")
        .class_method(
            "availability",
            [](Class) -> NSInteger { return static_cast<NSInteger>(current_rosetta_availability()); })
        .method("initWithError:",
                [](self_t<> self, id* error) -> id {
                    if (strong injected = take_injected("VZLinuxRosettaDirectoryShare", "initWithError:"))
                        return fail_init(self, error, std::move(injected));
                    switch (current_rosetta_availability()) {
                    case rosetta_availability::installed:
                        return self;
                    case rosetta_availability::not_installed:
                        return fail_init(self, error,
                                         make_error(vz_domain, vz_not_supported, "Rosetta is not installed.",
                                                    "Rosetta support for Linux binaries is not installed on "
                                                    "the host system."));
                    case rosetta_availability::not_supported:
                        break;
                    }
                    return fail_init(self, error,
                                     make_error(vz_domain, vz_not_supported, "Rosetta is not supported.",
                                                "Rosetta support for Linux binaries is not available on the "
                                                "host system."));
                })
        .done();

    class_def<>("VZDirectorySharingDeviceConfiguration")
        .method("init", [](self_t<> self) -> id { unavailable(self, "init"); })
        .method("copyWithZone:", [](self_t<> self, void*) -> id { return send<id>(self, sel<"retain">()); })
        .done();

    // -initWithTag: does not check the tag ("The tag must be valid, which can be checked with
    // +validateTag:error:"); an invalid one makes the configuration invalid.
    class_def<file_system_device_payload>("VZVirtioFileSystemDeviceConfiguration",
                                          "VZDirectorySharingDeviceConfiguration")
        .method("initWithTag:",
                [](fs_device self, id tag) -> id {
                    self->tag = copied(tag);
                    return self;
                })
        .method("tag", [](fs_device self) -> id { return self->tag.get(); })
        .method("setTag:", [](fs_device self, id tag) { self->tag = copied(tag); })
        .method("share", [](fs_device self) -> id { return self->share.get(); })
        .method("setShare:", [](fs_device self, id share) { self->share = retained(share); })
        .class_method("validateTag:error:",
                      [](Class, id tag, id* error) -> BOOL {
                          if (strong injected = take_injected("VZVirtioFileSystemDeviceConfiguration",
                                                              "validateTag:error:")) {
                              report(error, std::move(injected));
                              return NO;
                          }
                          const std::string problem = tag_problem(tag);
                          if (problem.empty()) return YES;
                          report(error, invalid_configuration(problem));
                          return NO;
                      })
        .class_method(
            "macOSGuestAutomountTag",
            [](Class) -> id { return autorelease(ns_string("com.apple.virtio-fs.automount").detach()); })
        .done();
}

}  // namespace vmrt::objc::sim::vz::detail
