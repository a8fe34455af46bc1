// The simulated runtime's classes, selectors, ivars, methods and message look-up, and the C entry
// points of <objc/runtime.h> that the vmrt::objc layer calls.
#include "runtime_model.hpp"
#include "sim.hpp"

#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <sstream>
#include <stdexcept>

namespace vmrt::objc::sim::detail {

registry& reg() {
    static registry* const instance = new registry;  // never destroyed, see registry
    return *instance;
}

void fatal(const std::string& what) noexcept {
    std::fprintf(stderr, "*** vmrt objc simulation: %s\n", what.c_str());
    std::fflush(stderr);
    std::abort();
}

void bootstrap() {
    // The installers define classes through the same functions that call bootstrap(): the flag
    // lets those nested calls through on the installing thread while other threads wait.
    static std::once_flag once;
    thread_local bool installing = false;
    if (installing) return;
    std::call_once(once, [] {
        installing = true;
        install_nsobject();
        install_block_classes();
        install_strings();
        install_collections();
        install_values();
        install_errors();
        install_file_handles();
        installing = false;
    });
}

namespace {

// The message now being dispatched on this thread: objc_msgSend's look-up records it and jumps to the
// IMP, whose first act (current_dispatch) reads it back.
struct dispatch_record {
    objc_object* receiver = nullptr;
    objc_selector* sel = nullptr;
    const method_record* method = nullptr;
};
thread_local dispatch_record current;

bool is_hidden(objc_class* cls, objc_selector* sel) {
    const auto& hidden = reg().hidden_methods;
    return !hidden.empty() && hidden.count({cls, sel}) != 0;
}

std::size_t align_up(std::size_t value, std::size_t alignment) {
    return (value + alignment - 1) & ~(alignment - 1);
}

}  // namespace

objc_class* class_of(objc_object* obj) noexcept {
    if (objc_class* block = block_class_for(obj->isa)) return block;
    return obj->isa;
}

const method_record* find_method_locked(objc_class* cls, objc_selector* sel) noexcept {
    for (objc_class* c = cls; c; c = c->superclass) {
        auto it = c->methods.find(sel);
        if (it != c->methods.end() && !is_hidden(c, sel)) return it->second;
    }
    return nullptr;
}

const method_record* find_method(objc_class* cls, objc_selector* sel) noexcept {
    std::shared_lock lock(reg().mutex);
    return find_method_locked(cls, sel);
}

bool add_method(objc_class* cls, objc_selector* sel, IMP imp, std::string types,
                std::shared_ptr<void> context, bool replace) {
    std::unique_lock lock(reg().mutex);
    auto it = cls->methods.find(sel);
    if (it != cls->methods.end() && !replace) return false;
    // A replaced record stays alive: another thread may be running it right now.
    method_record& record =
        reg().methods.emplace_back(method_record{sel, imp, std::move(types), cls, std::move(context)});
    cls->methods[sel] = &record;
    return true;
}

objc_class* allocate_class_pair(objc_class* superclass, const std::string& name) {
    bootstrap();
    std::unique_lock lock(reg().mutex);
    if (name.empty() || reg().classes.count(name)) return nullptr;
    // Like Apple's verifySuperclass: the superclass must be a finished (registered) class.
    if (superclass && (superclass->is_meta || !superclass->registered || superclass->disposed))
        return nullptr;
    auto* cls = new objc_class;
    auto* meta = new objc_class;
    cls->name = meta->name = name;
    meta->is_meta = true;
    cls->isa = meta;
    cls->superclass = superclass;
    if (superclass) {
        cls->instance_size = superclass->instance_size;
        meta->superclass = superclass->isa;
        meta->isa = superclass->isa->isa;  // the root metaclass
    } else {
        meta->superclass = cls;  // a root metaclass inherits from its root class
        meta->isa = meta;
    }
    reg().classes[name] = cls;
    return cls;
}

objc_ivar* add_ivar(objc_class* cls, const std::string& name, std::size_t size, std::size_t alignment,
                    std::string type) {
    std::unique_lock lock(reg().mutex);
    if (!cls || cls->is_meta || cls->registered || name.empty()) return nullptr;
    if (alignment == 0 || (alignment & (alignment - 1)) != 0 || alignment > instance_alignment)
        return nullptr;
    for (objc_class* c = cls; c; c = c->superclass)
        for (const auto& ivar : c->ivars)
            if (ivar->name == name) return nullptr;
    auto ivar = std::make_unique<objc_ivar>();
    ivar->name = name;
    ivar->type = std::move(type);
    ivar->offset = static_cast<std::ptrdiff_t>(align_up(cls->instance_size, alignment));
    ivar->size = size;
    cls->instance_size = static_cast<std::size_t>(ivar->offset) + size;
    cls->ivars.push_back(std::move(ivar));
    return cls->ivars.back().get();
}

void register_class_pair(objc_class* cls) {
    std::unique_lock lock(reg().mutex);
    if (!cls || cls->is_meta || cls->disposed) fatal("objc_registerClassPair: not an allocated class");
    if (cls->registered) fatal("objc_registerClassPair: class '" + cls->name + "' was already registered");
    cls->registered = true;
    cls->isa->registered = true;
}

objc_class* class_named(const std::string& name) noexcept {
    bootstrap();
    std::shared_lock lock(reg().mutex);
    auto it = reg().classes.find(name);
    if (it == reg().classes.end() || !it->second->registered || it->second->disposed) return nullptr;
    return it->second;
}

dispatch_info current_dispatch(id self, SEL cmd) noexcept {
    const dispatch_record record = std::exchange(current, dispatch_record{});
    if (!record.method || record.receiver != self || record.sel != cmd)
        fatal(std::string("a simulated method (") + sel_getName(cmd) +
              ") was called directly instead of through objc_msgSend");
    objc_class* owner = record.method->owner;
    void* payload = nullptr;
    if (!owner->is_meta && owner->payload) payload = reinterpret_cast<char*>(self) + owner->payload->offset;
    return {record.method->context.get(), payload};
}

void add_cpp_method(Class cls, bool class_method, const char* selector, IMP imp, std::string types,
                    std::shared_ptr<void> fn) {
    add_method(class_method ? cls->isa : cls, sel_registerName(selector), imp, std::move(types),
               std::move(fn), true);
}

Class begin_class(const char* name, const char* superclass) {
    objc_class* parent = nullptr;
    if (superclass) {
        parent = class_named(superclass);
        if (!parent)
            throw std::logic_error(std::string("sim::class_def: no registered superclass ") + superclass);
    }
    objc_class* cls = allocate_class_pair(parent, name);
    if (!cls) throw std::logic_error(std::string("sim::class_def: the class name ") + name + " is taken");
    return cls;
}

Class existing_class(const char* name) {
    objc_class* cls = class_named(name);
    if (!cls) throw std::logic_error(std::string("sim::class_def::extend: no class ") + name);
    return cls;
}

void add_payload(Class cls, std::size_t size, std::size_t alignment, void (*construct)(void*),
                 void (*destroy)(void*), const void* type) {
    objc_ivar* ivar = add_ivar(cls, "__sim_payload_" + cls->name, size, alignment, "?");
    if (!ivar) throw std::logic_error("sim::class_def: cannot add the payload of " + cls->name);
    std::unique_lock lock(reg().mutex);
    ivar->construct = construct;
    ivar->destroy = destroy;
    ivar->payload_type = type;
    cls->payload = ivar;
}

const void* payload_type(Class cls) noexcept {
    return cls && cls->payload ? cls->payload->payload_type : nullptr;
}

void* payload_at(id obj, const void* type) noexcept {
    if (!obj) return nullptr;
    for (objc_class* c = class_of(obj); c; c = c->superclass)
        if (c->payload && c->payload->payload_type == type)
            return reinterpret_cast<char*>(obj) + c->payload->offset;
    return nullptr;
}

void finish_class(Class cls) { register_class_pair(cls); }

}  // namespace vmrt::objc::sim::detail

namespace vmrt::objc::sim {

using namespace detail;

void fatal(const std::string& what) noexcept { detail::fatal(what); }

IMP find_method(id receiver, SEL sel) {
    if (!receiver) return nullptr;
    const method_record* m = detail::find_method(class_of(receiver), sel);
    return m ? m->imp : nullptr;
}

std::string unrecognized_selector_message(id receiver, SEL sel) {
    objc_class* cls = class_of(receiver);
    std::ostringstream out;
    out << (cls->is_meta ? '+' : '-') << '[' << cls->name << ' ' << sel->name
        << "]: unrecognized selector sent to " << (cls->is_meta ? "class " : "instance ")
        << static_cast<const void*>(receiver);
    return out.str();
}

scoped_hidden_class::scoped_hidden_class(std::string name) : name_(std::move(name)) {
    bootstrap();
    std::unique_lock lock(reg().mutex);
    reg().hidden_classes.insert(name_);
}

scoped_hidden_class::~scoped_hidden_class() {
    std::unique_lock lock(reg().mutex);
    auto& hidden = reg().hidden_classes;
    if (auto it = hidden.find(name_); it != hidden.end()) hidden.erase(it);
}

scoped_hidden_method::scoped_hidden_method(const char* class_name, const char* selector) {
    objc_class* cls = class_named(class_name);
    if (!cls) throw std::logic_error(std::string("sim::scoped_hidden_method: no class ") + class_name);
    bool class_method = selector[0] == '+';
    cls_ = class_method ? cls->isa : cls;
    sel_ = sel_registerName(class_method ? selector + 1 : selector);
    std::unique_lock lock(reg().mutex);
    if (!reg().hidden_methods.insert({cls_, sel_}).second)
        throw std::logic_error(std::string("sim::scoped_hidden_method: already hidden: ") + selector);
}

scoped_hidden_method::~scoped_hidden_method() {
    std::unique_lock lock(reg().mutex);
    reg().hidden_methods.erase({cls_, sel_});
}

Protocol* define_protocol(const char* name) {
    bootstrap();
    objc_class* protocol_class = class_named("Protocol");
    std::unique_lock lock(reg().mutex);
    auto& slot = reg().protocols[name];
    if (!slot) {
        slot = new protocol_object;  // immortal, like the runtime's protocols
        slot->isa = protocol_class;
        slot->name = name;
    }
    return slot;
}

}  // namespace vmrt::objc::sim

using namespace vmrt::objc::sim::detail;
using vmrt::objc::BOOL;
using vmrt::objc::IMP;

namespace {

// What class_getMethodImplementation returns for a selector nobody implements (Apple: _objc_msgForward).
void forward_not_simulated() { fatal("message forwarding (_objc_msgForward) is not simulated"); }

BOOL to_bool(bool value) { return value ? vmrt::objc::YES : vmrt::objc::NO; }

}  // namespace

// --- the look-ups the assembly trampolines call ---------------------------------------------------

extern "C" IMP vmrt_objc_sim_lookup(objc_object* receiver, objc_selector* sel) noexcept {
    objc_class* cls = class_of(receiver);
    const method_record* m = find_method(cls, sel);
    if (!m) fatal(vmrt::objc::sim::unrecognized_selector_message(receiver, sel));
    current = {receiver, sel, m};
    return m->imp;
}

extern "C" IMP vmrt_objc_sim_lookup_super(objc_super* super, objc_selector* sel) noexcept {
    const method_record* m = super->super_class ? find_method(super->super_class, sel) : nullptr;
    if (!m) fatal(vmrt::objc::sim::unrecognized_selector_message(super->receiver, sel) + " (via super)");
    current = {super->receiver, sel, m};
    return m->imp;
}

// --- <objc/runtime.h> -------------------------------------------------------------------------------

objc_selector* sel_registerName(const char* str) {
    auto& r = reg();
    std::lock_guard lock(r.selector_mutex);
    auto& slot = r.selectors[str];
    if (!slot) slot = std::make_unique<objc_selector>(objc_selector{str});
    return slot.get();
}

const char* sel_getName(objc_selector* sel) { return sel ? sel->name.c_str() : "<null selector>"; }

objc_class* objc_getClass(const char* name) {
    if (!name) return nullptr;
    objc_class* cls = class_named(name);
    if (!cls) return nullptr;
    std::shared_lock lock(reg().mutex);
    return reg().hidden_classes.count(cls->name) ? nullptr : cls;
}

objc_class* objc_lookUpClass(const char* name) { return objc_getClass(name); }

objc_class* object_getClass(objc_object* obj) { return obj ? class_of(obj) : nullptr; }

const char* object_getClassName(objc_object* obj) { return obj ? class_of(obj)->name.c_str() : "nil"; }

const char* class_getName(objc_class* cls) { return cls ? cls->name.c_str() : "nil"; }

objc_class* class_getSuperclass(objc_class* cls) { return cls ? cls->superclass : nullptr; }

BOOL class_respondsToSelector(objc_class* cls, objc_selector* sel) {
    return to_bool(cls && sel && find_method(cls, sel));
}

IMP class_getMethodImplementation(objc_class* cls, objc_selector* name) {
    if (!cls || !name) return nullptr;
    const method_record* m = find_method(cls, name);
    return m ? m->imp : reinterpret_cast<IMP>(&forward_not_simulated);
}

objc_class* objc_allocateClassPair(objc_class* superclass, const char* name, std::size_t /*extraBytes*/) {
    return name ? allocate_class_pair(superclass, name) : nullptr;
}

void objc_registerClassPair(objc_class* cls) { register_class_pair(cls); }

void objc_disposeClassPair(objc_class* cls) {
    if (!cls || cls->is_meta) return;
    if (cls->live.load() != 0) fatal("objc_disposeClassPair: instances of " + cls->name + " still exist");
    std::unique_lock lock(reg().mutex);
    auto it = reg().classes.find(cls->name);
    if (it != reg().classes.end() && it->second == cls) reg().classes.erase(it);
    // The memory stays: a stale pointer must find a dead class, not freed memory.
    cls->disposed = cls->isa->disposed = true;
    reg().disposed.push_back(cls);
}

BOOL class_addMethod(objc_class* cls, objc_selector* name, IMP imp, const char* types) {
    if (!cls || !name || !imp) return vmrt::objc::NO;
    return to_bool(add_method(cls, name, imp, types ? types : "", nullptr, false));
}

BOOL class_addIvar(objc_class* cls, const char* name, std::size_t size, std::uint8_t alignment,
                   const char* types) {
    if (!name || alignment > 4) return vmrt::objc::NO;
    return to_bool(add_ivar(cls, name, size, std::size_t{1} << alignment, types ? types : ""));
}

objc_ivar* class_getInstanceVariable(objc_class* cls, const char* name) {
    if (!cls || !name) return nullptr;
    std::shared_lock lock(reg().mutex);
    for (objc_class* c = cls; c; c = c->superclass)
        for (const auto& ivar : c->ivars)
            if (ivar->name == name) return ivar.get();
    return nullptr;
}

std::ptrdiff_t ivar_getOffset(objc_ivar* v) { return v ? v->offset : 0; }

objc_object* objc_getProtocol(const char* name) {
    if (!name) return nullptr;
    bootstrap();
    std::shared_lock lock(reg().mutex);
    auto it = reg().protocols.find(name);
    return it == reg().protocols.end() ? nullptr : it->second;
}

BOOL class_addProtocol(objc_class* cls, objc_object* protocol) {
    if (!cls || !protocol) return vmrt::objc::NO;
    std::unique_lock lock(reg().mutex);
    for (objc_object* p : cls->protocols)
        if (p == protocol) return vmrt::objc::NO;
    cls->protocols.push_back(protocol);
    return vmrt::objc::YES;
}

BOOL class_conformsToProtocol(objc_class* cls, objc_object* protocol) {
    if (!cls || !protocol) return vmrt::objc::NO;
    std::shared_lock lock(reg().mutex);
    for (objc_object* p : cls->protocols)
        if (p == protocol) return vmrt::objc::YES;
    return vmrt::objc::NO;
}
