#include "support/tls.hpp"

#include <stdexcept>

#include <boost/asio/ip/address.hpp>
#include <fmt/format.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

namespace budstikke::support {
namespace asio = boost::asio;

namespace {

// The verify result of a failed handshake (an X509_V_ERR_* value), as OpenSSL words it.
class tls_verify_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "budstikke.tls_verify"; }
  std::string message(int ev) const override {
    return fmt::format("certificate verify failed: {}", X509_verify_cert_error_string(ev));
  }
};

const std::error_category& tls_verify_category() {
  static const tls_verify_category_impl category;
  return category;
}

void loaded(std::string_view who, std::string_view what, const std::string& file, boost::system::error_code ec) {
  if (ec) throw std::runtime_error(fmt::format("{}: cannot load the {} '{}': {}", who, what, file, ec.message()));
}

}  // namespace

asio::ssl::context make_tls_client_context(const tls_client_options& o, std::string_view who) {
  asio::ssl::context ctx(asio::ssl::context::tls_client);
  SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION);
  boost::system::error_code ec;
  if (!o.ca_file.empty()) {
    ctx.load_verify_file(o.ca_file, ec);
    loaded(who, "CA file", o.ca_file, ec);
  } else {
    ctx.set_default_verify_paths(ec);
    if (ec) throw std::runtime_error(fmt::format("{}: cannot load the system's CA store: {}", who, ec.message()));
  }
  if (!o.cert_file.empty()) {
    ctx.use_certificate_chain_file(o.cert_file, ec);
    loaded(who, "client certificate", o.cert_file, ec);
    const auto& key_file = o.key_file.empty() ? o.cert_file : o.key_file;  // one PEM may hold both
    ctx.use_private_key_file(key_file, asio::ssl::context::pem, ec);
    loaded(who, "client key", key_file, ec);
  }
  ctx.set_verify_mode(o.verify ? asio::ssl::verify_peer : asio::ssl::verify_none);
  return ctx;
}

bool set_tls_peer_name(SSL* ssl, const std::string& name, bool verify) {
  boost::system::error_code ec;
  asio::ip::make_address(name, ec);
  const bool is_ip = !ec;
  // RFC 6066: SNI carries host names only, never addresses.
  if (!is_ip && SSL_set_tlsext_host_name(ssl, name.c_str()) != 1) return false;
  if (!verify) return true;
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
  return (is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str())
                : X509_VERIFY_PARAM_set1_host(param, name.c_str(), 0)) == 1;
}

std::error_code tls_handshake_error(SSL* ssl, boost::system::error_code ec) {
  const long verify = SSL_get_verify_result(ssl);
  if (verify != X509_V_OK) return {static_cast<int>(verify), tls_verify_category()};
  return ec;
}

}  // namespace budstikke::support
