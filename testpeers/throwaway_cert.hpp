// Throwaway X.509 certificates for the TLS tests and `budstikke bench --tls`: a private CA and
// the leaf certificates it issues (or self-signed ones), valid, expired or for another name.
// Never for production: the keys live in memory and in whatever files the caller writes.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace budstikke::testpeers {

struct pem_pair {
  std::string cert;  // PEM certificate
  std::string key;   // PEM private key (unencrypted)
};

struct cert_spec {
  std::string common_name = "localhost";
  std::vector<std::string> dns_names{"localhost"};
  std::vector<std::string> ip_addresses{"127.0.0.1"};
  // Validity relative to now; a negative valid_until makes an expired certificate.
  std::chrono::seconds valid_from{-3600}, valid_until{86400};
  std::string extended_key_usage = "serverAuth";  // "clientAuth" for a client's certificate
};

// A self-signed CA certificate (basicConstraints CA:TRUE). Throws std::runtime_error.
pem_pair make_test_ca(std::string_view name);
// A server certificate for `spec`, signed by `issuer`, or self-signed when issuer is nullptr.
pem_pair make_test_certificate(const cert_spec& spec, const pem_pair* issuer);
void write_pem_files(const pem_pair& pair, const std::filesystem::path& cert_file,
                     const std::filesystem::path& key_file);

}  // namespace budstikke::testpeers
