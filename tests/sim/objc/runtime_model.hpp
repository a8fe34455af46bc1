// The simulated runtime's data model (private to tests/sim/objc): what objects, classes, selectors,
// ivars and methods are, and the one registry that holds them.
//
// Layout follows Apple's where code can observe it: an object's first word is its class (isa); a
// class is an object whose isa is its metaclass; a metaclass's superclass is the superclass's
// metaclass, and the root metaclass's superclass is the root class (so class objects answer the
// root class's instance methods). Instances carry a reference count after isa; ivars follow.
#pragma once

#include "hv/apple_vz/objc/runtime.hpp"

#include <atomic>
#include <cstddef>
#include <deque>
#include <memory>
#include <set>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

struct objc_selector {
    std::string name;
};

struct objc_object {
    objc_class* isa;
};

struct objc_ivar {
    std::string name;
    std::string type;
    std::ptrdiff_t offset = 0;
    std::size_t size = 0;
    // C++ payload ivars (sim::class_def): constructed when the instance is allocated and destroyed
    // when it is deallocated, like the .cxx_construct/.cxx_destruct of an Objective-C++ class.
    void (*construct)(void*) = nullptr;
    void (*destroy)(void*) = nullptr;
    const void* payload_type = nullptr;
};

namespace vmrt::objc::sim::detail {

struct method_record {
    objc_selector* sel = nullptr;
    IMP imp = nullptr;
    std::string types;
    objc_class* owner = nullptr;    ///< the class (or metaclass) the method was added to
    std::shared_ptr<void> context;  ///< the C++ callable behind a sim::class_def method
};

/// What every instance starts with.
struct instance_header : objc_object {
    std::atomic<long> retain_count;
};

inline constexpr std::size_t instance_alignment = 16;

}  // namespace vmrt::objc::sim::detail

struct objc_class : objc_object {
    std::string name;
    objc_class* superclass = nullptr;
    bool is_meta = false;
    bool registered = false;
    bool disposed = false;
    std::size_t instance_size = sizeof(vmrt::objc::sim::detail::instance_header);
    std::vector<std::unique_ptr<objc_ivar>> ivars;  ///< this class's own ivars, in offset order
    objc_ivar* payload = nullptr;                   ///< the class_def payload ivar, if any
    std::unordered_map<objc_selector*, vmrt::objc::sim::detail::method_record*> methods;
    std::vector<objc_object*> protocols;
    std::atomic<long> live{0};     ///< instances of exactly this class now alive
    std::atomic<long> created{0};  ///< instances of exactly this class ever allocated
};

namespace vmrt::objc::sim::detail {

/// A protocol object (objc_getProtocol): immortal, isa = the "Protocol" class.
struct protocol_object : objc_object {
    std::string name;
};

/// Everything the runtime knows. Never destroyed: objects may be released during static
/// destruction and thread exit, after any destructor of a static registry would have run.
struct registry {
    std::shared_mutex mutex;  ///< guards every field below and every objc_class's mutable fields
    std::unordered_map<std::string, objc_class*> classes;  ///< by name: registered, or allocated and pending
    std::vector<objc_class*> disposed;  ///< objc_disposeClassPair'd: kept, so stale pointers stay valid
    std::unordered_map<std::string, protocol_object*> protocols;
    std::deque<method_record> methods;  ///< stable addresses; replaced methods stay alive
    std::multiset<std::string> hidden_classes;
    std::set<std::pair<objc_class*, objc_selector*>> hidden_methods;

    std::mutex selector_mutex;
    std::unordered_map<std::string, std::unique_ptr<objc_selector>> selectors;
};

registry& reg();

/// Installs NSObject, the block and protocol classes and the simulated Foundation once per process.
void bootstrap();

/// The simulated block class for a block's isa (_NSConcreteStackBlock...), or nullptr.
objc_class* block_class_for(const objc_class* isa) noexcept;

/// The class of any object, blocks included (their isa points into _NSConcrete*Block).
objc_class* class_of(objc_object* obj) noexcept;
/// The method `sel` of `cls` or its superclasses, honouring hidden methods. Caller holds reg().mutex.
const method_record* find_method_locked(objc_class* cls, objc_selector* sel) noexcept;
const method_record* find_method(objc_class* cls, objc_selector* sel) noexcept;

/// Adds (or, with replace, replaces) a method of `cls`; returns false if it has one and !replace.
bool add_method(objc_class* cls, objc_selector* sel, IMP imp, std::string types,
                std::shared_ptr<void> context, bool replace);
/// Creates an unregistered class pair; nullptr if the name is taken or the superclass unusable.
objc_class* allocate_class_pair(objc_class* superclass, const std::string& name);
/// Adds an ivar to an unregistered class; nullptr if not allowed.
objc_ivar* add_ivar(objc_class* cls, const std::string& name, std::size_t size, std::size_t alignment,
                    std::string type);
void register_class_pair(objc_class* cls);
/// The class named `name` whether hidden or not, registered only.
objc_class* class_named(const std::string& name) noexcept;

/// alloc: zeroed instance, retain count 1, payload ivars constructed root to leaf.
objc_object* create_instance(objc_class* cls);
/// The end of -[NSObject dealloc]: payloads destroyed leaf to root, memory freed.
void dispose_instance(objc_object* obj) noexcept;

void retain_instance(objc_object* obj) noexcept;
void release_instance(objc_object* obj) noexcept;
/// Adds `obj` to the current thread's innermost autorelease pool.
objc_object* autorelease(objc_object* obj) noexcept;

/// The Foundation installers (one per source file), called by bootstrap() in dependency order.
void install_nsobject();
void install_block_classes();
void install_strings();
void install_collections();
void install_values();
void install_errors();
void install_file_handles();

/// Reports a fatal misuse the way Apple's runtime does (an uncaught NSException): prints
/// "*** <what>" to stderr and aborts.
[[noreturn]] void fatal(const std::string& what) noexcept;

}  // namespace vmrt::objc::sim::detail
