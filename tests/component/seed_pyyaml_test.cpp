// The YAML emitter against PyYAML, the parser cloud-init itself uses (YAML 1.1: it retypes yes,
// on, 0x1F, 12:30:00 and treats NEL, LS and PS as line breaks, which yaml-cpp in the unit tier does
// not). 1,500 random trees (nested mappings and sequences, empty ones, long keys) with hostile
// strings as keys and values are emitted, written as JSON lines next to the value they must read
// back as, and checked by tests/helpers/pyyaml_roundtrip.py with yaml.safe_load, types included.
#include "image/yaml_emitter.hpp"
#include "support/test_support.hpp"
#include "yaml/hostile_strings.hpp"

#include <vmrt/io/process.hpp>

#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <boost/test/unit_test.hpp>

#include <cstdlib>
#include <fstream>
#include <set>
#include <string>

namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
namespace json = boost::json;
namespace y = vmrt::image::yaml;
using vmrt::test::yaml::hostile_generator;

constexpr int cases = 1500;
constexpr std::uint64_t seed = 0x5EED0FA7ULL;

// A random tree and, alongside, the JSON value it must read back as.
std::pair<y::node, json::value> random_tree(hostile_generator& g, int depth) {
    const auto kind = depth == 0 ? g.below(3) : g.below(5);
    if (kind == 0) {
        auto s = g.text();
        return {y::node(s), json::value(json::string_view(s.data(), s.size()))};
    }
    if (kind == 1) {
        const bool b = g.chance(0.5);
        return {y::node(b), json::value(b)};
    }
    if (kind == 2) {
        const auto i = static_cast<std::int64_t>(g.below(2000001)) - 1000000;
        return {y::node(i), json::value(i)};
    }
    if (kind == 3) {
        y::sequence seq;
        json::array arr;
        for (std::size_t i = 0, n = g.below(4); i < n; ++i) {
            auto [item, expected] = random_tree(g, depth - 1);
            seq.push_back(std::move(item));
            arr.push_back(std::move(expected));
        }
        return {y::node(std::move(seq)), json::value(std::move(arr))};
    }
    y::mapping map;
    json::object obj;
    std::set<std::string> keys;
    for (std::size_t i = 0, n = g.below(4); i < n; ++i) {
        auto key = g.chance(0.03) ? std::string(600, 'k') + g.text() : g.text();
        if (!keys.insert(key).second) continue;  // YAML keys are unique; a repeat would be last-wins
        auto [value, expected] = random_tree(g, depth - 1);
        map.emplace_back(key, std::move(value));
        obj[json::string_view(key.data(), key.size())] = std::move(expected);
    }
    return {y::node(std::move(map)), json::value(std::move(obj))};
}

fs::path source_dir() {
    const char* dir = std::getenv("VMRT_SOURCE_DIR");
    if (!dir) throw std::runtime_error("VMRT_SOURCE_DIR is not set (run the test through CTest)");
    return dir;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(seed_pyyaml_test)

BOOST_AUTO_TEST_CASE(pyyaml_reads_hostile_documents_back_exactly) {
    vmrt::test::temp_dir dir;
    hostile_generator g(seed);
    {
        std::ofstream out(dir / "cases.jsonl", std::ios::binary);
        for (int i = 0; i < cases; ++i) {
            // Mostly collections at the root, as in the seed documents.
            auto [tree, expected] = random_tree(g, 1 + static_cast<int>(g.below(4)));
            const auto text = y::emit(tree);
            json::object line{{"yaml", json::string_view(text.data(), text.size())}, {"expected", expected}};
            out << json::serialize(line) << '\n';
        }
    }
    // /usr/bin/python3 with Debian's python3-yaml (tools/setup): the PyYAML a Debian guest's
    // cloud-init runs with, not whatever another python on PATH may carry.
    auto [code, output] = vmrt::test::run_to_end(
        "/usr/bin/python3",
        {(source_dir() / "tests/helpers/pyyaml_roundtrip.py").string(), (dir / "cases.jsonl").string()});
    BOOST_TEST(code == 0, "seed 0x" << std::hex << seed << ": " << output);
    BOOST_TEST(output.find(std::to_string(cases) + " cases, 0 failures") != std::string::npos, output);
}

BOOST_AUTO_TEST_SUITE_END()
