// WWW-Authenticate parsing (RFC 7235), the bearer token URL and the token response.
#include "image/oci_text.hpp"
#include "strict_json.hpp"

#include <vmrt/error.hpp>
#include <vmrt/image/www_authenticate.hpp>

#include <boost/json.hpp>

#include <cmath>

namespace vmrt::image {

namespace {

bool is_tchar(char c) noexcept {
    return detail::is_alnum(c) || std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token68_char(char c) noexcept {
    return detail::is_alnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/';
}

bool is_space(char c) noexcept { return c == ' ' || c == '\t'; }

class challenge_parser {
public:
    explicit challenge_parser(std::string_view text) : text_(text) {}

    std::vector<auth_challenge> parse() {
        if (text_.size() > max_challenge_header_length)
            detail::fail(errc::protocol_error, "WWW-Authenticate header is longer than " +
                                                   std::to_string(max_challenge_header_length) + " bytes");
        std::vector<auth_challenge> out;
        while (true) {
            skip_separators();
            if (at_end()) break;
            out.push_back(parse_challenge());
        }
        return out;
    }

private:
    [[noreturn]] void refuse(const std::string& why) const {
        detail::fail(errc::protocol_error, "malformed WWW-Authenticate header " + detail::quoted(text_, 300) +
                                               " at byte " + std::to_string(pos_) + ": " + why);
    }

    bool at_end() const noexcept { return pos_ >= text_.size(); }
    char peek() const noexcept { return text_[pos_]; }

    std::size_t skip_spaces() {
        const std::size_t start = pos_;
        while (!at_end() && is_space(peek())) ++pos_;
        return pos_ - start;
    }

    void skip_separators() {
        while (!at_end() && (is_space(peek()) || peek() == ',')) ++pos_;
    }

    std::string_view token_at(std::size_t p) const {
        std::size_t end = p;
        while (end < text_.size() && is_tchar(text_[end])) ++end;
        return text_.substr(p, end - p);
    }

    /// token BWS "=" BWS (token | quoted-string) starts at `p`.
    bool param_starts_at(std::size_t p) const {
        const auto name = token_at(p);
        if (name.empty()) return false;
        p += name.size();
        while (p < text_.size() && is_space(text_[p])) ++p;
        if (p >= text_.size() || text_[p] != '=') return false;
        ++p;
        while (p < text_.size() && is_space(text_[p])) ++p;
        return p < text_.size() && (is_tchar(text_[p]) || text_[p] == '"') && text_[p] != '=';
    }

    auth_challenge parse_challenge() {
        const auto scheme = token_at(pos_);
        if (scheme.empty())
            refuse("expected an authentication scheme, found " + detail::quoted(text_.substr(pos_, 1)));
        pos_ += scheme.size();
        auth_challenge ch;
        ch.scheme = detail::ascii_lowercase(scheme);
        const std::size_t spaces = skip_spaces();
        if (at_end() || peek() == ',') return ch;
        if (spaces == 0) refuse("expected a space after the scheme " + detail::quoted(scheme));
        if (param_starts_at(pos_)) {
            parse_params(ch);
        } else {
            parse_token68(ch);
        }
        return ch;
    }

    void parse_token68(auth_challenge& ch) {
        const std::size_t start = pos_;
        while (!at_end() && is_token68_char(peek())) ++pos_;
        if (pos_ == start)
            refuse("expected a token68 or parameters after the scheme " + detail::quoted(ch.scheme));
        while (!at_end() && peek() == '=') ++pos_;
        ch.token68 = std::string(text_.substr(start, pos_ - start));
        skip_spaces();
        if (!at_end() && peek() != ',') refuse("expected ',' or the end after a token68");
    }

    void parse_params(auth_challenge& ch) {
        while (true) {
            const auto raw_name = token_at(pos_);
            pos_ += raw_name.size();
            skip_spaces();
            ++pos_;  // '=' (param_starts_at checked it)
            skip_spaces();
            std::string value;
            if (peek() == '"') {
                value = quoted_string();
            } else {
                value = std::string(token_at(pos_));
                pos_ += value.size();
            }
            std::string name = detail::ascii_lowercase(raw_name);
            if (ch.params.contains(name))
                refuse("the parameter " + detail::quoted(name) + " occurs twice in one challenge");
            ch.params.emplace(std::move(name), std::move(value));
            skip_spaces();
            if (at_end()) return;
            if (peek() != ',')
                refuse("expected ',' after a parameter, found " + detail::quoted(text_.substr(pos_, 1)));
            skip_separators();
            if (at_end() || !param_starts_at(pos_)) return;  // the next challenge (or nothing) follows
        }
    }

    std::string quoted_string() {
        ++pos_;  // opening quote
        std::string out;
        while (true) {
            if (at_end()) refuse("unterminated quoted string");
            const char c = text_[pos_++];
            const auto u = static_cast<unsigned char>(c);
            if (c == '"') return out;
            if (c == '\\') {
                if (at_end()) refuse("unterminated quoted string (ends with '\\')");
                const auto e = static_cast<unsigned char>(text_[pos_]);
                if (e != '\t' && (e < 0x20 || e == 0x7f))
                    refuse("control character escaped in a quoted string");
                out += text_[pos_++];
                continue;
            }
            if (u != '\t' && (u < 0x20 || u == 0x7f)) {
                --pos_;
                refuse("control character in a quoted string");
            }
            out += c;
        }
    }

    std::string_view text_;
    std::size_t pos_ = 0;
};

/// "2024-05-01T12:34:56Z", "2024-05-01T12:34:56.123456789+02:00" (RFC 3339 date-time).
std::optional<std::chrono::sys_seconds> parse_rfc3339(std::string_view s) {
    const auto num = [&](std::size_t at, std::size_t len, int& out) {
        if (at + len > s.size()) return false;
        out = 0;
        for (std::size_t i = at; i < at + len; ++i) {
            if (!detail::is_digit(s[i])) return false;
            out = out * 10 + (s[i] - '0');
        }
        return true;
    };
    int y, mo, d, h, mi, se;
    if (!num(0, 4, y) || s.size() < 20 || s[4] != '-' || !num(5, 2, mo) || s[7] != '-' || !num(8, 2, d) ||
        (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || !num(11, 2, h) || s[13] != ':' || !num(14, 2, mi) ||
        s[16] != ':' || !num(17, 2, se))
        return std::nullopt;
    std::size_t p = 19;
    if (p < s.size() && s[p] == '.') {
        ++p;
        const std::size_t start = p;
        while (p < s.size() && detail::is_digit(s[p])) ++p;
        if (p == start) return std::nullopt;
    }
    int offset_minutes = 0;
    if (p < s.size() && (s[p] == 'Z' || s[p] == 'z')) {
        ++p;
    } else if (p < s.size() && (s[p] == '+' || s[p] == '-')) {
        int oh, om;
        if (!num(p + 1, 2, oh) || p + 3 >= s.size() || s[p + 3] != ':' || !num(p + 4, 2, om) || oh > 23 ||
            om > 59)
            return std::nullopt;
        offset_minutes = (s[p] == '+' ? 1 : -1) * (oh * 60 + om);
        p += 6;
    } else {
        return std::nullopt;
    }
    if (p != s.size()) return std::nullopt;
    const std::chrono::year_month_day date{std::chrono::year(y),
                                           std::chrono::month(static_cast<unsigned>(mo)),
                                           std::chrono::day(static_cast<unsigned>(d))};
    if (!date.ok() || h > 23 || mi > 59 || se > 60) return std::nullopt;  // 60: a leap second
    return std::chrono::sys_days(date) + std::chrono::hours(h) + std::chrono::minutes(mi - offset_minutes) +
           std::chrono::seconds(se);
}

[[noreturn]] void bad_token_response(const std::string& why) {
    detail::fail(errc::protocol_error, "invalid token response: " + why);
}

std::string string_field(const boost::json::object& o, std::string_view key) {
    const auto* v = o.if_contains(key);
    if (v == nullptr || v->is_null()) return {};
    if (!v->is_string()) bad_token_response("\"" + std::string(key) + "\" is not a string");
    return std::string(v->get_string());
}

}  // namespace

std::optional<std::string> auth_challenge::param(std::string_view name) const {
    const auto it = params.find(detail::ascii_lowercase(name));
    if (it == params.end()) return std::nullopt;
    return it->second;
}

std::vector<auth_challenge> parse_www_authenticate(std::string_view header_value) {
    return challenge_parser(header_value).parse();
}

const auth_challenge* find_challenge(const std::vector<auth_challenge>& challenges, std::string_view scheme) {
    for (const auto& ch : challenges)
        if (detail::iequals(ch.scheme, scheme)) return &ch;
    return nullptr;
}

std::string pull_scope(std::string_view repository) {
    return "repository:" + std::string(repository) + ":pull";
}

std::string percent_encode(std::string_view text) {
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out;
    for (char c : text) {
        if (detail::is_alnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
            out += c;
        } else {
            const auto u = static_cast<unsigned char>(c);
            out += '%';
            out += hex[u >> 4];
            out += hex[u & 15];
        }
    }
    return out;
}

io::https_url bearer_token_url(const auth_challenge& challenge, const std::vector<std::string>& scopes) {
    if (challenge.scheme != "bearer")
        detail::fail(errc::protocol_error,
                     "a token URL needs a Bearer challenge, not " + detail::quoted(challenge.scheme));
    const auto realm = challenge.param("realm");
    if (!realm || realm->empty()) detail::fail(errc::protocol_error, "the Bearer challenge has no realm");
    std::string why;
    const auto base = io::try_parse_https_url(*realm, why);
    if (!base)
        detail::fail(errc::protocol_error,
                     "the Bearer realm " + detail::quoted(*realm) + " is refused: " + why);

    std::vector<std::string> all_scopes = scopes;
    if (all_scopes.empty()) {
        const std::string from_challenge = challenge.param("scope").value_or("");
        std::size_t start = 0;
        while (start < from_challenge.size()) {
            auto end = from_challenge.find(' ', start);
            if (end == std::string::npos) end = from_challenge.size();
            if (end > start) all_scopes.push_back(from_challenge.substr(start, end - start));
            start = end + 1;
        }
    }
    std::string query;
    const auto add = [&](std::string_view name, std::string_view value) {
        if (!query.empty()) query += '&';
        query += std::string(name) + "=" + percent_encode(value);
    };
    if (const auto service = challenge.param("service")) add("service", *service);
    for (const auto& scope : all_scopes) add("scope", scope);

    std::string url = base->str();
    if (!query.empty()) {
        const auto q = url.find('?');
        if (q == std::string::npos)
            url += '?';
        else if (url.back() != '?' && url.back() != '&')
            url += '&';
        url += query;
    }
    auto result = io::try_parse_https_url(url, why);
    if (!result)
        detail::fail(errc::protocol_error,
                     "cannot build a token URL from the realm " + detail::quoted(*realm) + ": " + why);
    return *result;
}

bearer_token parse_token_response(std::string_view body) {
    if (body.size() > max_token_response_length)
        bad_token_response("the body is longer than " + std::to_string(max_token_response_length) + " bytes");
    auto parsed = vmrt::detail::parse_json_strictly(body);
    // The parser's message names a position, never the content: safe to show.
    if (!parsed) bad_token_response(parsed.error());
    if (!parsed->is_object()) bad_token_response("the body is not a JSON object");
    const auto& o = parsed->get_object();
    bearer_token out;
    out.token = string_field(o, "token");
    if (out.token.empty()) out.token = string_field(o, "access_token");
    if (out.token.empty()) bad_token_response("it has neither \"token\" nor \"access_token\"");
    for (char c : out.token)
        if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f)
            bad_token_response("the token contains a byte that cannot go into an Authorization header");
    out.refresh_token = string_field(o, "refresh_token");

    out.expires_in = std::chrono::seconds(60);
    if (const auto* v = o.if_contains("expires_in"); v != nullptr && !v->is_null()) {
        double seconds = -1;
        if (v->is_int64())
            seconds = static_cast<double>(v->get_int64());
        else if (v->is_uint64())
            seconds = static_cast<double>(v->get_uint64());
        else if (v->is_double() && std::floor(v->get_double()) == v->get_double())
            seconds = v->get_double();
        else
            bad_token_response("\"expires_in\" is not a whole number of seconds");
        if (seconds < 0 || seconds > 1e10) bad_token_response("\"expires_in\" is out of range");
        if (seconds > 0) out.expires_in = std::chrono::seconds(static_cast<std::int64_t>(seconds));
    }
    const std::string issued = string_field(o, "issued_at");
    if (!issued.empty()) {
        out.issued_at = parse_rfc3339(issued);
        if (!out.issued_at)
            bad_token_response("\"issued_at\" " + detail::quoted(issued, 40) + " is not an RFC 3339 time");
    }
    return out;
}

}  // namespace vmrt::image
