#include "cli.hpp"

#include <vmrt/vm_manager.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>

#include <fstream>
#include <iostream>
#include <sstream>

namespace vmrt::cli {

int validate_command(const std::vector<std::string>& args) {
    bool json = false;
    std::string file;
    std::optional<backend_kind> backend_override;
    for (std::size_t i = 0; i < args.size(); ++i) {
        const auto& a = args[i];
        if (a == "--json")
            json = true;
        else if (a == "--backend") {
            backend_override = backend_option(args, i, "validate");
            if (!backend_override) return exit_usage;
        } else if (!a.empty() && a[0] == '-') {
            std::cerr << "vmrt validate: unknown option " << a << "\n";
            return exit_usage;
        } else if (file.empty())
            file = a;
        else {
            std::cerr << "vmrt validate: one spec file expected\n";
            return exit_usage;
        }
    }
    if (file.empty()) {
        std::cerr << "vmrt validate: missing SPEC.json\n";
        return exit_usage;
    }

    std::vector<spec_error> problems;
    std::optional<vm_spec> spec;
    std::ifstream in(file, std::ios::binary);
    if (!in) {
        problems.push_back({"", "cannot read " + file});
    } else {
        std::stringstream text;
        text << in.rdbuf();
        auto base = std::filesystem::absolute(file).parent_path();
        auto parsed = parse_spec_json(text.str(), base);
        if (!parsed) {
            problems.push_back(parsed.error());
        } else {
            spec = std::move(*parsed);
            if (backend_override) spec->backend = *backend_override;
            problems = validate_spec(*spec);
        }
    }
    std::string backend;
    if (spec && problems.empty()) {
        boost::asio::io_context ctx;
        vm_manager manager(ctx.get_executor());
        std::string why_not;
        auto drv = manager.find_driver(spec->backend, &why_not);
        if (!drv)
            problems.push_back({"backend", why_not});
        else if (auto refused = drv->check_spec(*spec))
            problems.push_back(*refused);
        else
            backend = drv->name();
    }

    if (json) {
        boost::json::object out;
        out["valid"] = problems.empty();
        boost::json::array list;
        for (auto& p : problems)
            list.push_back(boost::json::object{{"field", p.field}, {"message", p.message}});
        out["problems"] = std::move(list);
        if (!backend.empty()) out["backend"] = backend;
        std::cout << boost::json::serialize(out) << "\n";
    } else if (problems.empty()) {
        std::cout << "ok: " << spec->name << " (backend " << backend << ")\n";
    } else {
        for (auto& p : problems)
            std::cerr << file << ": " << (p.field.empty() ? "" : p.field + ": ") << p.message << "\n";
    }
    return problems.empty() ? exit_ok : exit_invalid_spec;
}

}  // namespace vmrt::cli
