// libcurl's multi interface driven by an Asio executor: curl says which sockets to watch
// (CURLMOPT_SOCKETFUNCTION) and when to time out (CURLMOPT_TIMERFUNCTION); Asio waits for readiness
// on those sockets and on one timer and calls curl_multi_socket_action. No thread per request,
// nothing blocks. curl opens and closes its sockets; Asio only watches them (a
// posix::stream_descriptor per socket, released, never closed, by Asio).
//
// Single-threaded: construct, add, remove and destroy on the executor's thread.
#pragma once

#include <cstdint>
#include <memory>

#include <boost/asio/any_io_executor.hpp>
#include <curl/curl.h>

namespace budstikke::adapters::sms_http {

class transfer_listener {
 public:
  // A transfer ended (CURLE_OK or why not); the handle is already out of the multi and may be
  // added again at once.
  virtual void on_transfer_done(CURL* easy, CURLcode result) = 0;

 protected:
  ~transfer_listener() = default;
};

class curl_multi {
 public:
  // `max_connections` bounds open connections (and the keep-alive cache). Throws
  // std::runtime_error when curl cannot be initialised.
  curl_multi(boost::asio::any_io_executor ex, transfer_listener& listener, std::size_t max_connections);
  ~curl_multi();  // closes every connection; transfers still running are dropped without a call
  curl_multi(const curl_multi&) = delete;
  curl_multi& operator=(const curl_multi&) = delete;

  // Sets what every easy handle driven here needs (the close-socket hook that keeps Asio's view
  // of the socket in step). Call once per handle before its first add().
  void prepare(CURL* easy);
  // Starts the transfer. Its on_transfer_done comes later, never from inside add().
  void add(CURL* easy);

  // Closes every connection and stops; what is running is dropped without a call.
  void shutdown();

 private:
  struct impl;
  std::shared_ptr<impl> impl_;  // shared: late completions keep it alive
};

}  // namespace budstikke::adapters::sms_http
