#include "testpeers/throwaway_cert.hpp"

#include <fstream>
#include <memory>
#include <random>
#include <stdexcept>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace budstikke::testpeers {
namespace {

template <class T, void (*Free)(T*)>
struct deleter {
  void operator()(T* p) const noexcept { Free(p); }
};
using key_ptr = std::unique_ptr<EVP_PKEY, deleter<EVP_PKEY, EVP_PKEY_free>>;
using x509_ptr = std::unique_ptr<X509, deleter<X509, X509_free>>;
using bio_ptr = std::unique_ptr<BIO, deleter<BIO, BIO_free_all>>;

void check(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(std::string("throwaway certificate: ") + what + " failed");
}

key_ptr new_key() {
  key_ptr key(EVP_EC_gen("prime256v1"));  // fast to make, and every TLS 1.2+ peer takes it
  check(key != nullptr, "EVP_EC_gen");
  return key;
}

std::string to_pem(X509* cert) {
  bio_ptr bio(BIO_new(BIO_s_mem()));
  check(bio && PEM_write_bio_X509(bio.get(), cert) == 1, "PEM_write_bio_X509");
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

std::string to_pem(EVP_PKEY* key) {
  bio_ptr bio(BIO_new(BIO_s_mem()));
  check(bio && PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) == 1,
        "PEM_write_bio_PrivateKey");
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

x509_ptr read_cert(const std::string& pem) {
  bio_ptr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  x509_ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  check(cert != nullptr, "PEM_read_bio_X509");
  return cert;
}

key_ptr read_key(const std::string& pem) {
  bio_ptr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  key_ptr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  check(key != nullptr, "PEM_read_bio_PrivateKey");
  return key;
}

void add_extension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  check(ext != nullptr, "X509V3_EXT_conf_nid");
  int ok = X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  check(ok == 1, "X509_add_ext");
}

// A certificate for `key` named `cn`, valid over [from, until] relative to now, not yet signed.
x509_ptr new_cert(EVP_PKEY* key, const std::string& cn, std::chrono::seconds from, std::chrono::seconds until) {
  x509_ptr cert(X509_new());
  check(cert != nullptr, "X509_new");
  X509_set_version(cert.get(), 2);
  std::random_device rd;
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), static_cast<long>(rd() & 0x7fffffff));
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), static_cast<long>(from.count()));
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), static_cast<long>(until.count()));
  check(X509_set_pubkey(cert.get(), key) == 1, "X509_set_pubkey");
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("budstikke test"),
                             -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn.c_str()), -1,
                             -1, 0);
  return cert;
}

}  // namespace

pem_pair make_test_ca(std::string_view name) {
  key_ptr key = new_key();
  x509_ptr cert = new_cert(key.get(), std::string(name), std::chrono::hours(-1), std::chrono::hours(24 * 30));
  X509_set_issuer_name(cert.get(), X509_get_subject_name(cert.get()));
  add_extension(cert.get(), cert.get(), NID_basic_constraints, "critical,CA:TRUE");
  add_extension(cert.get(), cert.get(), NID_key_usage, "critical,keyCertSign,cRLSign");
  add_extension(cert.get(), cert.get(), NID_subject_key_identifier, "hash");
  check(X509_sign(cert.get(), key.get(), EVP_sha256()) > 0, "X509_sign");
  return {to_pem(cert.get()), to_pem(key.get())};
}

pem_pair make_test_certificate(const cert_spec& spec, const pem_pair* issuer) {
  key_ptr key = new_key();
  x509_ptr cert = new_cert(key.get(), spec.common_name, spec.valid_from, spec.valid_until);
  x509_ptr issuer_cert;
  key_ptr issuer_key;
  if (issuer != nullptr) {
    issuer_cert = read_cert(issuer->cert);
    issuer_key = read_key(issuer->key);
  }
  X509* signer = issuer ? issuer_cert.get() : cert.get();
  X509_set_issuer_name(cert.get(), X509_get_subject_name(signer));
  std::string san;
  for (const auto& d : spec.dns_names) san += (san.empty() ? "DNS:" : ",DNS:") + d;
  for (const auto& ip : spec.ip_addresses) san += (san.empty() ? "IP:" : ",IP:") + ip;
  add_extension(cert.get(), signer, NID_basic_constraints, "critical,CA:FALSE");
  add_extension(cert.get(), signer, NID_ext_key_usage, spec.extended_key_usage);
  if (!san.empty()) add_extension(cert.get(), signer, NID_subject_alt_name, san);
  check(X509_sign(cert.get(), issuer ? issuer_key.get() : key.get(), EVP_sha256()) > 0, "X509_sign");
  return {to_pem(cert.get()), to_pem(key.get())};
}

void write_pem_files(const pem_pair& pair, const std::filesystem::path& cert_file,
                     const std::filesystem::path& key_file) {
  std::ofstream(cert_file, std::ios::binary) << pair.cert;
  std::ofstream key(key_file, std::ios::binary);
  key << pair.key;
  check(key.good(), "writing the key file");
}

}  // namespace budstikke::testpeers
