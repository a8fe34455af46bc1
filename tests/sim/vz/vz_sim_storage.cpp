// Storage: VZStorageDeviceAttachment, VZDiskImageStorageDeviceAttachment (macOS 11; the caching and
// synchronisation modes macOS 12), VZStorageDeviceConfiguration, VZVirtioBlockDeviceConfiguration
// (macOS 11), VZNVMExpressControllerDeviceConfiguration (macOS 14).
#include "vz_sim_model.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

namespace vmrt::objc::sim::vz::detail {

disk_image_attachment_payload::~disk_image_attachment_payload() {
    if (fd >= 0) ::close(fd);
}

namespace {

using disk_image = self_t<disk_image_attachment_payload>;

// macOS reports ENOTSUP (45) "Operation not supported" in NSPOSIXErrorDomain when the image does not
// exist, a misleading error observed on real Macs (tinylabscom/mvm PR 1216: "a nonexistent path
// yields exactly this error"). The simulation reproduces it, so that the driver must name the
// missing file itself.
constexpr NSInteger macos_enotsup = 45;

id init_disk_image(disk_image self, id url, BOOL read_only, NSInteger caching, NSInteger sync, id* error) {
    if (strong injected = take_injected("VZDiskImageStorageDeviceAttachment",
                                        "initWithURL:readOnly:cachingMode:synchronizationMode:error:"))
        return fail_init(self, error, std::move(injected));
    // VZDiskImageCachingMode Automatic 0, Uncached 1, Cached 2; VZDiskImageSynchronizationMode
    // Full 1, Fsync 2, None 3. Simulation: other values are refused as an invalid configuration.
    if (caching < 0 || caching > 2)
        return fail_init(self, error, invalid_configuration("Invalid disk image caching mode."));
    if (sync < 1 || sync > 3)
        return fail_init(self, error, invalid_configuration("Invalid disk image synchronization mode."));
    const std::string path = path_of(url);
    int fd = ::open(path.c_str(), (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return fail_init(self, error,
                             make_error(posix_domain, macos_enotsup,
                                        "The operation couldn\u2019t be completed. Operation not supported"));
        return fail_init(self, error, posix_error(errno, "Cannot open the disk image", path));
    }
    self->fd = fd;
    self->url = copied(url);
    self->read_only = read_only != NO;
    self->caching_mode = caching;
    self->synchronization_mode = sync;
    return self;
}

id init_with_attachment(self_t<> self, id attachment) {
    // Apple: `attachment` is nonnull; a nil one would be a programming error.
    payload<attachment_payload>(self)->attachment = retained(attachment);
    return self;
}

}  // namespace

void install_storage() {
    class_def<>("VZStorageDeviceAttachment")
        .method("init", [](self_t<> self) -> id { unavailable(self, "init"); })
        .done();

    class_def<disk_image_attachment_payload>("VZDiskImageStorageDeviceAttachment",
                                             "VZStorageDeviceAttachment")
        // macOS 11: the modes are VZ's defaults, Automatic and Full.
        .method("initWithURL:readOnly:error:",
                [](disk_image self, id url, BOOL read_only, id* error) -> id {
                    if (strong injected = take_injected("VZDiskImageStorageDeviceAttachment",
                                                        "initWithURL:readOnly:error:"))
                        return fail_init(self, error, std::move(injected));
                    return init_disk_image(self, url, read_only, 0, 1, error);
                })
        .method("initWithURL:readOnly:cachingMode:synchronizationMode:error:", &init_disk_image)
        .method("URL", [](disk_image self) -> id { return self->url.get(); })
        .method("isReadOnly", [](disk_image self) -> BOOL { return self->read_only ? YES : NO; })
        .method("cachingMode", [](disk_image self) -> NSInteger { return self->caching_mode; })
        .method("synchronizationMode",
                [](disk_image self) -> NSInteger { return self->synchronization_mode; })
        .done();

    class_def<attachment_payload>("VZStorageDeviceConfiguration")
        .method("init", [](self_t<attachment_payload> self) -> id { unavailable(self, "init"); })
        .method("attachment", [](self_t<attachment_payload> self) -> id { return self->attachment.get(); })
        .method("copyWithZone:",
                [](self_t<attachment_payload> self, void*) -> id { return send<id>(self, sel<"retain">()); })
        .done();

    class_def<>("VZVirtioBlockDeviceConfiguration", "VZStorageDeviceConfiguration")
        .method("initWithAttachment:", &init_with_attachment)
        .done();

    class_def<>("VZNVMExpressControllerDeviceConfiguration", "VZStorageDeviceConfiguration")
        .method("initWithAttachment:", &init_with_attachment)
        .done();
}

}  // namespace vmrt::objc::sim::vz::detail
