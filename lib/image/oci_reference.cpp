// Image reference parsing after distribution/reference (the grammar) and Docker's
// ParseNormalizedNamed (the docker.io defaults). Written from the grammar, not ported.
#include "image/oci_text.hpp"

#include <vmrt/error.hpp>
#include <vmrt/image/oci_digest.hpp>
#include <vmrt/image/oci_reference.hpp>

#include <arpa/inet.h>

#include <charconv>

namespace vmrt::image {

namespace {

constexpr std::string_view docker_hub_domain = "docker.io";
constexpr std::string_view docker_hub_registry = "registry-1.docker.io";
constexpr std::size_t max_input_length = 4096;  // far above any valid reference: bounds the work

class reference_parser {
public:
    explicit reference_parser(std::string_view text) : text_(text) {}

    [[noreturn]] void refuse(const std::string& why, errc code = errc::invalid_spec) const {
        detail::fail(code, "invalid image reference " + detail::quoted(text_) + ": " + why, "image");
    }

    image_reference parse() {
        if (text_.empty()) refuse("it is empty");
        if (text_.size() > max_input_length)
            refuse("it is longer than " + std::to_string(max_input_length) + " bytes");
        for (char c : text_)
            if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f)
                refuse("it contains whitespace, a control character or a non-ASCII byte");

        image_reference ref;
        std::string_view rest = text_;
        if (const auto at = rest.find('@'); at != std::string_view::npos) {
            ref.digest = std::string(rest.substr(at + 1));
            rest = rest.substr(0, at);
            check_reference_digest(ref.digest);
        }
        // A ':' after the last '/' starts the tag; earlier ones belong to a registry port.
        const auto colon = rest.rfind(':');
        const auto slash = rest.rfind('/');
        if (colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash)) {
            ref.tag = std::string(rest.substr(colon + 1));
            rest = rest.substr(0, colon);
            check_tag(ref.tag);
        }
        if (rest.empty()) refuse("the repository name is empty");

        std::string_view path = rest;
        const auto first_slash = rest.find('/');
        if (first_slash != std::string_view::npos && is_registry(rest.substr(0, first_slash))) {
            ref.domain = std::string(rest.substr(0, first_slash));
            path = rest.substr(first_slash + 1);
            check_domain(ref.domain);
        } else {
            ref.domain = docker_hub_domain;
        }
        if (ref.domain == "index.docker.io") ref.domain = docker_hub_domain;
        check_path(path);
        ref.repository = std::string(path);
        if (ref.domain == docker_hub_domain && path.find('/') == std::string_view::npos)
            ref.repository = "library/" + ref.repository;
        if (first_slash == std::string_view::npos && ref.digest.empty() && ref.tag.empty() &&
            path.size() == 64 && path.find_first_not_of("0123456789abcdef") == std::string_view::npos)
            refuse("a 64-digit hex string is an image ID, not a repository name");
        const std::string name = ref.name();
        if (name.size() > max_image_name_length)
            refuse("the name " + detail::quoted(name) + " is longer than " +
                   std::to_string(max_image_name_length) + " bytes");
        if (ref.tag.empty() && ref.digest.empty()) ref.tag = "latest";
        return ref;
    }

private:
    static bool is_registry(std::string_view first) {
        if (first == "localhost") return true;
        if (first.find_first_of(".:") != std::string_view::npos) return true;
        for (char c : first)
            if (c >= 'A' && c <= 'Z') return true;  // repositories are lowercase: this must be a host
        return false;
    }

    void check_reference_digest(const std::string& digest) const {
        try {
            check_digest(digest, "the digest");
        } catch (const error& e) {
            refuse(e.diag().message, static_cast<errc>(e.code().value()));
        }
    }

    void check_tag(std::string_view tag) const {
        if (tag.empty()) refuse("the tag after ':' is empty");
        if (tag.size() > max_tag_length)
            refuse("the tag is longer than " + std::to_string(max_tag_length) + " characters");
        const auto word = [](char c) {
            return detail::is_alnum(c) || c == '_';
        };
        if (!word(tag.front()))
            refuse("the tag " + detail::quoted(tag) + " must start with a letter, digit or '_'");
        for (char c : tag)
            if (!word(c) && c != '.' && c != '-')
                refuse("the tag " + detail::quoted(tag) +
                       " may only contain letters, digits, '_', '.' and '-'");
    }

    void check_domain(std::string_view domain) const {
        std::string_view host = domain;
        std::string_view port;
        bool has_port = false;
        if (host.starts_with('[')) {
            const auto close = host.find(']');
            if (close == std::string_view::npos)
                refuse("the registry " + detail::quoted(domain) + " lacks its ']'");
            const std::string address(host.substr(1, close - 1));
            in6_addr parsed{};
            if (address.find_first_not_of("0123456789abcdefABCDEF:.") != std::string::npos ||
                ::inet_pton(AF_INET6, address.c_str(), &parsed) != 1)
                refuse("the registry " + detail::quoted(domain) + " is not a valid bracketed IPv6 address");
            const auto after = host.substr(close + 1);
            if (!after.empty()) {
                if (after.front() != ':')
                    refuse("unexpected text after ']' in the registry " + detail::quoted(domain));
                port = after.substr(1);
                has_port = true;
            }
        } else {
            if (const auto colon = host.find(':'); colon != std::string_view::npos) {
                port = host.substr(colon + 1);
                host = host.substr(0, colon);
                has_port = true;
            }
            check_host_name(host, domain);
        }
        if (has_port) {
            unsigned value = 0;
            const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
            if (port.empty() || port.size() > 5 || ec != std::errc{} || end != port.data() + port.size() ||
                value == 0 || value > 65535)
                refuse("the registry " + detail::quoted(domain) + " has an invalid port (1 to 65535)");
        }
    }

    /// domain-component ( "." domain-component )*, domain-component = [A-Za-z0-9] ([A-Za-z0-9-]*
    /// [A-Za-z0-9])?
    void check_host_name(std::string_view host, std::string_view domain) const {
        if (host.empty()) refuse("the registry " + detail::quoted(domain) + " has an empty host name");
        std::size_t start = 0;
        while (true) {
            const auto dot = host.find('.', start);
            const auto label = host.substr(start, dot == std::string_view::npos ? host.npos : dot - start);
            if (label.empty() || !detail::is_alnum(label.front()) || !detail::is_alnum(label.back()))
                refuse("the registry host " + detail::quoted(host) +
                       " is not a valid host name (labels of letters, digits and inner '-', joined by '.')");
            for (char c : label)
                if (!detail::is_alnum(c) && c != '-')
                    refuse("the registry host " + detail::quoted(host) + " contains " +
                           detail::quoted({&c, 1}));
            if (dot == std::string_view::npos) break;
            start = dot + 1;
        }
    }

    void check_path(std::string_view path) const {
        std::size_t start = 0;
        while (true) {
            const auto slash = path.find('/', start);
            check_component(path.substr(start, slash == std::string_view::npos ? path.npos : slash - start));
            if (slash == std::string_view::npos) break;
            start = slash + 1;
        }
    }

    /// [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
    void check_component(std::string_view component) const {
        if (component.empty()) refuse("the repository has an empty path component ('//' or a '/' at an end)");
        for (char c : component)
            if (c >= 'A' && c <= 'Z') refuse("repository names must be lowercase");
        const auto bad = [&](const std::string& why) {
            refuse("the repository path component " + detail::quoted(component) + " " + why);
        };
        if (!detail::is_lower_alnum(component.front()) || !detail::is_lower_alnum(component.back()))
            bad("must start and end with a lowercase letter or digit");
        for (std::size_t i = 0; i < component.size();) {
            const char c = component[i];
            if (detail::is_lower_alnum(c)) {
                ++i;
                continue;
            }
            std::size_t j = i;
            while (j < component.size() && !detail::is_lower_alnum(component[j])) ++j;
            const auto separator = component.substr(i, j - i);
            const bool ok = separator == "." || separator == "_" || separator == "__" ||
                            separator.find_first_not_of('-') == std::string_view::npos;
            if (!ok)
                bad("has the separator " + detail::quoted(separator) +
                    " (allowed: '.', '_', '__' or a run of '-'; other characters are not allowed)");
            i = j;
        }
    }

    std::string_view text_;
};

}  // namespace

std::string image_reference::registry_host() const {
    return domain == docker_hub_domain ? std::string(docker_hub_registry) : domain;
}

std::string image_reference::registry_url() const { return "https://" + registry_host(); }

std::string image_reference::name() const { return domain + "/" + repository; }

std::string image_reference::to_string() const {
    std::string out = name();
    if (!tag.empty()) out += ":" + tag;
    if (!digest.empty()) out += "@" + digest;
    return out;
}

image_reference parse_image_reference(std::string_view text) { return reference_parser(text).parse(); }

}  // namespace vmrt::image
