// Simulated NSFileHandle: wraps a file descriptor and, when asked to (closeOnDealloc:YES), closes it
// when deallocated.
#include "foundation_model.hpp"
#include "runtime_model.hpp"

#include <unistd.h>

namespace vmrt::objc::sim::detail {

file_handle_payload::~file_handle_payload() {
    if (close_on_dealloc && fd >= 0) ::close(fd);
}

void install_file_handles() {
    using handle = self_t<file_handle_payload>;
    class_def<file_handle_payload>("NSFileHandle")
        .method("initWithFileDescriptor:closeOnDealloc:",
                [](handle self, int fd, BOOL close_on_dealloc) -> id {
                    self->fd = fd;
                    self->close_on_dealloc = close_on_dealloc;
                    return self;
                })
        .method("initWithFileDescriptor:",
                [](handle self, int fd) -> id {
                    self->fd = fd;  // the caller keeps ownership
                    return self;
                })
        .method("fileDescriptor",
                [](handle self) -> int {
                    if (self->fd < 0) fatal("-[NSFileHandle fileDescriptor]: the handle was closed");
                    return self->fd;
                })
        .method("closeFile",
                [](handle self) {
                    if (self->fd >= 0) ::close(self->fd);
                    self->fd = -1;
                })
        .done();
}

}  // namespace vmrt::objc::sim::detail
