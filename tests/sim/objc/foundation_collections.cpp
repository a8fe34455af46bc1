// Simulated NSArray and NSDictionary (immutable; elements retained, dictionary keys copied).
#include "foundation_model.hpp"
#include "runtime_model.hpp"

namespace vmrt::objc::sim::detail {

namespace {

bool equal_objects(id a, id b) { return send<BOOL, id>(a, sel<"isEqual:">(), b); }

id init_array(self_t<array_payload> self, const id* objects, NSUInteger count) {
    for (NSUInteger i = 0; i < count; ++i) {
        if (!objects[i])
            fatal("-[NSArray initWithObjects:count:]: attempt to insert nil object from objects[" +
                  std::to_string(i) + "]");
        self->items.push_back(strong::retain(objects[i]));
    }
    return self;
}

id init_dictionary(self_t<dictionary_payload> self, const id* objects, const id* keys, NSUInteger count) {
    for (NSUInteger i = 0; i < count; ++i) {
        if (!objects[i] || !keys[i])
            fatal("-[NSDictionary initWithObjects:forKeys:count:]: attempt to insert nil object or key at " +
                  std::to_string(i));
        strong key = strong::adopt(send<id>(keys[i], sel<"copy">()));
        strong value = strong::retain(objects[i]);
        bool replaced = false;
        for (auto& entry : self->entries) {
            if (equal_objects(entry.first.get(), key.get())) {
                entry.second = std::move(value);
                replaced = true;
                break;
            }
        }
        if (!replaced) self->entries.emplace_back(std::move(key), std::move(value));
    }
    return self;
}

id array_of(std::vector<id> items) {
    id array = send<id>(cls<"NSArray">(), sel<"alloc">());
    return init_array(self_t<array_payload>{array, payload<array_payload>(array)}, items.data(),
                      items.size());
}

}  // namespace

void install_collections() {
    using array = self_t<array_payload>;
    class_def<array_payload>("NSArray")
        .method("initWithObjects:count:",
                [](array self, const id* objects, NSUInteger count) -> id {
                    return init_array(self, objects, count);
                })
        .method("count", [](array self) -> NSUInteger { return self->items.size(); })
        .method("objectAtIndex:",
                [](array self, NSUInteger index) -> id {
                    if (index >= self->items.size())
                        fatal("-[NSArray objectAtIndex:]: index " + std::to_string(index) +
                              " beyond bounds [0 .. " + std::to_string(self->items.size()) + ")");
                    return self->items[index].get();
                })
        .method("firstObject",
                [](array self) -> id { return self->items.empty() ? nullptr : self->items.front().get(); })
        .method("lastObject",
                [](array self) -> id { return self->items.empty() ? nullptr : self->items.back().get(); })
        .method("copyWithZone:", [](array self, void*) -> id { return send<id>(self, sel<"retain">()); })
        .class_method("arrayWithObjects:count:",
                      [](Class c, const id* objects, NSUInteger count) -> id {
                          return autorelease(send<id, const id*, NSUInteger>(
                              send<id>(c, sel<"alloc">()), sel<"initWithObjects:count:">(), objects, count));
                      })
        .class_method("array", [](Class) -> id { return autorelease(array_of({})); })
        .done();

    using dictionary = self_t<dictionary_payload>;
    class_def<dictionary_payload>("NSDictionary")
        .method("initWithObjects:forKeys:count:",
                [](dictionary self, const id* objects, const id* keys, NSUInteger count) -> id {
                    return init_dictionary(self, objects, keys, count);
                })
        .method("count", [](dictionary self) -> NSUInteger { return self->entries.size(); })
        .method("objectForKey:",
                [](dictionary self, id key) -> id {
                    if (!key) return nullptr;
                    for (const auto& [k, v] : self->entries)
                        if (equal_objects(k.get(), key)) return v.get();
                    return nullptr;
                })
        .method("allKeys",
                [](dictionary self) -> id {
                    std::vector<id> keys;
                    for (const auto& entry : self->entries) keys.push_back(entry.first.get());
                    return autorelease(array_of(std::move(keys)));
                })
        .method("allValues",
                [](dictionary self) -> id {
                    std::vector<id> values;
                    for (const auto& entry : self->entries) values.push_back(entry.second.get());
                    return autorelease(array_of(std::move(values)));
                })
        .method("copyWithZone:", [](dictionary self, void*) -> id { return send<id>(self, sel<"retain">()); })
        .class_method("dictionaryWithObjects:forKeys:count:",
                      [](Class c, const id* objects, const id* keys, NSUInteger count) -> id {
                          return autorelease(send<id, const id*, const id*, NSUInteger>(
                              send<id>(c, sel<"alloc">()), sel<"initWithObjects:forKeys:count:">(), objects,
                              keys, count));
                      })
        .done();
}

}  // namespace vmrt::objc::sim::detail
