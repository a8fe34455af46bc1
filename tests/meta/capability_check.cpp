// capability_check: keeps docs/CAPABILITIES.md from claiming more than the test suites prove.
//
// Every backend cell of the capability table holds a status word, optionally followed by the
// tests that prove it ("simulated runtime: component/manager_test/start_reaches_running"). A
// claim is accepted only if every test it names exists, is enabled, and lives in a tier that is
// strong enough for the word: a unit test cannot prove that a real guest booted.
//
// Whether a test exists is asked of the tier executables themselves (Boost.Test --list_content),
// never guessed from file names, so renaming or deleting a test invalidates the claims it backed.
//
// Usage: capability_check --doc CAPABILITIES.md --tier unit=PATH [--tier component=PATH ...]
// Exit status: 0 when every cell is honest, 1 on any violation, 2 on a usage or I/O error.

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

extern char** environ;

namespace {

namespace fs = std::filesystem;

// ---------------------------------------------------------------------------------------------
// Vocabulary: status words and what each test tier is able to prove.

enum class status {
    real_guest,
    protocol_double,
    simulated_runtime,
    simulated_framework,
    unit_only,
    not_yet,
    not_applicable
};

struct status_word {
    std::string_view text;
    status value;
};

constexpr std::array<status_word, 7> status_words{{
    {"real guest", status::real_guest},
    {"protocol double", status::protocol_double},
    {"simulated runtime", status::simulated_runtime},
    {"simulated framework", status::simulated_framework},
    {"unit only", status::unit_only},
    {"not yet", status::not_yet},
    {"n/a", status::not_applicable},
}};

std::optional<status> parse_status(std::string_view word) {
    for (const auto& candidate : status_words)
        if (candidate.text == word) return candidate.value;
    return std::nullopt;
}

std::string_view to_string(status s) {
    for (const auto& candidate : status_words)
        if (candidate.value == s) return candidate.text;
    return "?";
}

std::string known_status_words() {
    std::string out;
    for (const auto& candidate : status_words) {
        if (!out.empty()) out += ", ";
        out += "`" + std::string(candidate.text) + "`";
    }
    return out;
}

// A unit test runs sans-I/O code only; a component test runs real processes on this machine but
// no hypervisor (so at best a simulated VM, a stand-in speaking the VMM's protocol, or the
// driver against a simulation of a framework that cannot run here); only an integration test boots
// a real guest.
const std::map<std::string, std::set<status>, std::less<>>& tier_powers() {
    static const std::map<std::string, std::set<status>, std::less<>> powers{
        {"unit", {status::unit_only}},
        {"component",
         {status::unit_only, status::simulated_runtime, status::simulated_framework,
          status::protocol_double}},
        {"integration",
         {status::unit_only, status::simulated_runtime, status::simulated_framework, status::protocol_double,
          status::real_guest}},
    };
    return powers;
}

std::string describe_power(const std::set<status>& power) {
    std::string out;
    for (status s : power) {
        if (!out.empty()) out += ", ";
        out += "`" + std::string(to_string(s)) + "`";
    }
    return out;
}

// The backend columns every capability table must have, in the order of the document.
constexpr std::array<std::string_view, 4> backend_columns{"fake", "qemu", "cloud-hypervisor", "apple-vz"};

// ---------------------------------------------------------------------------------------------
// Small string helpers.

std::string_view trim(std::string_view text) {
    constexpr std::string_view blanks = " \t\r\n";
    const auto first = text.find_first_not_of(blanks);
    if (first == std::string_view::npos) return {};
    const auto last = text.find_last_not_of(blanks);
    return text.substr(first, last - first + 1);
}

std::vector<std::string_view> split(std::string_view text, char separator) {
    std::vector<std::string_view> parts;
    std::size_t start = 0;
    for (;;) {
        const auto end = text.find(separator, start);
        parts.push_back(text.substr(start, end - start));
        if (end == std::string_view::npos) return parts;
        start = end + 1;
    }
}

// Backticks are markdown decoration; the checker reads the words inside them.
std::string without_backticks(std::string_view text) {
    std::string out(text);
    std::erase(out, '`');
    return out;
}

// "**Lifecycle**" -> "Lifecycle"; the bold form marks a section heading row.
bool is_bold(std::string_view text) {
    return text.size() > 4 && text.starts_with("**") && text.ends_with("**");
}

std::string_view unbold(std::string_view text) {
    return is_bold(text) ? text.substr(2, text.size() - 4) : text;
}

std::string lowercase(std::string_view text) {
    std::string out(text);
    std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
    return out;
}

// ---------------------------------------------------------------------------------------------
// Test references: "<tier>/<suite>/<case>".

struct test_ref {
    std::string tier;
    std::string path;  ///< "suite/case", as it appears in the tier's test tree
    std::string text;  ///< as written in the document, for messages
};

std::optional<test_ref> parse_test_ref(std::string_view text) {
    const auto parts = split(text, '/');
    if (parts.size() != 3) return std::nullopt;
    for (auto part : parts)
        if (part.empty() || part.find_first_of(" \t") != std::string_view::npos) return std::nullopt;
    return test_ref{std::string(parts[0]), std::string(parts[1]) + "/" + std::string(parts[2]),
                    std::string(text)};
}

// ---------------------------------------------------------------------------------------------
// Asking a tier executable for its tests.

struct listing {
    std::map<std::string, bool> units;  ///< "suite/case" (any depth) -> enabled
    std::string error;                  ///< why the listing could not be obtained; empty on success
};

// Boost.Test's --list_content prints one test unit per line, indented four spaces per level
// below the master suite, with a trailing '*' on enabled units and an optional ": description".
// A unit counts as enabled only if all of its enclosing suites are enabled too.
std::map<std::string, bool> parse_list_content(std::string_view text) {
    std::map<std::string, bool> units;
    std::vector<std::pair<std::string, bool>> stack;  // enclosing suites: name, enabled
    for (auto raw_line : split(text, '\n')) {
        const auto indent = raw_line.find_first_not_of(' ');
        if (indent == std::string_view::npos) continue;
        const auto rest = trim(raw_line.substr(indent));
        const auto name_end = std::min(rest.find_first_of("* :"), rest.size());
        const std::string name(rest.substr(0, name_end));
        const bool own_enabled = name_end < rest.size() && rest[name_end] == '*';
        const std::size_t depth = indent / 4;
        if (name.empty() || depth > stack.size()) continue;  // not a line of the tree
        stack.resize(depth);
        const bool parent_enabled = stack.empty() || stack.back().second;
        std::string path;
        for (const auto& suite : stack) path += suite.first + "/";
        path += name;
        units[path] = own_enabled && parent_enabled;
        stack.emplace_back(name, own_enabled && parent_enabled);
    }
    return units;
}

// Runs `program --list_content` without a shell (the path is data, never a command line) and
// returns everything it prints; Boost.Test writes the tree to stderr, so both streams share a pipe.
listing list_tests(const fs::path& program) {
    listing result;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return {{}, std::string("pipe: ") + std::strerror(errno)};

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDERR_FILENO);
    std::string program_path = program.string();
    std::string option = "--list_content";
    char* argv[] = {program_path.data(), option.data(), nullptr};
    pid_t pid = -1;
    const int spawn_error = posix_spawn(&pid, program_path.c_str(), &actions, nullptr, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    close(fds[1]);  // the child holds the only write end now, so EOF means it is done writing
    if (spawn_error != 0) {
        close(fds[0]);
        return {{}, "cannot run " + program_path + ": " + std::strerror(spawn_error)};
    }

    std::string output;
    std::array<char, 4096> buffer;
    for (;;) {
        const ssize_t n = read(fds[0], buffer.data(), buffer.size());
        if (n > 0) {
            output.append(buffer.data(), static_cast<std::size_t>(n));
        } else if (n == 0 || errno != EINTR) {
            break;
        }
    }
    close(fds[0]);

    int wait_status = 0;
    while (waitpid(pid, &wait_status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(wait_status) || WEXITSTATUS(wait_status) != 0)
        return {{}, program_path + " --list_content failed:\n" + output};
    result.units = parse_list_content(output);
    if (result.units.empty()) result.error = program_path + " --list_content listed no tests";
    return result;
}

// The test trees of all tiers, each obtained once and only when a cell refers to the tier.
class tier_catalog {
public:
    explicit tier_catalog(std::map<std::string, fs::path> executables)
        : executables_(std::move(executables)) {}

    /// Why `ref` does not name an enabled test of its tier; nullopt when it does.
    std::optional<std::string> problem_with(const test_ref& ref) {
        if (!tier_powers().contains(ref.tier))
            return "unknown test tier `" + ref.tier + "` in `" + ref.text + "`";
        const auto exe = executables_.find(ref.tier);
        if (exe == executables_.end())
            return "`" + ref.text + "`: the " + ref.tier +
                   " tier has no test executable in this build, so it proves nothing yet";
        const listing& tests = listing_of(ref.tier, exe->second);
        if (!tests.error.empty()) return "`" + ref.text + "`: " + tests.error;
        const auto unit = tests.units.find(ref.path);
        if (unit == tests.units.end())
            return "`" + ref.text + "`: no such test in " + exe->second.filename().string();
        if (!unit->second) return "`" + ref.text + "`: the test is disabled, so it proves nothing";
        return std::nullopt;
    }

private:
    const listing& listing_of(const std::string& tier, const fs::path& exe) {
        auto cached = cache_.find(tier);
        if (cached != cache_.end()) return cached->second;
        listing fresh;
        if (!fs::exists(exe))
            fresh.error = "tier executable " + exe.string() + " does not exist";
        else
            fresh = list_tests(exe);
        return cache_.emplace(tier, std::move(fresh)).first->second;
    }

    std::map<std::string, fs::path> executables_;
    std::map<std::string, listing> cache_;
};

// ---------------------------------------------------------------------------------------------
// Reading markdown tables.

struct table_row {
    std::size_t line = 0;
    std::vector<std::string> cells;
};

using table = std::vector<table_row>;  ///< header, separator, body rows

// "| a | b \| c |" -> {"a", "b | c"}: cells split on unescaped pipes and trimmed.
std::vector<std::string> split_cells(std::string_view line) {
    line = trim(line);
    if (line.starts_with('|')) line.remove_prefix(1);
    if (line.ends_with('|') && !line.ends_with("\\|")) line.remove_suffix(1);
    std::vector<std::string> cells(1);
    for (std::size_t i = 0; i < line.size(); ++i) {
        if (line[i] == '\\' && i + 1 < line.size() && line[i + 1] == '|') {
            cells.back() += '|';
            ++i;
        } else if (line[i] == '|') {
            cells.emplace_back();
        } else {
            cells.back() += line[i];
        }
    }
    for (auto& cell : cells) cell = std::string(trim(cell));
    return cells;
}

bool is_separator_row(const std::vector<std::string>& cells) {
    return std::all_of(cells.begin(), cells.end(), [](const std::string& cell) {
        return !cell.empty() && cell.find_first_not_of(":-") == std::string::npos &&
               cell.find('-') != cell.npos;
    });
}

// Consecutive lines starting with '|' form a table when their second line is a separator row.
// Lines inside fenced code blocks are examples, not tables.
std::vector<table> read_tables(std::istream& in) {
    std::vector<table> tables;
    table current;
    std::string line;
    std::size_t number = 0;
    bool in_fence = false;
    auto flush = [&] {
        if (current.size() >= 2 && is_separator_row(current[1].cells)) tables.push_back(std::move(current));
        current.clear();
    };
    while (std::getline(in, line)) {
        ++number;
        const auto text = trim(line);
        if (text.starts_with("```") || text.starts_with("~~~")) in_fence = !in_fence;
        if (!in_fence && text.starts_with('|'))
            current.push_back({number, split_cells(line)});
        else
            flush();
    }
    flush();
    return tables;
}

// ---------------------------------------------------------------------------------------------
// The rules.

struct violation {
    std::size_t line;
    std::string row;
    std::string column;
    std::string message;
};

// Where each column of a capability table is.
struct layout {
    std::array<std::size_t, backend_columns.size()> backend{};
    std::size_t notes = 0;
};

class checker {
public:
    explicit checker(tier_catalog& catalog) : catalog_(catalog) {}

    void check(const std::vector<table>& tables) {
        bool found_capability_table = false;
        for (const auto& t : tables) found_capability_table |= check_table(t);
        if (!found_capability_table)
            report(0, {}, {},
                   "no capability table (a table with the columns fake, qemu, cloud-hypervisor, "
                   "apple-vz and Notes) found");
    }

    const std::vector<violation>& violations() const { return violations_; }
    std::size_t claims_verified() const { return claims_verified_; }

private:
    // Returns false for tables that are not capability tables at all (the legend, for example).
    bool check_table(const table& t) {
        const table_row& header = t.front();
        const auto named = column_index(header);
        const auto has = [&](std::string_view column) {
            return named.contains(std::string(column));
        };
        if (std::none_of(backend_columns.begin(), backend_columns.end(), has)) return false;
        // From here on a broken header is a violation, not a reason to skip the table: otherwise
        // deleting a column would silently disable every check.
        if (const auto columns = find_layout(header, named))
            for (std::size_t i = 2; i < t.size(); ++i) check_row(t[i], *columns, header.cells.size());
        return true;
    }

    static std::map<std::string, std::size_t> column_index(const table_row& header) {
        std::map<std::string, std::size_t> named;
        for (std::size_t i = 0; i < header.cells.size(); ++i)
            named.emplace(lowercase(without_backticks(header.cells[i])), i);
        return named;
    }

    // Reports every missing or misplaced column; nullopt when the table cannot be checked.
    std::optional<layout> find_layout(const table_row& header,
                                      const std::map<std::string, std::size_t>& named) {
        layout columns;
        bool usable = true;
        const auto locate = [&](std::string_view column, std::size_t& where) {
            const auto found = named.find(std::string(column));
            if (found == named.end()) {
                report(header.line, {}, std::string(column), "capability table lacks this column");
                usable = false;
            } else if (found->second == 0) {
                report(header.line, {}, std::string(column), "the first column must name the capability");
                usable = false;
            } else {
                where = found->second;
            }
        };
        for (std::size_t b = 0; b < backend_columns.size(); ++b)
            locate(backend_columns[b], columns.backend[b]);
        locate("notes", columns.notes);
        if (!usable) return std::nullopt;
        return columns;
    }

    void check_row(const table_row& row, const layout& columns, std::size_t header_width) {
        const std::string name(trim(unbold(row.cells.front())));
        if (row.cells.size() != header_width) {
            report(row.line, name, {},
                   "row has " + std::to_string(row.cells.size()) + " cells, the header has " +
                       std::to_string(header_width));
            return;
        }
        if (name.empty()) report(row.line, name, {}, "row does not name a capability");

        const bool all_empty = std::all_of(columns.backend.begin(), columns.backend.end(),
                                           [&](std::size_t c) { return row.cells[c].empty(); });
        if (all_empty) {
            // A bold first cell with nothing else is a section heading ("**Lifecycle**").
            if (!is_bold(row.cells.front()))
                report(row.line, name, {}, "row has no status in any backend column");
            return;
        }
        if (!name.empty() && !row_names_.insert(name).second)
            report(row.line, name, {}, "capability listed twice; its claims could contradict each other");
        for (std::size_t b = 0; b < backend_columns.size(); ++b)
            check_cell(row, name, backend_columns[b], row.cells[columns.backend[b]],
                       row.cells[columns.notes]);
    }

    void check_cell(const table_row& row, const std::string& name, std::string_view column,
                    std::string_view raw_cell, std::string_view notes) {
        const auto fail = [&](std::string message) {
            report(row.line, name, std::string(column), std::move(message));
        };
        const std::string cell = without_backticks(raw_cell);
        if (trim(cell).empty()) return fail("empty cell; write `not yet` when nothing proves the capability");

        const auto colon = cell.find(':');
        const auto word = trim(std::string_view(cell).substr(0, colon));
        const auto claimed = parse_status(word);
        if (!claimed)
            return fail("unknown status `" + std::string(word) + "`; use one of " + known_status_words());

        std::vector<test_ref> tests;
        if (colon != std::string::npos) {
            for (auto part : split(std::string_view(cell).substr(colon + 1), ',')) {
                const auto text = trim(part);
                const auto ref = parse_test_ref(text);
                if (!ref)
                    return fail("`" + std::string(text) +
                                "` is not a test reference of the form <tier>/<suite>/<case>");
                tests.push_back(*ref);
            }
        }
        check_claim(*claimed, tests, notes, fail);
    }

    template <typename Fail>
    void check_claim(status claimed, const std::vector<test_ref>& tests, std::string_view notes,
                     const Fail& fail) {
        if (claimed == status::not_yet) {
            if (!tests.empty())
                fail("`not yet` must not name a test; claim the status that test proves instead");
            return;
        }
        if (claimed == status::not_applicable) {
            // A test may show that the backend refuses the feature; it need not be of any tier.
            if (trim(notes).empty()) fail("`n/a` needs a reason in the Notes column");
            for (const auto& ref : tests)
                if (auto problem = catalog_.problem_with(ref)) fail(*problem);
            return;
        }
        if (tests.empty())
            return fail("claims `" + std::string(to_string(claimed)) + "` but names no test that proves it");
        bool proven = true;
        for (const auto& ref : tests) {
            if (auto problem = catalog_.problem_with(ref)) {
                fail(*problem);
                proven = false;
                continue;
            }
            const auto& power = tier_powers().find(ref.tier)->second;
            if (!power.contains(claimed)) {
                fail("`" + std::string(to_string(claimed)) + "` cannot be proven by a " + ref.tier +
                     " test (`" + ref.text + "`); a " + ref.tier + " test can prove only " +
                     describe_power(power));
                proven = false;
            }
        }
        if (proven) ++claims_verified_;
    }

    void report(std::size_t line, std::string row, std::string column, std::string message) {
        violations_.push_back({line, std::move(row), std::move(column), std::move(message)});
    }

    tier_catalog& catalog_;
    std::vector<violation> violations_;
    std::set<std::string> row_names_;
    std::size_t claims_verified_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Command line.

struct options {
    fs::path doc;
    std::map<std::string, fs::path> tiers;
};

std::optional<options> parse_options(int argc, char** argv) {
    options opts;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (i + 1 >= argc) {
            std::cerr << "capability_check: " << arg << " needs a value\n";
            return std::nullopt;
        }
        const std::string_view value = argv[++i];
        if (arg == "--doc") {
            opts.doc = value;
        } else if (arg == "--tier") {
            const auto eq = value.find('=');
            const std::string tier(value.substr(0, eq));
            if (eq == std::string_view::npos || !tier_powers().contains(tier)) {
                std::cerr << "capability_check: --tier wants unit|component|integration=PATH, got " << value
                          << "\n";
                return std::nullopt;
            }
            opts.tiers[tier] = value.substr(eq + 1);
        } else {
            std::cerr << "capability_check: unknown option " << arg << "\n";
            return std::nullopt;
        }
    }
    if (opts.doc.empty()) {
        std::cerr
            << "usage: capability_check --doc CAPABILITIES.md --tier unit=PATH [--tier component=PATH ...]\n";
        return std::nullopt;
    }
    return opts;
}

void print(const fs::path& doc, const violation& v) {
    std::cout << doc.string() << ":" << v.line << ": ";
    if (!v.row.empty()) std::cout << "row \"" << v.row << "\"";
    if (!v.row.empty() && !v.column.empty()) std::cout << ", ";
    if (!v.column.empty()) std::cout << "column \"" << v.column << "\"";
    if (!v.row.empty() || !v.column.empty()) std::cout << ": ";
    std::cout << v.message << "\n";
}

}  // namespace

int main(int argc, char** argv) {
    const auto opts = parse_options(argc, argv);
    if (!opts) return 2;
    std::ifstream in(opts->doc);
    if (!in) {
        std::cerr << "capability_check: cannot read " << opts->doc << "\n";
        return 2;
    }
    tier_catalog catalog(opts->tiers);
    checker check(catalog);
    check.check(read_tables(in));

    for (const auto& v : check.violations()) print(opts->doc, v);
    if (!check.violations().empty()) {
        std::cout << "capability check: " << check.violations().size() << " violation(s)\n";
        return 1;
    }
    std::cout << "capability check: OK, " << check.claims_verified()
              << " claim(s) backed by existing tests\n";
    return 0;
}
