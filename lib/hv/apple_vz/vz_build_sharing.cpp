// Directory sharing builders: VZVirtioFileSystemDeviceConfiguration with a VZSingleDirectoryShare,
// a VZMultipleDirectoryShare or the VZLinuxRosettaDirectoryShare.
#include "hv/apple_vz/objc/foundation.hpp"
#include "hv/apple_vz/vz_build.hpp"

#include <boost/system/system_category.hpp>

#include <sys/stat.h>

#include <cstring>

namespace vmrt::hv::vz::build {

namespace {

using objc::id;
using objc::sel;
using objc::send;
using objc::strong;

// VZ looks at a shared directory only when the guest mounts it: check it exists now, against its field.
void check_directory(const shared_directory& dir) {
    struct stat st {};
    const std::string path = dir.host_path.string();
    if (::stat(dir.host_path.c_str(), &st) != 0)
        throw failure(error_code(errno, boost::system::system_category()), dir.field + ".host_path",
                      "cannot share " + path + ": " + std::strerror(errno));
    if (!S_ISDIR(st.st_mode))
        throw failure(error_code(ENOTDIR, boost::system::system_category()), dir.field + ".host_path",
                      "cannot share " + path + ": not a directory");
}

strong make_shared_directory(const shared_directory& dir) {
    check_directory(dir);
    strong url = objc::ns_file_url(dir.host_path);
    return objc::alloc_init<id, objc::BOOL>(vz_class("VZSharedDirectory"), sel<"initWithURL:readOnly:">(),
                                            url.get(), dir.read_only ? objc::YES : objc::NO);
}

strong make_multiple_share(const multiple_directory_share& plan) {
    objc::Class share_class = vz_class("VZMultipleDirectoryShare");
    std::vector<strong> keep;
    std::vector<std::pair<std::string, id>> entries;
    for (const auto& [name, dir] : plan.directories) {
        // -initWithDirectories: raises an exception for an invalid name: ask first.
        strong ns_name = objc::ns_string(name);
        id ns_error = nullptr;
        if (!send<objc::BOOL, id, id*>(share_class, sel<"validateName:error:">(), ns_name.get(), &ns_error))
            throw ns_failure(ns_error, "use \"" + name + "\" as the name of a shared directory",
                             dir.field + ".share_name");
        keep.push_back(make_shared_directory(dir));
        entries.emplace_back(name, keep.back().get());
    }
    strong directories = objc::ns_dictionary(entries);
    return objc::alloc_init<id>(share_class, sel<"initWithDirectories:">(), directories.get());
}

strong make_rosetta_share() {
    id ns_error = nullptr;
    strong share = strong::adopt(send<id, id*>(objc::alloc(vz_class("VZLinuxRosettaDirectoryShare")),
                                               sel<"initWithError:">(), &ns_error));
    if (!share) throw ns_failure(ns_error, "share Rosetta with the guest", "rosetta");
    return share;
}

}  // namespace

strong make_directory_sharing_device(const directory_sharing_device& device) {
    std::string tag_field = "rosetta";
    strong share;
    if (const auto* single = std::get_if<single_directory_share>(&device.share)) {
        tag_field = single->directory.field + ".tag";
        strong dir = make_shared_directory(single->directory);
        share =
            objc::alloc_init<id>(vz_class("VZSingleDirectoryShare"), sel<"initWithDirectory:">(), dir.get());
    } else if (const auto* multiple = std::get_if<multiple_directory_share>(&device.share)) {
        if (!multiple->directories.empty()) tag_field = multiple->directories.front().second.field + ".tag";
        share = make_multiple_share(*multiple);
    } else {
        share = make_rosetta_share();
    }
    objc::Class device_class = vz_class("VZVirtioFileSystemDeviceConfiguration");
    strong tag = objc::ns_string(device.tag);
    id ns_error = nullptr;
    if (!send<objc::BOOL, id, id*>(device_class, sel<"validateTag:error:">(), tag.get(), &ns_error))
        throw ns_failure(ns_error, "use \"" + device.tag + "\" as a virtio-fs tag", tag_field);
    strong configuration = objc::alloc_init<id>(device_class, sel<"initWithTag:">(), tag.get());
    send<void, id>(configuration, sel<"setShare:">(), share.get());
    return configuration;
}

}  // namespace vmrt::hv::vz::build
