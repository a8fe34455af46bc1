// Certificates for TLS tests, made with the `openssl` command in the test's own directory: a CA
// the test trusts explicitly, and server certificates that are valid, expired, signed by an
// unknown CA, or issued for another name. Never touches the system trust store.
#pragma once

#include <filesystem>

namespace vmrt::test {

struct tls_pair {
    std::filesystem::path cert;  ///< PEM certificate
    std::filesystem::path key;   ///< PEM private key (unencrypted)
};

struct test_pki {
    std::filesystem::path ca_cert;  ///< the CA to trust (ca_file)
    std::filesystem::path ca_key;   ///< its private key (EC P-256; signs the registry's test tokens)
    tls_pair valid;                 ///< CN/SAN localhost and 127.0.0.1, signed by ca_cert
    tls_pair expired;               ///< same names and CA, notAfter in the past
    tls_pair unknown_ca;            ///< same names, signed by a CA nobody trusts
    tls_pair wrong_name;            ///< signed by ca_cert, but only for "other.invalid"
};

/// Writes the whole set into `dir` (created if needed). Throws std::runtime_error with
/// openssl's output if a step fails.
test_pki make_test_pki(const std::filesystem::path& dir);

}  // namespace vmrt::test
