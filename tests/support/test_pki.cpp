#include "support/test_pki.hpp"

#include "support/test_support.hpp"

#include <vmrt/io/process.hpp>

#include <boost/asio/io_context.hpp>

#include <stdexcept>
#include <string>
#include <vector>

namespace vmrt::test {
namespace {

namespace fs = std::filesystem;

/// Runs openssl with `args` in `dir` and waits (at most 60 s) for a zero exit.
void openssl(const fs::path& dir, std::vector<std::string> args) {
    boost::asio::io_context ctx;
    io::process_options opts;
    opts.program = "openssl";
    opts.args = std::move(args);
    opts.working_dir = dir;
    opts.log_file = dir / "openssl.log";
    auto proc = io::process::spawn(ctx.get_executor(), opts);
    std::optional<exit_status> status;
    proc.async_wait([&](error_code, exit_status s) { status = s; });
    ctx.run_for(std::chrono::seconds(60));
    if (!status || status->signaled || status->code != 0) {
        std::string command = "openssl";
        for (const auto& a : opts.args) command += " " + a;
        throw std::runtime_error(command + " failed: " + io::read_file_tail(dir / "openssl.log", 2000));
    }
}

std::vector<std::string> new_key_args(const std::string& key) {
    return {"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key};
}

void make_ca(const fs::path& dir, const std::string& name, const std::string& cn) {
    auto args = strings("req", "-x509");
    auto key = new_key_args(name + ".key");
    args.insert(args.end(), key.begin(), key.end());
    for (auto a :
         strings("-out", name + ".pem", "-days", "2", "-subj", "/CN=" + cn, "-addext",
                 "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"))
        args.push_back(a);
    openssl(dir, args);
}

/// A server certificate for `san` signed by `ca`, valid for `days` (negative: already expired).
tls_pair make_leaf(const fs::path& dir, const std::string& name, const std::string& ca,
                   const std::string& san, int days, int serial) {
    auto req = strings("req");
    auto key = new_key_args(name + ".key");
    req.insert(req.end(), key.begin(), key.end());
    for (auto a : strings("-out", name + ".csr", "-subj", "/CN=vmrt test server")) req.push_back(a);
    openssl(dir, req);
    write_file(dir / (name + ".ext"), "subjectAltName=" + san + "\nextendedKeyUsage=serverAuth\n");
    openssl(dir, strings("x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey", ca + ".key",
                         "-set_serial", std::to_string(serial), "-days", std::to_string(days), "-extfile",
                         name + ".ext", "-out", name + ".pem"));
    return {dir / (name + ".pem"), dir / (name + ".key")};
}

}  // namespace

test_pki make_test_pki(const fs::path& dir) {
    fs::create_directories(dir);
    make_ca(dir, "ca", "vmrt test CA");
    make_ca(dir, "other-ca", "vmrt untrusted CA");
    const std::string names = "DNS:localhost,IP:127.0.0.1";
    test_pki pki;
    pki.ca_cert = dir / "ca.pem";
    pki.ca_key = dir / "ca.key";
    pki.valid = make_leaf(dir, "valid", "ca", names, 2, 1);
    pki.expired = make_leaf(dir, "expired", "ca", names, -1, 2);
    pki.unknown_ca = make_leaf(dir, "unknown-ca", "other-ca", names, 2, 3);
    pki.wrong_name = make_leaf(dir, "wrong-name", "ca", "DNS:other.invalid", 2, 4);
    return pki;
}

}  // namespace vmrt::test
