// The vmrt::objc layer (lib/hv/apple_vz/objc) running against the simulated Objective-C runtime
// (tests/sim/objc): typed sends through the objc_msgSend trampoline, selector and class look-ups,
// ownership, blocks, Foundation values, NSError mapping, runtime-created delegate classes and
// autorelease pools. Every test also checks that the objects it made are gone afterwards.
#include "hv/apple_vz/objc/block.hpp"
#include "hv/apple_vz/objc/class_builder.hpp"
#include "hv/apple_vz/objc/foundation.hpp"
#include "hv/apple_vz/objc/handle.hpp"
#include "hv/apple_vz/objc/message.hpp"
#include "hv/apple_vz/objc/ns_error.hpp"
#include "sim/objc/sim.hpp"

#include <boost/system/system_category.hpp>
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <iterator>
#include <limits>
#include <mutex>
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
using objc::NSUInteger;
using objc::SEL;
using objc::sel;
using objc::send;
using objc::strong;

// --- a class whose methods exercise the calling convention -------------------------------------

using u64 = std::uint64_t;

Class calculator_class() {
    static const Class defined =
        sim::class_def<>("VmrtTestCalculator")
            .method("addInt:toLong:", [](sim::self_t<>, int a, long b) -> long { return a + b; })
            .method("scale:by:", [](sim::self_t<>, double x, float f) -> double { return x * f; })
            .method("half:", [](sim::self_t<>, float f) -> float { return f / 2; })
            .method("negate:", [](sim::self_t<>, BOOL b) -> BOOL { return b ? objc::NO : objc::YES; })
            .method("echo:", [](sim::self_t<>, void* p) -> void* { return p; })
            .method("identity64:", [](sim::self_t<>, u64 v) -> u64 { return v; })
            .method("identityInt:", [](sim::self_t<>, int v) -> int { return v; })
            // Eight integer arguments after self and _cmd: the last four travel on the stack.
            .method("digits:b:c:d:e:f:g:h:",
                    [](sim::self_t<>, u64 a, u64 b, u64 c, u64 d, u64 e, u64 f, u64 g, u64 h) -> u64 {
                        return ((((((a * 10 + b) * 10 + c) * 10 + d) * 10 + e) * 10 + f) * 10 + g) * 10 + h;
                    })
            // Ten doubles: eight in xmm0-xmm7, two on the stack.
            .method("weigh:b:c:d:e:f:g:h:i:j:",
                    [](sim::self_t<>, double a, double b, double c, double d, double e, double f, double g,
                       double h, double i, double j) -> double {
                        return a + 2 * b + 4 * c + 8 * d + 16 * e + 32 * f + 64 * g + 128 * h + 256 * i +
                               512 * j;
                    })
            // Floats, doubles, integers and an object interleaved, more of each than registers.
            .method("mix:b:c:d:e:f:g:h:i:j:k:l:m:n:o:p:",
                    [](sim::self_t<> self, float a, int b, double c, u64 d, id e, float f, int g, double h,
                       float i, double j, double k, float l, long m, double n, int o, double p) -> double {
                        if (e != self.obj) return -1;  // the object argument arrived intact
                        return a + b * 1e1 + c * 1e2 + static_cast<double>(d) * 1e3 + f * 1e4 + g * 1e5 +
                               h * 1e6 + i * 1e7 + j * 1e8 + k * 1e9 + l * 1e10 +
                               static_cast<double>(m) * 1e11 + n * 1e12 + o * 1e13 + p * 1e14;
                    })
            .class_method("answer", [](Class) -> NSInteger { return 42; })
            .done();
    return defined;
}

// --- a "framework" that takes completion handlers, like -[VZVirtualMachine startWithCompletionHandler:]

struct framework_payload {
    void* handler = nullptr;  // a copy of the block it was given (_Block_copy)
    std::thread worker;
    ~framework_payload() {
        if (worker.joinable()) worker.join();
        if (handler) _Block_release(handler);
    }
};

Class framework_class() {
    using self_t = sim::self_t<framework_payload>;
    static const Class c =
        sim::class_def<framework_payload>("VmrtTestCompletionFramework")
            .method("startWithCompletionHandler:",
                    [](self_t self, id handler) { self->handler = _Block_copy(handler); })
            // Calls the handler once on a thread of its own and lets it go there.
            .method("finishOnAnotherThreadWithError:",
                    [](self_t self, id error) {
                        void* handler = std::exchange(self->handler, nullptr);
                        self->worker = std::thread([handler, error] {
                            objc::invoke_block<void, id>(static_cast<id>(handler), error);
                            _Block_release(handler);
                        });
                    })
            .method("waitForWorker",
                    [](self_t self) {
                        if (self->worker.joinable()) self->worker.join();
                    })
            // Gives the handler up without calling it (an operation abandoned).
            .method("dropHandler", [](self_t self) { _Block_release(std::exchange(self->handler, nullptr)); })
            .done();
    return c;
}

/// Counts live copies and calls of a callable captured by a block.
struct probe {
    std::atomic<int> live{0};
    std::atomic<int> calls{0};
    std::atomic<bool> destroyed_twice{false};
    std::mutex m;
    std::thread::id caller;
    id argument = nullptr;
};

struct probed_callable {
    std::shared_ptr<probe> p;
    bool alive = true;
    explicit probed_callable(std::shared_ptr<probe> target) : p(std::move(target)) { ++p->live; }
    probed_callable(const probed_callable& o) : p(o.p) { ++p->live; }
    probed_callable(probed_callable&& o) noexcept : p(o.p) { ++p->live; }
    probed_callable& operator=(const probed_callable&) = delete;
    ~probed_callable() {
        if (!alive) p->destroyed_twice = true;
        alive = false;
        --p->live;
    }
    void operator()(id error) const {
        std::lock_guard lock(p->m);
        ++p->calls;
        p->caller = std::this_thread::get_id();
        p->argument = error;
    }
};

// --- a delegate class built at run time, and a "VM" that calls its delegate ----------------------

struct delegate_record {
    std::atomic<int> guest_stops{0};
    std::atomic<int> state_destructions{0};
    std::mutex m;
    std::string stop_error;
    std::thread::id caller;
    id vm = nullptr;
    bool accept = false;
};

struct delegate_state {
    std::shared_ptr<delegate_record> record;
    explicit delegate_state(std::shared_ptr<delegate_record> r) : record(std::move(r)) {}
    delegate_state(delegate_state&&) noexcept = default;
    ~delegate_state() {
        if (record) ++record->state_destructions;  // a moved-from state holds nothing
    }
};

void guest_did_stop(delegate_state& s, id vm) {
    std::lock_guard lock(s.record->m);
    s.record->vm = vm;
    s.record->caller = std::this_thread::get_id();
    ++s.record->guest_stops;
}

void did_stop_with_error(delegate_state& s, id, id error) {
    std::lock_guard lock(s.record->m);
    s.record->stop_error = objc::to_error(error, "the VM").diag().message;
}

const objc::cpp_class<delegate_state>& delegate_class() {
    static const objc::cpp_class<delegate_state> c =
        objc::cpp_class_builder<delegate_state>("VmrtTestVirtualMachineDelegate")
            .method<&guest_did_stop>("guestDidStopVirtualMachine:")
            .method<&did_stop_with_error>("virtualMachine:didStopWithError:")
            .method<[](delegate_state& s, id, id, id) -> BOOL {
                return s.record->accept ? objc::YES : objc::NO;
            }>("listener:shouldAcceptNewConnection:fromSocketDevice:")
            .finish();
    return c;
}

struct vm_payload {
    id delegate = nullptr;  // weak, like VZVirtualMachine.delegate: not retained
};

Class test_vm_class() {
    using self_t = sim::self_t<vm_payload>;
    static const Class c =
        sim::class_def<vm_payload>("VmrtTestVirtualMachine")
            .method("setDelegate:", [](self_t self, id delegate) { self->delegate = delegate; })
            // The guest powered off: tell the delegate, from the VM's own thread, if it listens.
            .method("simulateGuestStop",
                    [](self_t self) {
                        std::thread([self] {
                            if (objc::responds_to(self->delegate, sel("guestDidStopVirtualMachine:")))
                                send<void, id>(self->delegate, sel("guestDidStopVirtualMachine:"), self.obj);
                        }).join();
                    })
            .method("simulateStopWithError:",
                    [](self_t self, id error) {
                        send<void, id, id>(self->delegate, sel("virtualMachine:didStopWithError:"), self.obj,
                                           error);
                    })
            .method("offerConnection",
                    [](self_t self) -> BOOL {
                        return send<BOOL, id, id, id>(
                            self->delegate, sel("listener:shouldAcceptNewConnection:fromSocketDevice:"),
                            self.obj, nullptr, self.obj);
                    })
            .done();
    return c;
}

bool fd_is_open(int fd) { return ::fcntl(fd, F_GETFD) != -1 || errno != EBADF; }

/// Live instances of each simulated Foundation class, to compare before and after a test (other
/// suites in the same process may keep objects of their own).
class foundation_census {
public:
    foundation_census() {
        for (const char* name : names) counts_.push_back(sim::live_instances(name));
    }
    void expect_unchanged() const {
        for (std::size_t i = 0; i < std::size(names); ++i)
            BOOST_TEST(sim::live_instances(names[i]) == counts_[i], names[i]);
    }

private:
    static constexpr const char* names[] = {"NSString", "NSURL",    "NSArray", "NSDictionary",
                                            "NSData",   "NSNumber", "NSError", "NSFileHandle"};
    std::vector<long> counts_;
};

}  // namespace

BOOST_AUTO_TEST_SUITE(objc_layer_test)

BOOST_AUTO_TEST_CASE(typed_sends_pass_every_argument_kind_through_the_trampoline) {
    const long live_before = sim::live_instances_total();
    {
        strong calc = objc::alloc_init(calculator_class());
        BOOST_REQUIRE(calc);
        BOOST_TEST((send<long, int, long>(calc, sel("addInt:toLong:"), -5, 1L << 40) == (1L << 40) - 5));
        BOOST_TEST((send<double, double, float>(calc, sel("scale:by:"), 1.5, 4.0f) == 6.0));
        BOOST_TEST((send<float, float>(calc, sel("half:"), 3.0f) == 1.5f));
        BOOST_TEST((send<BOOL, BOOL>(calc, sel("negate:"), objc::YES) == objc::NO));
        BOOST_TEST((send<BOOL, BOOL>(calc, sel("negate:"), objc::NO) == objc::YES));
        int local = 0;
        BOOST_TEST((send<void*, void*>(calc, sel("echo:"), &local) == &local));
        const u64 big = std::numeric_limits<u64>::max() - 12345;
        BOOST_TEST((send<u64, u64>(calc, sel("identity64:"), big) == big));
        BOOST_TEST((send<int, int>(calc, sel("identityInt:"), -7) == -7));
        BOOST_TEST((send<int, int>(calc, sel("identityInt:"), std::numeric_limits<int>::min()) ==
                    std::numeric_limits<int>::min()));
        BOOST_TEST((send<u64, u64, u64, u64, u64, u64, u64, u64, u64>(calc, sel("digits:b:c:d:e:f:g:h:"), 1,
                                                                      2, 3, 4, 5, 6, 7, 8) == 12345678u));
        BOOST_TEST(
            (send<double, double, double, double, double, double, double, double, double, double, double>(
                 calc, sel("weigh:b:c:d:e:f:g:h:i:j:"), 1, 1, 1, 1, 1, 1, 1, 1, 1, 1) == 1023.0));
        BOOST_TEST(
            (send<double, double, double, double, double, double, double, double, double, double, double>(
                 calc, sel("weigh:b:c:d:e:f:g:h:i:j:"), 0, 0, 0, 0, 0, 0, 0, 0, 1, 0) == 256.0));
        const double mixed =
            send<double, float, int, double, u64, id, float, int, double, float, double, double, float, long,
                 double, int, double>(calc, sel("mix:b:c:d:e:f:g:h:i:j:k:l:m:n:o:p:"), 1.0f, 2, 3.0, 4,
                                      calc.get(), 5.0f, 6, 7.0, 8.0f, 9.0, 1.0, 2.0f, 3L, 4.0, 5, 6.0);
        BOOST_TEST(mixed == 1 + 2e1 + 3e2 + 4e3 + 5e4 + 6e5 + 7e6 + 8e7 + 9e8 + 1e9 + 2e10 + 3e11 + 4e12 +
                                5e13 + 6e14);
        // Class objects are receivers too.
        BOOST_TEST(send<NSInteger>(calculator_class(), sel("answer")) == 42);
    }
    BOOST_TEST(sim::live_instances("VmrtTestCalculator") == 0);
    BOOST_TEST(sim::live_instances_total() == live_before);
}

BOOST_AUTO_TEST_CASE(a_nil_receiver_answers_zero_of_every_type) {
    id nil = nullptr;
    BOOST_TEST((send<long, int, long>(nil, sel("addInt:toLong:"), 1, 2) == 0));
    BOOST_TEST((send<double, double, float>(nil, sel("scale:by:"), 1.5, 2.0f) == 0.0));
    BOOST_TEST((send<float, float>(nil, sel("half:"), 3.0f) == 0.0f));
    BOOST_TEST((send<BOOL, BOOL>(nil, sel("negate:"), objc::NO) == objc::NO));
    BOOST_TEST(send<id>(nil, sel("anything")) == nullptr);
    BOOST_TEST(!objc::responds_to(nil, sel("init")));
}

BOOST_AUTO_TEST_CASE(selectors_are_interned_and_cached) {
    SEL start = sel("startWithCompletionHandler:");
    BOOST_TEST(start == objc::sel<"startWithCompletionHandler:">());
    BOOST_TEST(start == sel_registerName("startWithCompletionHandler:"));
    BOOST_TEST(std::string(sel_getName(start)) == "startWithCompletionHandler:");
    BOOST_TEST(start != sel("stopWithCompletionHandler:"));
}

BOOST_AUTO_TEST_CASE(type_encodings_describe_the_c_types) {
    const std::string b = std::is_same_v<BOOL, bool> ? "B" : "c";
    BOOST_TEST((objc::method_type_encoding<void, id>() == "v24@0:8@16"));
    BOOST_TEST((objc::method_type_encoding<BOOL, SEL>() == b + "24@0:8:16"));
    BOOST_TEST((objc::method_type_encoding<id, const id*, NSUInteger>() == "@32@0:8r^@16Q24"));
    // Integer arguments narrower than int count as int-sized in the offsets (clang's rule).
    BOOST_TEST((objc::method_type_encoding<void, int, BOOL, double>() == "v32@0:8i16" + b + "20d24"));
    BOOST_TEST((objc::method_type_encoding<void*, const char*, const void*, std::uint32_t, Class>() ==
                "^v44@0:8r*16r^v24I32#36"));
    BOOST_TEST(objc::block_type_encoding<void>() == "v8@?0");
}

BOOST_AUTO_TEST_CASE(a_missing_class_is_null_and_availability_follows_the_runtime) {
    BOOST_TEST((objc::cls("NSString") != nullptr));
    BOOST_TEST((objc::cls("NSString") == objc::cls<"NSString">()));
    BOOST_TEST(std::string(class_getName(objc::cls("NSString"))) == "NSString");
    BOOST_TEST((objc::cls("VZNoSuchClassOnAnyMacOS") == nullptr));
    BOOST_TEST(
        (objc::alloc_init(objc::cls("VZNoSuchClassOnAnyMacOS")) == nullptr));  // a nil class makes nothing

    Class calc = calculator_class();
    {
        sim::scoped_hidden_class older_macos("VmrtTestCalculator");
        BOOST_TEST((objc::cls("VmrtTestCalculator") == nullptr));
    }
    BOOST_TEST(objc::cls("VmrtTestCalculator") == calc);

    strong obj = objc::alloc_init(calc);
    BOOST_TEST(objc::responds_to(obj, sel("half:")));
    BOOST_TEST(objc::instances_respond_to(calc, sel("half:")));
    BOOST_TEST(objc::responds_to(calc, sel("answer")));  // a class method, asked of the class
    BOOST_TEST(!objc::responds_to(obj, sel("answer")));  // ...which instances do not have
    BOOST_TEST(!objc::responds_to(obj, sel("saveMachineStateToURL:completionHandler:")));
    {
        sim::scoped_hidden_method older_macos("VmrtTestCalculator", "half:");
        BOOST_TEST(!objc::responds_to(obj, sel("half:")));
        BOOST_TEST(!objc::instances_respond_to(calc, sel("half:")));
    }
    BOOST_TEST(objc::responds_to(obj, sel("half:")));
}

BOOST_AUTO_TEST_CASE(strong_handles_balance_every_retain_with_a_release) {
    Class calc = calculator_class();
    {
        strong a = objc::alloc_init(calc);  // +1 adopted
        id raw = a.get();
        BOOST_TEST(sim::retain_count(raw) == 1);
        {
            strong b = a;  // copy retains
            BOOST_TEST(sim::retain_count(raw) == 2);
            strong c = std::move(b);  // move transfers
            BOOST_TEST(!b);
            BOOST_TEST(sim::retain_count(raw) == 2);
            strong d = strong::retain(raw);  // +0 made owned
            BOOST_TEST(sim::retain_count(raw) == 3);
            d = c;  // assignment: releases nothing of raw's net count (same object)
            BOOST_TEST(sim::retain_count(raw) == 3);
        }
        BOOST_TEST(sim::retain_count(raw) == 1);
        id detached = a.detach();  // the +1 leaves the handle
        BOOST_TEST(!a);
        BOOST_TEST(sim::live_instances("VmrtTestCalculator") == 1);
        strong again = strong::adopt(detached);
        again.reset();
        BOOST_TEST(sim::live_instances("VmrtTestCalculator") == 0);
    }
    BOOST_TEST(sim::live_instances("VmrtTestCalculator") == 0);
}

BOOST_AUTO_TEST_CASE(a_block_has_the_block_abi_layout_and_signature) {
    auto p = std::make_shared<probe>();
    {
        objc::block<void(id)> blk = objc::make_block<void(id)>(probed_callable(p));
        BOOST_TEST(p->live == 1);  // only the copy owned by the heap block is left
        BOOST_TEST(sim::live_heap_blocks() == 1);
        const auto* head = reinterpret_cast<const objc::block_abi::header*>(blk.get());
        BOOST_TEST(head->isa != static_cast<void*>(_NSConcreteStackBlock));  // it was copied to the heap
        BOOST_TEST((head->flags & objc::block_abi::has_copy_dispose) != 0);
        BOOST_TEST((head->flags & objc::block_abi::has_signature) != 0);
        BOOST_TEST(std::string(sim::block_signature(blk.get())) == "v16@?0@8");
        BOOST_TEST(std::string(objc::block_signature<void(id, id)>::get()) == "v24@?0@8@16");
        BOOST_TEST(std::string(objc::block_signature<void(objc::BOOL, double)>::get()) ==
                   (std::is_same_v<objc::BOOL, bool> ? "v20@?0B8d12" : "v20@?0c8d12"));
        // Blocks are objects: -copy of a heap block is another reference to the same block.
        id copy = send<id>(blk, sel("copy"));
        BOOST_TEST(copy == blk.get());
        send<void>(copy, sel("release"));
        blk(blk.get());
        BOOST_TEST(p->calls == 1);
        BOOST_TEST(p->argument == blk.get());
    }
    BOOST_TEST(p->live == 0);
    BOOST_TEST(!p->destroyed_twice);
    BOOST_TEST(sim::live_heap_blocks() == 0);
}

BOOST_AUTO_TEST_CASE(a_completion_handler_runs_on_another_thread_after_its_creator_returned) {
    const foundation_census census;
    auto p = std::make_shared<probe>();
    strong error = sim::make_ns_error("VZErrorDomain", 3, "Invalid virtual machine state.");
    strong framework = objc::alloc_init(framework_class());
    {
        // The creator's scope: the block handle dies at its end; the framework keeps its own copy.
        objc::block<void(id)> done = objc::make_block<void(id)>(probed_callable(p));
        send<void, id>(framework, sel("startWithCompletionHandler:"), done.get());
    }
    BOOST_TEST(p->live == 1);
    BOOST_TEST(p->calls == 0);
    send<void, id>(framework, sel("finishOnAnotherThreadWithError:"), error.get());
    send<void>(framework, sel("waitForWorker"));
    BOOST_TEST(p->calls == 1);
    BOOST_TEST(p->argument == error.get());
    BOOST_TEST((p->caller != std::this_thread::get_id()));
    BOOST_TEST(p->live == 0);  // released by the framework on its thread: destroyed there, once
    BOOST_TEST(!p->destroyed_twice);
    BOOST_TEST(sim::live_heap_blocks() == 0);
    framework.reset();
    error.reset();
    BOOST_TEST(sim::live_instances("VmrtTestCompletionFramework") == 0);
    census.expect_unchanged();
}

BOOST_AUTO_TEST_CASE(a_handler_released_without_a_call_destroys_its_callable_once) {
    auto p = std::make_shared<probe>();
    strong framework = objc::alloc_init(framework_class());
    {
        objc::block<void(id)> done = objc::make_block<void(id)>(probed_callable(p));
        send<void, id>(framework, sel("startWithCompletionHandler:"), done.get());
    }
    send<void>(framework, sel("dropHandler"));
    BOOST_TEST(p->calls == 0);
    BOOST_TEST(p->live == 0);
    BOOST_TEST(!p->destroyed_twice);
    BOOST_TEST(sim::live_heap_blocks() == 0);
}

namespace {
std::atomic<int> global_block_calls{0};
void count_global_call(id) { ++global_block_calls; }
}  // namespace

BOOST_AUTO_TEST_CASE(a_global_block_is_never_copied_or_freed) {
    objc::block<void(id)> g = objc::global_block<void(id), &count_global_call>();
    BOOST_TEST(_Block_copy(g.get()) == static_cast<void*>(g.get()));
    _Block_release(g.get());
    objc::block<void(id)> h = g;  // copying the handle copies the block: still the same literal
    BOOST_TEST(h.get() == g.get());
    h(nullptr);
    g(nullptr);
    BOOST_TEST(global_block_calls == 2);
    BOOST_TEST(sim::live_heap_blocks() == 0);
    BOOST_TEST(std::string(sim::block_signature(g.get())) == "v16@?0@8");
}

BOOST_AUTO_TEST_CASE(strings_round_trip_as_utf8) {
    const foundation_census census;
    for (const std::string& text : {std::string("VZVirtualMachine"), std::string(""),
                                    std::string("gr\xC3\xBC\xC3\x9F"
                                                "e \xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x9A\x80"),
                                    std::string("/Users/\xC3\xA9t\xC3\xA9/VMs/disk 1.img")}) {
        strong s = objc::ns_string(text);
        BOOST_TEST(objc::to_string(s.get()) == text);
    }
    // -length counts UTF-16 units: a rocket is a surrogate pair.
    BOOST_TEST(send<NSUInteger>(objc::ns_string("\xF0\x9F\x9A\x80"), sel("length")) == 2u);
    BOOST_TEST(objc::to_string(nullptr).empty());
    try {
        objc::ns_string("bad \xC3\x28 utf-8");
        BOOST_FAIL("invalid UTF-8 became an NSString");
    } catch (const vmrt::error& e) {
        BOOST_TEST(e.code() == vmrt::make_error_code(vmrt::errc::unsupported));
        BOOST_TEST(e.diag().message.find("\\xc3(") != std::string::npos);
    }
    census.expect_unchanged();
}

BOOST_AUTO_TEST_CASE(file_urls_arrays_dictionaries_data_and_numbers_round_trip) {
    const foundation_census census;
    {
        strong url = objc::ns_file_url("/var/vm/disk \xC3\xA9.img");
        BOOST_TEST(objc::url_path(url.get()) == "/var/vm/disk \xC3\xA9.img");
        BOOST_TEST(send<BOOL>(url, sel("isFileURL")));
        strong share = objc::ns_directory_url("/Users/me/src/");
        BOOST_TEST(objc::url_path(share.get()) == "/Users/me/src");
        {
            objc::autorelease_pool pool;  // -absoluteString's result is autoreleased
            BOOST_TEST(objc::to_string(send<id>(share, sel("absoluteString"))) == "file:///Users/me/src/");
            BOOST_TEST(objc::to_string(send<id>(url, sel("absoluteString"))) ==
                       "file:///var/vm/disk%20%C3%A9.img");
        }
        char cwd[4096];
        BOOST_REQUIRE(::getcwd(cwd, sizeof cwd));
        BOOST_TEST(objc::url_path(objc::ns_file_url("relative/efi.vars").get()) ==
                   std::string(cwd) + "/relative/efi.vars");

        strong a = objc::ns_string("a");
        strong b = objc::ns_string("b");
        strong array = objc::ns_array({a, b});
        BOOST_TEST(sim::retain_count(a.get()) == 2);  // the array holds its items
        std::vector<strong> items = objc::array_items(array.get());
        BOOST_REQUIRE(items.size() == 2u);
        BOOST_TEST(objc::to_string(items[0].get()) == "a");
        BOOST_TEST(objc::to_string(items[1].get()) == "b");
        BOOST_TEST(objc::array_items(objc::ns_array(std::span<const id>{}).get()).empty());

        strong one = objc::ns_number_int64(1);
        strong dict = objc::ns_dictionary({{"first", a.get()}, {"count", one.get()}});
        BOOST_TEST(send<NSUInteger>(dict, sel("count")) == 2u);
        BOOST_TEST((objc::dictionary_value(dict.get(), "first") == a));
        BOOST_TEST(objc::number_int64(objc::dictionary_value(dict.get(), "count").get()) == 1);
        BOOST_TEST(!objc::dictionary_value(dict.get(), "missing"));

        const std::vector<std::uint8_t> bytes{0x00, 0xff, 0x10, 0x00, 0x7f};
        BOOST_TEST(objc::data_bytes(objc::ns_data(bytes).get()) == bytes);
        BOOST_TEST(objc::data_bytes(objc::ns_data({}).get()).empty());

        BOOST_TEST(objc::number_bool(objc::ns_number_bool(true).get()));
        BOOST_TEST(!objc::number_bool(objc::ns_number_bool(false).get()));
        BOOST_TEST(
            objc::number_int64(objc::ns_number_int64(std::numeric_limits<std::int64_t>::min()).get()) ==
            std::numeric_limits<std::int64_t>::min());
        BOOST_TEST(
            objc::number_uint64(objc::ns_number_uint64(std::numeric_limits<std::uint64_t>::max()).get()) ==
            std::numeric_limits<std::uint64_t>::max());
        BOOST_TEST(objc::number_double(objc::ns_number_double(-0.25).get()) == -0.25);
        BOOST_TEST(objc::is_equal(objc::ns_string("x").get(), objc::ns_string("x").get()));
        BOOST_TEST(!objc::is_equal(objc::ns_string("x").get(), nullptr));
    }
    census.expect_unchanged();
}

BOOST_AUTO_TEST_CASE(ns_errors_map_to_vmrt_errors_with_their_words) {
    const foundation_census census;
    using vmrt::errc;
    using vmrt::make_error_code;
    {
        strong posix = sim::make_ns_error("NSPOSIXErrorDomain", EACCES, "Permission denied");
        strong vz =
            sim::make_ns_error("VZErrorDomain", 2, "The storage device attachment is invalid.", posix.get());
        vmrt::error e = objc::to_error(vz.get(), "start the VM");
        BOOST_TEST(e.code() == make_error_code(errc::invalid_spec));
        BOOST_TEST(e.diag().message ==
                   "start the VM: VZErrorDomain 2 The storage device attachment is invalid.; underlying: "
                   "NSPOSIXErrorDomain 13 Permission denied");

        vmrt::error p = objc::to_error(posix.get(), "open the disk");
        BOOST_TEST(p.code() == vmrt::error_code(EACCES, boost::system::system_category()));
        BOOST_TEST((p.code() == boost::system::errc::permission_denied));

        // Without a description, Foundation composes one from the domain and code.
        strong bare = sim::make_ns_error("VZErrorDomain", 10, "");
        vmrt::error u = objc::to_error(bare.get(), "pause");
        BOOST_TEST(u.code() == make_error_code(errc::unsupported));
        BOOST_TEST(
            u.diag().message ==
            "pause: VZErrorDomain 10 The operation couldn\u2019t be completed. (VZErrorDomain error 10.)");

        vmrt::error none = objc::to_error(nullptr, "stop");
        BOOST_TEST(none.code() == make_error_code(errc::internal));
        BOOST_TEST(none.diag().message == "stop: failed without an NSError");

        objc::ns_error_info info = objc::read_ns_error(vz.get());
        BOOST_TEST(info.domain == "VZErrorDomain");
        BOOST_TEST(info.code == 2);
        BOOST_TEST(info.underlying.size() == 1u);
    }

    // The table: every VZErrorCode, then the other domains.
    const std::pair<NSInteger, vmrt::error_code> vz_table[] = {
        {1, make_error_code(errc::vmm_crashed)},
        {2, make_error_code(errc::invalid_spec)},
        {3, make_error_code(errc::invalid_state)},
        {4, make_error_code(errc::invalid_state)},
        {5, make_error_code(errc::invalid_spec)},
        {6, make_error_code(errc::vmm_start_failed)},
        {7, make_error_code(errc::command_failed)},
        {8, vmrt::error_code(ENOSPC, boost::system::system_category())},
        {9, make_error_code(errc::cancelled)},
        {10, make_error_code(errc::unsupported)},
        {11, make_error_code(errc::command_failed)},
        {12, make_error_code(errc::command_failed)},
        {10007, make_error_code(errc::command_failed)},
        {30002, make_error_code(errc::command_failed)},
    };
    for (const auto& [code, expected] : vz_table)
        BOOST_TEST(objc::error_code_for("VZErrorDomain", code) == expected, "VZErrorDomain " << code);
    BOOST_TEST(objc::error_code_for("NSCocoaErrorDomain", 260) ==
               vmrt::error_code(ENOENT, boost::system::system_category()));
    BOOST_TEST(objc::error_code_for("NSCocoaErrorDomain", 513) ==
               vmrt::error_code(EACCES, boost::system::system_category()));
    BOOST_TEST(objc::error_code_for("NSCocoaErrorDomain", 3072) == make_error_code(errc::cancelled));
    BOOST_TEST(objc::error_code_for("NSCocoaErrorDomain", 1) == make_error_code(errc::command_failed));
    BOOST_TEST(objc::error_code_for("NSOSStatusErrorDomain", -50) == make_error_code(errc::command_failed));
    census.expect_unchanged();
}

BOOST_AUTO_TEST_CASE(a_runtime_created_delegate_calls_back_into_cpp) {
    const foundation_census census;
    auto record = std::make_shared<delegate_record>();
    Class delegate_cls = delegate_class().get();
    BOOST_TEST(objc::cls("VmrtTestVirtualMachineDelegate") == delegate_cls);
    {
        strong delegate = delegate_class().make(delegate_state(record));
        strong vm = objc::alloc_init(test_vm_class());
        send<void, id>(vm, sel("setDelegate:"), delegate.get());
        BOOST_TEST(objc::cpp_class<delegate_state>::state_of(delegate.get())->record == record);
        BOOST_TEST((objc::cpp_class<delegate_state>::state_of(vm.get()) == nullptr));  // not one of ours

        send<void>(vm, sel("simulateGuestStop"));
        BOOST_TEST(record->guest_stops == 1);
        BOOST_TEST(record->vm == vm.get());
        BOOST_TEST((record->caller != std::this_thread::get_id()));

        strong error = sim::make_ns_error("VZErrorDomain", 1, "The virtual machine stopped unexpectedly.");
        send<void, id>(vm, sel("simulateStopWithError:"), error.get());
        BOOST_TEST(record->stop_error == "the VM: VZErrorDomain 1 The virtual machine stopped unexpectedly.");

        BOOST_TEST(send<BOOL>(vm, sel("offerConnection")) == objc::NO);
        record->accept = true;
        BOOST_TEST(send<BOOL>(vm, sel("offerConnection")) == objc::YES);

        BOOST_TEST(objc::responds_to(delegate, sel("guestDidStopVirtualMachine:")));
        BOOST_TEST(!objc::responds_to(
            delegate, sel("virtualMachine:networkDevice:attachmentWasDisconnectedWithError:")));
        BOOST_TEST(sim::live_instances("VmrtTestVirtualMachineDelegate") == 1);
        BOOST_TEST(record->state_destructions == 0);
    }
    // The last release ran the class's -dealloc: the state went first, then [super dealloc].
    BOOST_TEST(record->state_destructions == 1);
    BOOST_TEST(sim::live_instances("VmrtTestVirtualMachineDelegate") == 0);
    BOOST_TEST(sim::live_instances("VmrtTestVirtualMachine") == 0);

    // An instance made without make() has no state: its methods do nothing and answer zero.
    strong bare = objc::alloc_init(delegate_cls);
    send<void, id>(bare, sel("guestDidStopVirtualMachine:"), nullptr);
    BOOST_TEST((send<BOOL, id, id, id>(bare, sel("listener:shouldAcceptNewConnection:fromSocketDevice:"),
                                       nullptr, nullptr, nullptr) == objc::NO));
    bare.reset();
    BOOST_TEST(sim::live_instances("VmrtTestVirtualMachineDelegate") == 0);

    // Class names are process-wide: a second class of the same name is refused.
    BOOST_CHECK_THROW(objc::cpp_class_builder<delegate_state>("VmrtTestVirtualMachineDelegate"), vmrt::error);
    // A class never registered is disposed of by its builder, freeing the name.
    { objc::cpp_class_builder<delegate_state> abandoned("VmrtTestAbandonedDelegate"); }
    BOOST_CHECK_NO_THROW(objc::cpp_class_builder<delegate_state>("VmrtTestAbandonedDelegate"));
    census.expect_unchanged();
}

BOOST_AUTO_TEST_CASE(a_built_class_adopts_a_protocol_the_runtime_knows) {
    objc::Protocol* protocol = sim::define_protocol("VmrtTestListenerDelegate");
    objc::cpp_class_builder<int> builder("VmrtTestListener");
    BOOST_TEST(!builder.adopt_protocol("VmrtTestNoSuchProtocol"));
    BOOST_TEST(builder.adopt_protocol("VmrtTestListenerDelegate"));
    objc::cpp_class<int> listener = builder.finish();
    strong obj = listener.make(7);
    BOOST_TEST(*objc::cpp_class<int>::state_of(obj.get()) == 7);
    BOOST_TEST((send<BOOL, objc::Protocol*>(obj, sel("conformsToProtocol:"), protocol)));
}

BOOST_AUTO_TEST_CASE(autorelease_pools_release_what_was_autoreleased_inside_them) {
    const long strings_before = sim::live_instances("NSString");
    const std::size_t pending_before = sim::pending_autoreleases();
    {
        objc::autorelease_pool outer;
        id s = send<id, const char*>(objc::cls("NSString"), sel("stringWithUTF8String:"), "autoreleased");
        BOOST_TEST(objc::to_string(s) == "autoreleased");
        {
            objc::autorelease_pool inner;
            send<id, const char*>(objc::cls("NSString"), sel("stringWithUTF8String:"), "inner");
            BOOST_TEST(sim::pending_autoreleases() == pending_before + 2);
        }
        BOOST_TEST(sim::pending_autoreleases() == pending_before + 1);
        BOOST_TEST(sim::live_instances("NSString") == strings_before + 1);
    }
    BOOST_TEST(sim::pending_autoreleases() == pending_before);
    BOOST_TEST(sim::live_instances("NSString") == strings_before);
}

BOOST_AUTO_TEST_CASE(the_layer_needs_no_pool_on_a_thread_without_one) {
    const foundation_census census;
    const long without_pool_before = sim::autoreleased_without_pool();
    std::thread([] {
        strong url = objc::ns_file_url("/tmp/x");
        BOOST_TEST(objc::url_path(url.get()) == "/tmp/x");  // -path autoreleases its result
        strong error = sim::make_ns_error("VZErrorDomain", 4, "bad transition");
        BOOST_TEST(objc::to_error(error.get(), "resume").diag().message ==
                   "resume: VZErrorDomain 4 bad transition");
        BOOST_TEST(sim::pending_autoreleases() == 0u);
    }).join();
    BOOST_TEST(sim::autoreleased_without_pool() == without_pool_before);
    census.expect_unchanged();
}

BOOST_AUTO_TEST_CASE(a_file_handle_closes_the_descriptor_it_owns) {
    const foundation_census census;
    int fds[2];
    BOOST_REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
    vmrt::io::unique_fd read_end(fds[0]);
    vmrt::io::unique_fd write_end(fds[1]);
    const int owned_fd = write_end.get();
    {
        strong handle = objc::file_handle_owning(write_end);
        BOOST_TEST(!write_end);  // ownership moved into the handle
        BOOST_TEST(objc::file_handle_fd(handle.get()) == owned_fd);
        BOOST_TEST(fd_is_open(owned_fd));
    }
    BOOST_TEST(!fd_is_open(owned_fd));  // closed by the handle's dealloc
    {
        strong borrowed = objc::file_handle_borrowing(read_end.get());
        BOOST_TEST(objc::file_handle_fd(borrowed.get()) == read_end.get());
    }
    BOOST_TEST(fd_is_open(read_end.get()));  // closeOnDealloc:NO leaves it to its owner
    census.expect_unchanged();
}

BOOST_AUTO_TEST_SUITE_END()
