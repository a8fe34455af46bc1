// A stand-in for libFuzzer's driver so that every fuzz target also runs in the ordinary test
// suite (g++, no clang needed): it replays the seed corpus, then feeds a fixed number of
// deterministic mutations of it (byte flips, insertions, deletions, truncations, splices).
// With clang, configure with -DVMRT_BUILD_FUZZERS=ON to get real coverage-guided fuzzers instead.
//
// Usage: fuzz_<target> [--iterations N] [--seed S] CORPUS_FILE_OR_DIR...
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

std::string read_all(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

void run_one(const std::string& input) {
    LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(input.data()), input.size());
}

std::string mutate(std::string s, const std::vector<std::string>& corpus, std::mt19937_64& rng) {
    auto pick = [&](std::size_t n) {
        return n == 0 ? 0 : static_cast<std::size_t>(rng() % n);
    };
    static const char interesting[] = "\0\n\r\"\\{}[]:,-0123456789.eE+ \xff\x80/=VMRS_READY";
    const int edits = 1 + static_cast<int>(rng() % 8);
    for (int e = 0; e < edits; ++e) {
        switch (rng() % 6) {
        case 0:  // flip a bit
            if (!s.empty()) s[pick(s.size())] ^= static_cast<char>(1u << (rng() % 8));
            break;
        case 1:  // insert an interesting byte
            s.insert(s.begin() + static_cast<std::ptrdiff_t>(pick(s.size() + 1)),
                     interesting[pick(sizeof interesting - 1)]);
            break;
        case 2:  // delete a range
            if (!s.empty()) {
                auto at = pick(s.size());
                s.erase(at, 1 + pick(std::min<std::size_t>(16, s.size() - at)));
            }
            break;
        case 3:  // truncate
            s.resize(pick(s.size() + 1));
            break;
        case 4: {  // splice a piece of another corpus entry
            const auto& other = corpus[pick(corpus.size())];
            if (!other.empty()) {
                auto from = pick(other.size());
                s.insert(pick(s.size() + 1), other.substr(from, 1 + pick(other.size() - from)));
            }
            break;
        }
        default:  // duplicate a range (deep nesting, long lines)
            if (!s.empty()) {
                auto at = pick(s.size());
                auto piece = s.substr(at, 1 + pick(std::min<std::size_t>(64, s.size() - at)));
                for (int k = 0, n = 1 + static_cast<int>(rng() % 16); k < n; ++k) s.insert(at, piece);
            }
        }
    }
    return s;
}

}  // namespace

int main(int argc, char** argv) {
    long iterations = 20000;
    std::uint64_t seed = 1;
    std::vector<std::string> corpus;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--iterations" && i + 1 < argc)
            iterations = std::atol(argv[++i]);
        else if (a == "--seed" && i + 1 < argc)
            seed = std::strtoull(argv[++i], nullptr, 10);
        else if (std::filesystem::is_directory(a)) {
            for (auto& e : std::filesystem::directory_iterator(a))
                if (e.is_regular_file()) corpus.push_back(read_all(e.path()));
        } else
            corpus.push_back(read_all(a));
    }
    if (corpus.empty()) corpus.emplace_back();
    for (auto& c : corpus) run_one(c);
    std::mt19937_64 rng(seed);
    for (long i = 0; i < iterations; ++i) run_one(mutate(corpus[rng() % corpus.size()], corpus, rng));
    std::printf("%zu seeds and %ld mutations ran without a crash\n", corpus.size(), iterations);
    return 0;
}
