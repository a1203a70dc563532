#include "adapters/smtp/base64.hpp"

#include <openssl/evp.h>

namespace budstikke::adapters::smtp {

void append_base64(std::string& out, std::string_view in) {
  std::size_t at = out.size();
  out.resize(at + 4 * ((in.size() + 2) / 3) + 1);  // EVP_EncodeBlock writes a NUL
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data() + at),
                          reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()));
  out.resize(at + static_cast<std::size_t>(n));
}

std::optional<std::string> decode_base64(std::string_view in) {
  if (in.size() % 4 != 0 || in.size() > 64 * 1024) return std::nullopt;
  std::string out(in.size() / 4 * 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()));
  if (n < 0) return std::nullopt;
  // EVP_DecodeBlock counts padding as zero bytes.
  std::size_t size = static_cast<std::size_t>(n);
  for (std::size_t i = in.size(); i > 0 && in[i - 1] == '=' && size > 0; --i) --size;
  out.resize(size);
  return out;
}

}  // namespace budstikke::adapters::smtp
