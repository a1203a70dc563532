#include "adapters/smtp/error.hpp"

#include <string>

namespace budstikke::adapters::smtp {
namespace {

class category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "smtp"; }
  std::string message(int ev) const override {
    switch (static_cast<error>(ev)) {
      case error::reply_line_too_long: return "reply line too long";
      case error::reply_too_many_lines: return "reply has too many lines";
      case error::malformed_reply: return "malformed reply";
      case error::unexpected_reply: return "unexpected reply";
      case error::greeting_refused: return "greeting refused";
      case error::hello_refused: return "EHLO and HELO refused";
      case error::service_closing: return "service closing (421)";
      case error::connection_lost: return "connection lost";
      case error::timeout: return "timeout";
      case error::starttls_unavailable: return "relay does not offer STARTTLS (required)";
      case error::tls_failed: return "TLS handshake or certificate verification failed";
      case error::auth_requires_tls: return "AUTH refused locally: the connection is not encrypted";
      case error::auth_unavailable: return "relay offers no AUTH mechanism we use (PLAIN, LOGIN)";
      case error::auth_failed: return "relay refused the credentials";
    }
    return "unknown smtp error";
  }
};

}  // namespace

const std::error_category& smtp_category() noexcept {
  static const category instance;
  return instance;
}

}  // namespace budstikke::adapters::smtp
