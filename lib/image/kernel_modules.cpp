#include "image/kernel_modules.hpp"

#include <vmrt/error.hpp>

#include <algorithm>
#include <map>

namespace vmrt::image {
namespace {

[[noreturn]] void bad_dep(const std::string& what) {
    throw error(make_error_code(errc::protocol_error), {.message = "modules.dep: " + what});
}

std::vector<std::string_view> split_words(std::string_view text) {
    std::vector<std::string_view> words;
    std::size_t i = 0;
    while (i < text.size()) {
        while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) ++i;
        std::size_t start = i;
        while (i < text.size() && text[i] != ' ' && text[i] != '\t') ++i;
        if (i > start) words.push_back(text.substr(start, i - start));
    }
    return words;
}

template <typename F>
void for_each_line(std::string_view text, F&& f) {
    while (!text.empty()) {
        auto nl = text.find('\n');
        auto line = text.substr(0, nl);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        f(line);
        if (nl == std::string_view::npos) break;
        text.remove_prefix(nl + 1);
    }
}

struct dep_graph {
    struct node {
        std::string path;
        std::vector<std::string> deps;  // paths
        int state = 0;                  // 0 new, 1 on the current DFS path, 2 emitted
    };
    std::map<std::string, node, std::less<>> by_name;  // canonical name -> node
    std::map<std::string, std::string, std::less<>> name_of_path;

    node* find_path(std::string_view path) {
        auto it = name_of_path.find(path);
        return it == name_of_path.end() ? nullptr : &by_name[it->second];
    }

    // Depth-first, emitting a module after everything it depends on (post-order).
    void visit(node& n, std::vector<std::string>& out) {
        if (n.state == 2) return;
        if (n.state == 1) bad_dep("dependency cycle through " + n.path);
        n.state = 1;
        for (const auto& dep : n.deps) {
            node* d = find_path(dep);
            if (!d) bad_dep(n.path + " depends on " + dep + ", which has no line of its own");
            visit(*d, out);
        }
        n.state = 2;
        out.push_back(n.path);
    }
};

dep_graph parse_modules_dep(std::string_view text) {
    dep_graph g;
    for_each_line(text, [&](std::string_view line) {
        if (line.empty() || line.front() == '#') return;
        auto colon = line.find(':');
        if (colon == std::string_view::npos || colon == 0)
            bad_dep("malformed line \"" + std::string(line) + "\"");
        std::string path(line.substr(0, colon));
        dep_graph::node n{path, {}, 0};
        for (auto word : split_words(line.substr(colon + 1))) n.deps.emplace_back(word);
        auto name = module_name(path);
        if (g.by_name.contains(name)) bad_dep("module " + name + " listed twice");
        g.name_of_path.emplace(path, name);
        g.by_name.emplace(std::move(name), std::move(n));
    });
    return g;
}

}  // namespace

std::string module_name(std::string_view name) {
    if (auto slash = name.rfind('/'); slash != std::string_view::npos) name.remove_prefix(slash + 1);
    for (std::string_view suffix : {".ko.xz", ".ko.zst", ".ko.gz", ".ko"}) {
        if (name.ends_with(suffix)) {
            name.remove_suffix(suffix.size());
            break;
        }
    }
    std::string out(name);
    std::replace(out.begin(), out.end(), '-', '_');
    return out;
}

module_closure resolve_module_closure(std::string_view modules_dep, const std::vector<std::string>& wanted) {
    dep_graph g = parse_modules_dep(modules_dep);
    module_closure result;
    for (const auto& want : wanted) {
        auto it = g.by_name.find(module_name(want));
        if (it == g.by_name.end())
            result.missing.push_back(want);
        else
            g.visit(it->second, result.paths);
    }
    return result;
}

std::set<std::string> builtin_module_names(std::string_view modules_builtin) {
    std::set<std::string> names;
    for_each_line(modules_builtin, [&](std::string_view line) {
        if (!line.empty()) names.insert(module_name(line));
    });
    return names;
}

}  // namespace vmrt::image
