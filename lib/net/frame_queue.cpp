#include "net/frame_queue.hpp"

#include <algorithm>

namespace vmrt::net {

void frame_queue::make_room(std::size_t need) {
    // Slide the live bytes to the front first; grow (by doubling, up to what the limit allows)
    // only if that is not enough. The buffer never shrinks: a port's working size is reached once.
    if (mark_ > 0) {
        std::memmove(buf_.data(), buf_.data() + mark_, tail_ - mark_);
        head_ -= mark_;
        tail_ -= mark_;
        mark_ = 0;
    }
    if (tail_ + need <= buf_.size()) return;
    std::size_t size = std::max<std::size_t>(buf_.size() * 2, 64 * 1024);
    size = std::max(std::min(size, limit_), tail_ + need);
    buf_.resize(size);
}

}  // namespace vmrt::net
