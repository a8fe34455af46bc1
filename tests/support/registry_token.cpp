#include "support/registry_token.hpp"

#include <boost/beast/core/detail/base64.hpp>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cstdio>
#include <memory>
#include <random>
#include <stdexcept>

namespace vmrt::test {
namespace json = boost::json;
namespace {

std::string base64(std::string_view bytes) {
    std::string out(boost::beast::detail::base64::encoded_size(bytes.size()), '\0');
    out.resize(boost::beast::detail::base64::encode(out.data(), bytes.data(), bytes.size()));
    return out;
}

/// RFC 7515 base64url without padding.
std::string base64url(std::string_view bytes) {
    std::string out = base64(bytes);
    while (!out.empty() && out.back() == '=') out.pop_back();
    for (auto& c : out) c = c == '+' ? '-' : c == '/' ? '_' : c;
    return out;
}

struct file_closer {
    void operator()(FILE* f) const noexcept { std::fclose(f); }
};
using file_ptr = std::unique_ptr<FILE, file_closer>;

file_ptr open_pem(const std::filesystem::path& p) {
    file_ptr f{std::fopen(p.c_str(), "rb")};
    if (!f) throw std::runtime_error("cannot open " + p.string());
    return f;
}

/// The DER of the CA certificate, for the x5c header.
std::string certificate_der(const std::filesystem::path& pem) {
    auto f = open_pem(pem);
    std::unique_ptr<X509, decltype(&X509_free)> cert{PEM_read_X509(f.get(), nullptr, nullptr, nullptr),
                                                     X509_free};
    if (!cert) throw std::runtime_error("cannot read the certificate " + pem.string());
    unsigned char* der = nullptr;
    const int n = i2d_X509(cert.get(), &der);
    if (n <= 0) throw std::runtime_error("cannot encode the certificate " + pem.string());
    std::string out(reinterpret_cast<const char*>(der), static_cast<std::size_t>(n));
    OPENSSL_free(der);
    return out;
}

/// ES256: ECDSA P-256 over SHA-256, the signature as r||s (32 bytes each), not DER.
std::string es256_sign(const std::filesystem::path& key_pem, const std::string& input) {
    auto f = open_pem(key_pem);
    std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key{
        PEM_read_PrivateKey(f.get(), nullptr, nullptr, nullptr), EVP_PKEY_free};
    if (!key) throw std::runtime_error("cannot read the key " + key_pem.string());
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx{EVP_MD_CTX_new(), EVP_MD_CTX_free};
    std::size_t len = 0;
    if (EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.get()) != 1 ||
        EVP_DigestSign(ctx.get(), nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()),
                       input.size()) != 1)
        throw std::runtime_error("ES256 signing failed to start");
    std::string der(len, '\0');
    if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(der.data()), &len,
                       reinterpret_cast<const unsigned char*>(input.data()), input.size()) != 1)
        throw std::runtime_error("ES256 signing failed");
    const auto* p = reinterpret_cast<const unsigned char*>(der.data());
    std::unique_ptr<ECDSA_SIG, decltype(&ECDSA_SIG_free)> sig{
        d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(len)), ECDSA_SIG_free};
    if (!sig) throw std::runtime_error("ES256: cannot decode the signature");
    std::string raw(64, '\0');
    if (BN_bn2binpad(ECDSA_SIG_get0_r(sig.get()), reinterpret_cast<unsigned char*>(raw.data()), 32) != 32 ||
        BN_bn2binpad(ECDSA_SIG_get0_s(sig.get()), reinterpret_cast<unsigned char*>(raw.data()) + 32, 32) !=
            32)
        throw std::runtime_error("ES256: signature is not P-256");
    return raw;
}

}  // namespace

std::string make_registry_token(const registry_server& reg, const registry_token_claims& claims) {
    const auto& auth = reg.options().token_auth;
    if (!auth) throw std::runtime_error("make_registry_token: the registry has no token auth");
    json::object header{{"alg", "ES256"},
                        {"typ", "JWT"},
                        {"x5c", json::array{json::value(base64(certificate_der(reg.pki().ca_cert)))}}};
    json::array access;
    for (const auto& g : claims.access) {
        json::array actions;
        for (const auto& a : g.actions) actions.push_back(json::value(a));
        access.push_back(
            json::object{{"type", "repository"}, {"name", g.repository}, {"actions", std::move(actions)}});
    }
    const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::system_clock::now().time_since_epoch() + claims.clock_offset)
                         .count();
    std::random_device rd;
    json::object body{{"iss", auth->issuer},
                      {"sub", claims.subject},
                      {"aud", auth->service},
                      {"iat", now},
                      {"nbf", now - 5},
                      {"exp", now + claims.lifetime.count()},
                      {"jti", std::to_string(rd()) + std::to_string(rd())},
                      {"access", std::move(access)}};
    const std::string input = base64url(json::serialize(header)) + "." + base64url(json::serialize(body));
    return input + "." + base64url(es256_sign(reg.pki().ca_key, input));
}

std::string token_endpoint_server_block(const registry_server& reg, std::uint16_t port,
                                        const std::string& token) {
    return "  server {\n    listen 127.0.0.1:" + std::to_string(port) + " ssl;\n    ssl_certificate " +
           reg.pki().valid.cert.string() + ";\n    ssl_certificate_key " + reg.pki().valid.key.string() +
           ";\n    location = /token { default_type application/json; return 200 '{\"token\":\"" + token +
           "\",\"expires_in\":300}'; }\n  }\n";
}

}  // namespace vmrt::test
