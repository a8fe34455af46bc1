// The simulated Objective-C runtime itself (tests/sim/objc): that it behaves like Apple's where the
// vmrt::objc layer and the simulated frameworks depend on it — class pairs made at run time, ivars,
// super sends, metaclasses, payloads per class level, thread-safe reference counting, the Block
// runtime's reference counting, autorelease pools, unrecognized selectors, hidden methods.
#include "hv/apple_vz/objc/block.hpp"
#include "hv/apple_vz/objc/handle.hpp"
#include "hv/apple_vz/objc/message.hpp"
#include "sim/objc/sim.hpp"

#include <boost/test/unit_test.hpp>

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace objc = vmrt::objc;
namespace sim = vmrt::objc::sim;
using objc::BOOL;
using objc::Class;
using objc::id;
using objc::NSInteger;
using objc::sel;
using objc::send;
using objc::strong;

std::vector<std::string>& lifecycle() {
    static std::vector<std::string> events;
    return events;
}

struct base_payload {
    NSInteger value = 0;
    base_payload() { lifecycle().push_back("base+"); }
    ~base_payload() { lifecycle().push_back("base-"); }
};

struct derived_payload {
    std::string label = "fresh";
    derived_payload() { lifecycle().push_back("derived+"); }
    ~derived_payload() { lifecycle().push_back("derived-"); }
};

Class base_class() {
    static const Class c =
        sim::class_def<base_payload>("VmrtSimBase")
            .method("setValue:", [](sim::self_t<base_payload> self, NSInteger v) { self->value = v; })
            .method("value", [](sim::self_t<base_payload> self) -> NSInteger { return self->value; })
            .method("describe", [](sim::self_t<base_payload>) -> NSInteger { return 1; })
            .done();
    return c;
}

Class derived_class() {
    base_class();
    static const Class c =
        sim::class_def<derived_payload>("VmrtSimDerived", "VmrtSimBase")
            .method("label",
                    [](sim::self_t<derived_payload> self) -> const char* { return self->label.c_str(); })
            .method("describe",
                    [](sim::self_t<derived_payload> self) -> NSInteger {
                        // [super describe] + 10
                        return objc::send_super<NSInteger>(self, base_class(), sel("describe")) + 10;
                    })
            .done();
    return c;
}

NSInteger counter_get(id self, objc::SEL) {
    Class cls = object_getClass(self);
    auto* p = reinterpret_cast<char*>(self) + ivar_getOffset(class_getInstanceVariable(cls, "count"));
    return *reinterpret_cast<int*>(p);
}

void counter_bump(id self, objc::SEL) {
    Class cls = object_getClass(self);
    auto* p = reinterpret_cast<char*>(self) + ivar_getOffset(class_getInstanceVariable(cls, "count"));
    ++*reinterpret_cast<int*>(p);
}

NSInteger sub_get(id self, objc::SEL cmd) {
    return objc::send_super<NSInteger>(self, class_getSuperclass(object_getClass(self)), cmd) * 100;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(objc_sim_test)

BOOST_AUTO_TEST_CASE(an_unrecognized_selector_is_reported_as_on_a_mac) {
    strong obj = objc::alloc_init(objc::cls("NSObject"));
    BOOST_TEST(sim::find_method(obj.get(), sel("noSuchMethod:")) == nullptr);
    BOOST_TEST(sim::find_method(obj.get(), sel("init")) != nullptr);
    std::string text = sim::unrecognized_selector_message(obj.get(), sel("noSuchMethod:"));
    BOOST_TEST(text.rfind("-[NSObject noSuchMethod:]: unrecognized selector sent to instance 0x", 0) == 0);
    std::string for_class =
        sim::unrecognized_selector_message(objc::as_id(objc::cls("NSObject")), sel("noSuchMethod"));
    BOOST_TEST(for_class.rfind("+[NSObject noSuchMethod]: unrecognized selector sent to class 0x", 0) == 0);
    // Apple answers _objc_msgForward, never nil, for an unimplemented selector of a class.
    BOOST_TEST(class_getMethodImplementation(objc::cls("NSObject"), sel("noSuchMethod:")) != nullptr);
    BOOST_TEST(class_getMethodImplementation(nullptr, sel("init")) == nullptr);
}

BOOST_AUTO_TEST_CASE(class_pairs_made_at_run_time_follow_apples_rules) {
    Class root = objc::cls("NSObject");
    Class counter = objc_allocateClassPair(root, "VmrtSimCounter", 0);
    BOOST_REQUIRE(counter);
    BOOST_TEST(objc_allocateClassPair(root, "VmrtSimCounter", 0) == nullptr);      // the name is taken
    BOOST_TEST(objc_getClass("VmrtSimCounter") == nullptr);                        // not registered yet
    BOOST_TEST(objc_allocateClassPair(counter, "VmrtSimTooEarly", 0) == nullptr);  // unfinished superclass
    BOOST_TEST(class_addIvar(counter, "flag", 1, 0, "c"));
    BOOST_TEST(class_addIvar(counter, "count", sizeof(int), 2, "i"));
    BOOST_TEST(class_addIvar(counter, "pointer", sizeof(void*), 3, "^v"));
    BOOST_TEST(!class_addIvar(counter, "count", sizeof(int), 2, "i"));  // duplicate name
    const auto count_offset = ivar_getOffset(class_getInstanceVariable(counter, "count"));
    const auto pointer_offset = ivar_getOffset(class_getInstanceVariable(counter, "pointer"));
    BOOST_TEST(count_offset % 4 == 0);
    BOOST_TEST(pointer_offset % 8 == 0);
    BOOST_TEST(pointer_offset > count_offset);
    BOOST_TEST(class_getInstanceVariable(counter, "missing") == nullptr);

    const std::string get_types = objc::method_type_encoding<NSInteger>();
    BOOST_TEST(get_types == "q16@0:8");
    BOOST_TEST(
        class_addMethod(counter, sel("count"), reinterpret_cast<objc::IMP>(&counter_get), get_types.c_str()));
    BOOST_TEST(!class_addMethod(counter, sel("count"), reinterpret_cast<objc::IMP>(&counter_get),
                                get_types.c_str()));
    objc_registerClassPair(counter);
    BOOST_TEST(objc_getClass("VmrtSimCounter") == counter);
    BOOST_TEST(!class_addIvar(counter, "late", 4, 2, "i"));  // ivars are fixed once registered
    BOOST_TEST(class_addMethod(counter, sel("bump"), reinterpret_cast<objc::IMP>(&counter_bump), "v16@0:8"));

    // A subclass overrides -count and calls [super count].
    Class sub = objc_allocateClassPair(counter, "VmrtSimCounterTimes100", 0);
    BOOST_REQUIRE(sub);
    BOOST_TEST(class_addMethod(sub, sel("count"), reinterpret_cast<objc::IMP>(&sub_get), get_types.c_str()));
    objc_registerClassPair(sub);
    BOOST_TEST(class_getSuperclass(sub) == counter);
    {
        strong c = objc::alloc_init(sub);
        BOOST_TEST(send<NSInteger>(c, sel("count")) == 0);  // ivars start zeroed
        send<void>(c, sel("bump"));
        send<void>(c, sel("bump"));
        BOOST_TEST(send<NSInteger>(c, sel("count")) == 200);
        BOOST_TEST(sim::live_instances("VmrtSimCounterTimes100") == 1);
    }
    BOOST_TEST(sim::live_instances("VmrtSimCounterTimes100") == 0);

    // A class pair that was never registered can be disposed of, which frees its name.
    Class scratch = objc_allocateClassPair(root, "VmrtSimScratch", 0);
    BOOST_REQUIRE(scratch);
    objc_disposeClassPair(scratch);
    Class again = objc_allocateClassPair(root, "VmrtSimScratch", 0);
    BOOST_TEST(again != nullptr);
    objc_disposeClassPair(again);
}

BOOST_AUTO_TEST_CASE(classes_are_objects_with_metaclasses) {
    Class root = objc::cls("NSObject");
    Class meta = object_getClass(objc::as_id(root));
    BOOST_TEST(meta != root);
    BOOST_TEST(std::string(class_getName(meta)) == "NSObject");
    BOOST_TEST(class_getSuperclass(meta) == root);  // the root metaclass inherits from the root class
    Class string_meta = object_getClass(objc::as_id(objc::cls("NSString")));
    BOOST_TEST(class_getSuperclass(string_meta) == meta);
    // Class objects answer the root class's instance methods and ignore retain/release.
    BOOST_TEST(objc::responds_to(root, sel("alloc")));
    BOOST_TEST(!objc::responds_to(root, sel("retainCount:")));
    BOOST_TEST(send<id>(root, sel("retain")) == objc::as_id(root));
    send<void>(root, sel("release"));
    strong obj = objc::alloc_init(derived_class());
    BOOST_TEST(send<Class>(obj, sel("class")) == derived_class());
    BOOST_TEST((send<BOOL, Class>(obj, sel("isKindOfClass:"), base_class())));
    BOOST_TEST((!send<BOOL, Class>(obj, sel("isMemberOfClass:"), base_class())));
}

BOOST_AUTO_TEST_CASE(each_class_level_owns_its_payload) {
    Class derived = derived_class();
    lifecycle().clear();
    {
        strong obj = objc::alloc_init(derived);
        BOOST_TEST(lifecycle() == (std::vector<std::string>{"base+", "derived+"}),
                   boost::test_tools::per_element());
        send<void, NSInteger>(obj, sel("setValue:"), 41);  // inherited: sees the base payload
        BOOST_TEST(send<NSInteger>(obj, sel("value")) == 41);
        BOOST_TEST(sim::payload<base_payload>(obj.get())->value == 41);
        BOOST_TEST(std::string(send<const char*>(obj, sel("label"))) == "fresh");
        BOOST_TEST(send<NSInteger>(obj, sel("describe")) == 11);  // override + [super describe]
        strong base_only = objc::alloc_init(base_class());
        BOOST_TEST(sim::payload<derived_payload>(base_only.get()) == nullptr);
        BOOST_TEST(send<NSInteger>(base_only, sel("describe")) == 1);
    }
    BOOST_TEST(lifecycle() ==
                   (std::vector<std::string>{"base+", "derived+", "base+", "base-", "derived-", "base-"}),
               boost::test_tools::per_element());
    BOOST_TEST(sim::live_instances("VmrtSimDerived") == 0);
    BOOST_TEST(sim::created_instances("VmrtSimDerived") >= 1);
}

BOOST_AUTO_TEST_CASE(a_hidden_method_falls_back_to_the_superclass) {
    strong obj = objc::alloc_init(derived_class());
    {
        sim::scoped_hidden_method older("VmrtSimDerived", "describe");
        BOOST_TEST(send<NSInteger>(obj, sel("describe")) == 1);
    }
    BOOST_TEST(send<NSInteger>(obj, sel("describe")) == 11);
    {
        sim::scoped_hidden_method older("VmrtSimBase", "+new");
        BOOST_TEST(objc::responds_to(base_class(), sel("new")));  // NSObject's +new is still there
    }
}

BOOST_AUTO_TEST_CASE(retain_and_release_are_thread_safe) {
    strong obj = objc::alloc_init(base_class());
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([raw = obj.get()] {
            for (int i = 0; i < 20000; ++i) {
                send<id>(raw, sel("retain"));
                send<void>(raw, sel("release"));
            }
        });
    for (auto& t : threads) t.join();
    BOOST_TEST(sim::retain_count(obj.get()) == 1);
    obj.reset();
    BOOST_TEST(sim::live_instances("VmrtSimBase") == 0);
}

BOOST_AUTO_TEST_CASE(heap_blocks_count_references_across_threads) {
    std::atomic<int> disposed{0};
    struct on_dispose {
        std::atomic<int>* count;
        on_dispose(std::atomic<int>* c) : count(c) {}
        on_dispose(const on_dispose&) = delete;
        ~on_dispose() { ++*count; }
    };
    auto marker = std::make_shared<on_dispose>(&disposed);
    objc::block<void()> blk = objc::make_block<void()>([marker] {});
    marker.reset();
    BOOST_TEST(_Block_copy(nullptr) == nullptr);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([raw = blk.get()] {
            for (int i = 0; i < 5000; ++i) _Block_release(_Block_copy(raw));
        });
    for (auto& t : threads) t.join();
    BOOST_TEST(disposed == 0);
    BOOST_TEST(sim::live_heap_blocks() == 1);
    blk = {};
    BOOST_TEST(disposed == 1);
    BOOST_TEST(sim::live_heap_blocks() == 0);
}

BOOST_AUTO_TEST_CASE(pools_drain_nested_pools_and_late_autoreleases) {
    const long strings = sim::live_instances("NSString");
    const std::size_t pending = sim::pending_autoreleases();
    void* outer = objc_autoreleasePoolPush();
    send<id, const char*>(objc::cls("NSString"), sel("stringWithUTF8String:"), "a");
    objc_autoreleasePoolPush();  // never popped itself: the outer pop takes it along
    send<id, const char*>(objc::cls("NSString"), sel("stringWithUTF8String:"), "b");
    // -description autoreleases a fresh string each time.
    strong obj = objc::alloc_init(objc::cls("NSObject"));
    send<id>(obj, sel("description"));
    BOOST_TEST(sim::live_instances("NSString") == strings + 3);
    objc_autoreleasePoolPop(outer);
    BOOST_TEST(sim::live_instances("NSString") == strings);
    BOOST_TEST(sim::pending_autoreleases() == pending);
}

BOOST_AUTO_TEST_CASE(a_thread_without_a_pool_releases_its_autoreleased_objects_when_it_ends) {
    const long before = sim::autoreleased_without_pool();
    const long strings = sim::live_instances("NSString");
    std::thread([] {
        send<id, const char*>(objc::cls("NSString"), sel("stringWithUTF8String:"), "leaked until exit");
    }).join();
    BOOST_TEST(sim::autoreleased_without_pool() == before + 1);
    BOOST_TEST(sim::live_instances("NSString") == strings);
}

BOOST_AUTO_TEST_SUITE_END()
