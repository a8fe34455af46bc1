// Simulated NSError, and sim::make_ns_error for the simulated frameworks.
#include "foundation_model.hpp"
#include "runtime_model.hpp"

namespace vmrt::objc::sim::detail {

namespace {

using error = self_t<error_payload>;

id user_info_value(const error_payload& e, const char* key) {
    if (!e.user_info) return nullptr;
    strong k = strong::adopt(make_string(key));
    return send<id, id>(e.user_info, sel<"objectForKey:">(), k.get());
}

// -localizedDescription: userInfo[NSLocalizedDescriptionKey], else what Foundation composes.
std::string localized_description(const error_payload& e) {
    if (const std::string* text = string_value(user_info_value(e, "NSLocalizedDescription"))) return *text;
    const std::string* domain = string_value(e.domain.get());
    if (const std::string* reason = string_value(user_info_value(e, "NSLocalizedFailureReason")))
        return "The operation couldn\u2019t be completed. " + *reason;
    return "The operation couldn\u2019t be completed. (" + (domain ? *domain : std::string()) + " error " +
           std::to_string(e.code) + ".)";
}

}  // namespace

void install_errors() {
    class_def<error_payload>("NSError")
        .method("initWithDomain:code:userInfo:",
                [](error self, id domain, NSInteger code, id user_info) -> id {
                    if (!string_value(domain)) fatal("-[NSError initWithDomain:code:userInfo:]: nil domain");
                    self->domain = strong::adopt(send<id>(domain, sel<"copy">()));
                    self->code = code;
                    if (user_info) self->user_info = strong::adopt(send<id>(user_info, sel<"copy">()));
                    return self;
                })
        .method("domain", [](error self) -> id { return self->domain.get(); })
        .method("code", [](error self) -> NSInteger { return self->code; })
        .method("userInfo", [](error self) -> id { return self->user_info.get(); })
        .method("localizedDescription",
                [](error self) -> id { return autorelease(make_string(localized_description(*self))); })
        .method("localizedFailureReason",
                [](error self) -> id { return user_info_value(*self, "NSLocalizedFailureReason"); })
        .method("copyWithZone:", [](error self, void*) -> id { return send<id>(self, sel<"retain">()); })
        .class_method("errorWithDomain:code:userInfo:",
                      [](Class c, id domain, NSInteger code, id user_info) -> id {
                          return autorelease(send<id, id, NSInteger, id>(
                              send<id>(c, sel<"alloc">()), sel<"initWithDomain:code:userInfo:">(), domain,
                              code, user_info));
                      })
        .done();
}

}  // namespace vmrt::objc::sim::detail

namespace vmrt::objc::sim {

strong make_ns_error(const std::string& domain, NSInteger code, const std::string& description,
                     id underlying) {
    using detail::make_string;
    std::vector<strong> keys;
    std::vector<id> raw_keys;
    std::vector<id> values;
    strong text;
    if (!description.empty()) {
        text = strong::adopt(make_string(description));
        keys.push_back(strong::adopt(make_string("NSLocalizedDescription")));
        raw_keys.push_back(keys.back().get());
        values.push_back(text.get());
    }
    if (underlying) {
        keys.push_back(strong::adopt(make_string("NSUnderlyingError")));
        raw_keys.push_back(keys.back().get());
        values.push_back(underlying);
    }
    strong info = alloc_init<const id*, const id*, NSUInteger>(cls<"NSDictionary">(),
                                                               sel<"initWithObjects:forKeys:count:">(),
                                                               values.data(), raw_keys.data(), values.size());
    strong name = strong::adopt(make_string(domain));
    return alloc_init<id, NSInteger, id>(cls<"NSError">(), sel<"initWithDomain:code:userInfo:">(), name.get(),
                                         code, info.get());
}

}  // namespace vmrt::objc::sim
