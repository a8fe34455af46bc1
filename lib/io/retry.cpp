#include <vmrt/io/retry.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdint>
#include <ctime>

namespace vmrt::io {

bool is_retryable_status(unsigned status) noexcept {
    return status == 429 || status == 500 || status == 502 || status == 503 || status == 504;
}

namespace {

std::optional<int> number(std::string_view s) {
    if (s.empty() || s.size() > 9) return std::nullopt;
    int n = 0;
    for (char c : s) {
        if (!std::isdigit(static_cast<unsigned char>(c))) return std::nullopt;
        n = n * 10 + (c - '0');
    }
    return n;
}

// IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" (exactly 29 characters).
std::optional<std::chrono::system_clock::time_point> parse_imf_fixdate(std::string_view v) {
    static constexpr std::array<std::string_view, 12> months{"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                             "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    if (v.size() != 29 || v[3] != ',' || v[4] != ' ' || v[7] != ' ' || v[11] != ' ' || v[16] != ' ' ||
        v[19] != ':' || v[22] != ':' || v[25] != ' ' || v.substr(26) != "GMT")
        return std::nullopt;
    auto day = number(v.substr(5, 2)), year = number(v.substr(12, 4)), hour = number(v.substr(17, 2)),
         minute = number(v.substr(20, 2)), second = number(v.substr(23, 2));
    auto month = std::find(months.begin(), months.end(), v.substr(8, 3));
    if (!day || !year || !hour || !minute || !second || month == months.end()) return std::nullopt;
    if (*day < 1 || *day > 31 || *hour > 23 || *minute > 59 || *second > 60 || *year < 1970)
        return std::nullopt;
    const std::chrono::year_month_day date{
        std::chrono::year(*year), std::chrono::month(static_cast<unsigned>(month - months.begin() + 1)),
        std::chrono::day(static_cast<unsigned>(*day))};
    if (!date.ok()) return std::nullopt;
    return std::chrono::sys_days(date) + std::chrono::hours(*hour) + std::chrono::minutes(*minute) +
           std::chrono::seconds(*second);
}

}  // namespace

std::optional<std::chrono::seconds> parse_retry_after(std::string_view value,
                                                      std::chrono::system_clock::time_point now) {
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
    if (auto seconds = number(value)) return std::chrono::seconds(*seconds);
    if (auto when = parse_imf_fixdate(value)) {
        auto wait = std::chrono::duration_cast<std::chrono::seconds>(*when - now);
        return std::max(wait, std::chrono::seconds(0));
    }
    return std::nullopt;
}

std::chrono::steady_clock::duration retry_delay(const retry_policy& policy, unsigned retry,
                                                std::optional<std::chrono::seconds> retry_after,
                                                double jitter) {
    if (retry_after) return *retry_after;
    jitter = std::clamp(jitter, 0.5, 1.0);
    auto delay = policy.initial_delay;
    for (unsigned i = 1; i < retry && delay < policy.max_delay; ++i) delay *= 2;
    delay = std::min(delay, policy.max_delay);
    return std::chrono::duration_cast<std::chrono::steady_clock::duration>(delay * jitter);
}

}  // namespace vmrt::io
