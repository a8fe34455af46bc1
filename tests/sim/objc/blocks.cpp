// The Block runtime of the simulation (libclosure's rules): _Block_copy moves a stack block to the
// heap (copy helper), counts references on heap blocks and leaves global blocks alone;
// _Block_release frees a heap block when its last reference goes (dispose helper). The reference
// count lives in the flags word, in steps of 2, latching at its maximum, updated atomically.
// Blocks are objects: the block classes answer -copy, -retain, -release and -autorelease.
#include "hv/apple_vz/objc/block.hpp"
#include "runtime_model.hpp"
#include "sim.hpp"

#include <cstdlib>
#include <cstring>

extern "C" {
// Apple exports the heap blocks' isa too (Block_private.h); the layer never names it.
void* _NSConcreteStackBlock[32];
void* _NSConcreteGlobalBlock[32];
void* _NSConcreteMallocBlock[32];
}

namespace vmrt::objc::sim::detail {

namespace {

namespace abi = vmrt::objc::block_abi;

// Runtime-owned flag bits (Block_private.h).
constexpr int deallocating = 0x0001;
constexpr int refcount_mask = 0xfffe;
constexpr int needs_free = 1 << 24;

std::atomic<long> heap_blocks{0};
std::atomic<objc_class*> stack_block_class{nullptr};
std::atomic<objc_class*> malloc_block_class{nullptr};
std::atomic<objc_class*> global_block_class{nullptr};

abi::header* header_of(const void* block) { return static_cast<abi::header*>(const_cast<void*>(block)); }

unsigned long literal_size(const abi::header* block) {
    struct prefix {
        unsigned long reserved;
        unsigned long size;
    } p;
    std::memcpy(&p, block->descriptor, sizeof p);  // every descriptor starts with these two words
    return p.size;
}

const abi::descriptor_with_helpers* helpers_of(const abi::header* block) {
    return static_cast<const abi::descriptor_with_helpers*>(block->descriptor);
}

}  // namespace

objc_class* block_class_for(const objc_class* isa) noexcept {
    const void* p = isa;
    if (p == static_cast<const void*>(_NSConcreteStackBlock)) return stack_block_class.load();
    if (p == static_cast<const void*>(_NSConcreteMallocBlock)) return malloc_block_class.load();
    if (p == static_cast<const void*>(_NSConcreteGlobalBlock)) return global_block_class.load();
    return nullptr;
}

void install_block_classes() {
    class_def<>("NSBlock")
        .method("copy", [](self_t<> self) -> id { return static_cast<id>(_Block_copy(self.obj)); })
        .method("retain",
                [](self_t<> self) -> id {
                    // Only a heap block counts references; retaining a stack or global block does nothing.
                    if (header_of(self.obj)->flags & needs_free)
                        return static_cast<id>(_Block_copy(self.obj));
                    return self;
                })
        .method("release", [](self_t<> self) { _Block_release(self.obj); })
        .method("autorelease", [](self_t<> self) -> id { return autorelease(self.obj); })
        .done();
    stack_block_class = class_def<>("__NSStackBlock__", "NSBlock").done();
    malloc_block_class = class_def<>("__NSMallocBlock__", "NSBlock").done();
    global_block_class = class_def<>("__NSGlobalBlock__", "NSBlock").done();
}

}  // namespace vmrt::objc::sim::detail

namespace vmrt::objc::sim {

long live_heap_blocks() { return detail::heap_blocks.load(); }

const char* block_signature(id block) {
    const auto* head = detail::header_of(block);
    if (!(head->flags & block_abi::has_signature)) return nullptr;
    if (head->flags & block_abi::has_copy_dispose) return detail::helpers_of(head)->signature;
    return static_cast<const block_abi::descriptor_plain*>(head->descriptor)->signature;
}

}  // namespace vmrt::objc::sim

using namespace vmrt::objc::sim::detail;

void* _Block_copy(const void* aBlock) {
    if (!aBlock) return nullptr;
    abi::header* src = header_of(aBlock);
    std::atomic_ref<int> flags(src->flags);
    int f = flags.load(std::memory_order_acquire);
    if (f & needs_free) {
        // A heap block: one more reference.
        while (true) {
            if ((f & refcount_mask) == refcount_mask) return src;  // latched: immortal from now on
            if (f & deallocating) fatal("_Block_copy of a block that is being deallocated");
            if (flags.compare_exchange_weak(f, f + 2, std::memory_order_acq_rel)) return src;
        }
    }
    if (f & abi::is_global) return src;
    // A stack block: move its bytes to the heap, then let the copy helper copy the captures.
    const unsigned long size = literal_size(src);
    void* memory = std::malloc(size);
    if (!memory) return nullptr;
    std::memmove(memory, src, size);
    auto* copy = static_cast<abi::header*>(memory);
    copy->flags = (f & ~(refcount_mask | deallocating)) | needs_free | 2;
    if (f & abi::has_copy_dispose) helpers_of(src)->copy_helper(copy, src);
    copy->isa = static_cast<void*>(_NSConcreteMallocBlock);
    heap_blocks.fetch_add(1, std::memory_order_relaxed);
    return copy;
}

void _Block_release(const void* aBlock) {
    if (!aBlock) return;
    abi::header* block = header_of(aBlock);
    std::atomic_ref<int> flags(block->flags);
    int f = flags.load(std::memory_order_acquire);
    if ((f & abi::is_global) || !(f & needs_free)) return;  // global and stack blocks are not counted
    while (true) {
        if ((f & refcount_mask) == refcount_mask) return;  // latched
        if ((f & refcount_mask) == 0 || (f & deallocating))
            fatal("_Block_release: over-release of a heap block");
        const bool last = (f & refcount_mask) == 2;
        const int next = last ? ((f - 2) | deallocating) : f - 2;
        if (flags.compare_exchange_weak(f, next, std::memory_order_acq_rel)) {
            if (!last) return;
            break;
        }
    }
    if (f & abi::has_copy_dispose) helpers_of(block)->dispose_helper(block);
    std::free(block);
    heap_blocks.fetch_sub(1, std::memory_order_relaxed);
}
