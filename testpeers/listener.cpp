#include "testpeers/listener.hpp"

#include <system_error>

#include <boost/asio/ip/address.hpp>

namespace budstikke::testpeers {

listening listen_on(boost::asio::ip::tcp::acceptor& acceptor, const std::string& host, std::uint16_t port) {
  namespace asio = boost::asio;
  using tcp = asio::ip::tcp;
  listening result;
  boost::system::error_code ec;
  auto address = asio::ip::make_address(host, ec);
  result.loopback = !ec && address.is_loopback();
  tcp::endpoint ep(address, port);
  if (!ec) acceptor.open(ep.protocol(), ec);
  if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor.bind(ep, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (!ec) result.port = acceptor.local_endpoint(ec).port();
  if (ec) throw std::system_error(std::error_code(ec), "cannot listen on " + host + ":" + std::to_string(port));
  return result;
}

}  // namespace budstikke::testpeers
