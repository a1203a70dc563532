// Client-side TLS, one way for every peer the engine verifies (the SMTP relays, Redis): the
// context and its trust store, the name the peer's certificate must carry, and why a handshake
// failed.
#pragma once

#include <string>
#include <string_view>
#include <system_error>

#include <boost/asio/ssl/context.hpp>
#include <boost/system/error_code.hpp>

namespace budstikke::support {

struct tls_client_options {
  std::string ca_file;    // PEM; empty: the system's store
  std::string cert_file;  // a client certificate (PEM) to present, with key_file; empty: none
  std::string key_file;
  bool verify = true;
};

// TLS 1.2 or later. std::runtime_error naming `who` and the file when a file cannot be loaded.
boost::asio::ssl::context make_tls_client_context(const tls_client_options& options, std::string_view who);

// SNI for a DNS name and, when verifying, the DNS name or IP address the certificate must carry.
// False when OpenSSL refuses the name.
bool set_tls_peer_name(SSL* ssl, const std::string& name, bool verify);

// Why a handshake on `ssl` failed with `ec`: when the peer's certificate failed verification, a
// code whose message is "certificate verify failed: <OpenSSL's reason>"; otherwise `ec`.
std::error_code tls_handshake_error(SSL* ssl, boost::system::error_code ec);

}  // namespace budstikke::support
