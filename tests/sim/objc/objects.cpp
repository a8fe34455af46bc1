// Instances of the simulated runtime: allocation with C++ payloads, thread-safe reference counting,
// deallocation, live-object counters; and the root class NSObject (plus Protocol).
#include "foundation_model.hpp"
#include "runtime_model.hpp"
#include "sim.hpp"

#include <climits>
#include <cstring>
#include <sstream>
#include <vector>

namespace vmrt::objc::sim::detail {

namespace {

std::atomic<long> total_live{0};

instance_header* header_of(objc_object* obj) noexcept { return static_cast<instance_header*>(obj); }

std::vector<objc_class*> chain_root_first(objc_class* cls) {
    std::vector<objc_class*> chain;
    for (objc_class* c = cls; c; c = c->superclass) chain.push_back(c);
    return {chain.rbegin(), chain.rend()};
}

bool inherits_from(objc_class* cls, objc_class* ancestor) {
    for (objc_class* c = cls; c; c = c->superclass)
        if (c == ancestor) return true;
    return false;
}

bool conforms(objc_class* cls, objc_object* protocol) {
    for (objc_class* c = cls; c; c = c->superclass)
        if (class_conformsToProtocol(c, protocol)) return true;
    return false;
}

}  // namespace

objc_object* create_instance(objc_class* cls) {
    if (cls->is_meta || cls->disposed) fatal("cannot allocate an instance of " + cls->name);
    const std::size_t size = cls->instance_size;  // frozen: ivars cannot be added once registered
    void* memory = ::operator new (size, std::align_val_t{instance_alignment});
    std::memset(memory, 0, size);
    auto* header = new (memory) instance_header;
    header->isa = cls;
    header->retain_count.store(1, std::memory_order_relaxed);
    for (objc_class* c : chain_root_first(cls))
        for (const auto& ivar : c->ivars)
            if (ivar->construct) ivar->construct(static_cast<char*>(memory) + ivar->offset);
    cls->live.fetch_add(1, std::memory_order_relaxed);
    cls->created.fetch_add(1, std::memory_order_relaxed);
    total_live.fetch_add(1, std::memory_order_relaxed);
    return header;
}

void dispose_instance(objc_object* obj) noexcept {
    objc_class* cls = obj->isa;
    for (objc_class* c = cls; c; c = c->superclass)
        for (auto it = c->ivars.rbegin(); it != c->ivars.rend(); ++it)
            if ((*it)->destroy) (*it)->destroy(reinterpret_cast<char*>(obj) + (*it)->offset);
    cls->live.fetch_sub(1, std::memory_order_relaxed);
    total_live.fetch_sub(1, std::memory_order_relaxed);
    header_of(obj)->~instance_header();
    ::operator delete (obj, std::align_val_t{instance_alignment});
}

void retain_instance(objc_object* obj) noexcept {
    long before = header_of(obj)->retain_count.fetch_add(1, std::memory_order_relaxed);
    if (before <= 0) fatal("-retain sent to a deallocated " + obj->isa->name);
}

void release_instance(objc_object* obj) noexcept {
    long before = header_of(obj)->retain_count.fetch_sub(1, std::memory_order_acq_rel);
    if (before == 1) {
        send<void>(obj, sel<"dealloc">());
    } else if (before <= 0) {
        fatal("-release sent to a deallocated " + obj->isa->name + " (over-release)");
    }
}

void install_nsobject() {
    class_def<>("NSObject", nullptr)
        // --- instances ---
        .method("init", [](self_t<> self) -> id { return self; })
        .method("self", [](self_t<> self) -> id { return self; })
        .method("retain",
                [](self_t<> self) -> id {
                    retain_instance(self);
                    return self;
                })
        .method("release", [](self_t<> self) { release_instance(self); })
        .method("autorelease", [](self_t<> self) -> id { return autorelease(self.obj); })
        .method("retainCount",
                [](self_t<> self) -> NSUInteger {
                    return static_cast<NSUInteger>(
                        header_of(self)->retain_count.load(std::memory_order_relaxed));
                })
        .method("dealloc", [](self_t<> self) { dispose_instance(self); })
        .method("class", [](self_t<> self) -> Class { return class_of(self); })
        .method("superclass", [](self_t<> self) -> Class { return class_of(self)->superclass; })
        .method("respondsToSelector:",
                [](self_t<> self, SEL s) -> BOOL { return class_respondsToSelector(class_of(self), s); })
        .method("isKindOfClass:",
                [](self_t<> self, Class c) -> BOOL { return inherits_from(class_of(self), c) ? YES : NO; })
        .method(
            "isMemberOfClass:", [](self_t<> self, Class c) -> BOOL { return class_of(self) == c ? YES : NO; })
        .method("conformsToProtocol:",
                [](self_t<> self, Protocol* p) -> BOOL { return conforms(class_of(self), p) ? YES : NO; })
        .method("isEqual:", [](self_t<> self, id other) -> BOOL { return self.obj == other ? YES : NO; })
        .method("hash", [](self_t<> self) -> NSUInteger { return reinterpret_cast<NSUInteger>(self.obj); })
        .method("description",
                [](self_t<> self) -> id {
                    std::ostringstream text;
                    text << '<' << class_of(self)->name << ": " << static_cast<const void*>(self.obj) << '>';
                    return autorelease(make_string(text.str()));
                })
        .method("copy",
                [](self_t<> self) -> id { return send<id, void*>(self, sel<"copyWithZone:">(), nullptr); })
        .method(
            "mutableCopy",
            [](self_t<> self) -> id { return send<id, void*>(self, sel<"mutableCopyWithZone:">(), nullptr); })
        // --- classes (class objects are immortal: retain/release do nothing) ---
        .class_method("alloc", [](Class cls) -> id { return create_instance(cls); })
        .class_method("allocWithZone:", [](Class cls, void*) -> id { return create_instance(cls); })
        .class_method("new",
                      [](Class cls) -> id { return send<id>(send<id>(cls, sel<"alloc">()), sel<"init">()); })
        .class_method("class", [](Class cls) -> Class { return cls; })
        .class_method("superclass", [](Class cls) -> Class { return cls->superclass; })
        .class_method("retain", [](Class cls) -> id { return as_id(cls); })
        .class_method("release", [](Class) {})
        .class_method("autorelease", [](Class cls) -> id { return as_id(cls); })
        .class_method("retainCount", [](Class) -> NSUInteger { return ULONG_MAX; })
        .class_method("instancesRespondToSelector:",
                      [](Class cls, SEL s) -> BOOL { return class_respondsToSelector(cls, s); })
        .class_method(
            "isSubclassOfClass:", [](Class cls, Class c) -> BOOL { return inherits_from(cls, c) ? YES : NO; })
        .class_method(
            "conformsToProtocol:", [](Class cls, Protocol* p) -> BOOL { return conforms(cls, p) ? YES : NO; })
        .class_method("description", [](Class cls) -> id { return autorelease(make_string(cls->name)); })
        .done();

    // Protocol objects are immortal, like the runtime's.
    class_def<>("Protocol")
        .method("retain", [](self_t<> self) -> id { return self; })
        .method("release", [](self_t<>) {})
        .method("autorelease", [](self_t<> self) -> id { return self; })
        .done();
}

}  // namespace vmrt::objc::sim::detail

namespace vmrt::objc::sim {

long live_instances(const char* class_name) {
    objc_class* cls = detail::class_named(class_name);
    return cls ? cls->live.load() : 0;
}

long created_instances(const char* class_name) {
    objc_class* cls = detail::class_named(class_name);
    return cls ? cls->created.load() : 0;
}

long live_instances_total() { return detail::total_live.load(); }

long retain_count(id obj) { return obj ? detail::header_of(obj)->retain_count.load() : 0; }

}  // namespace vmrt::objc::sim
