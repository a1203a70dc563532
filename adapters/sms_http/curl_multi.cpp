#include "adapters/sms_http/curl_multi.hpp"

#include <mutex>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>

#include <boost/asio/post.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <unistd.h>

namespace budstikke::adapters::sms_http {
namespace asio = boost::asio;

namespace {

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) throw std::runtime_error("curl_global_init failed");
  });
}

}  // namespace

struct curl_multi::impl : std::enable_shared_from_this<impl> {
  // One socket curl asked us to watch. `generation` tells a late completion for a socket that has
  // since been closed (and its number reused) from one for the current socket.
  struct watch {
    watch(const asio::any_io_executor& ex, int fd, std::uint64_t gen) : descriptor(ex, fd), generation(gen) {}
    asio::posix::stream_descriptor descriptor;
    std::uint64_t generation;
    int wanted = 0;  // CURL_POLL_IN / CURL_POLL_OUT bits
    bool read_waiting = false, write_waiting = false;
  };

  impl(asio::any_io_executor executor, transfer_listener& l) : ex(std::move(executor)), listener(l), timer(ex) {}

  void init(std::size_t max_connections) {
    global_init();
    multi = curl_multi_init();
    if (multi == nullptr) throw std::runtime_error("curl_multi_init failed");
    curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, &impl::on_socket);
    curl_multi_setopt(multi, CURLMOPT_SOCKETDATA, this);
    curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, &impl::on_timer);
    curl_multi_setopt(multi, CURLMOPT_TIMERDATA, this);
    curl_multi_setopt(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, static_cast<long>(max_connections));
    curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, static_cast<long>(max_connections));
  }

  // CURLMOPT_SOCKETFUNCTION: what curl wants to know about `fd` now.
  static int on_socket(CURL*, curl_socket_t fd, int what, void* userp, void*) {
    auto* self = static_cast<impl*>(userp);
    auto it = self->watches.find(fd);
    if (what == CURL_POLL_REMOVE) {
      // The socket may live on in curl's keep-alive cache: stop caring, keep the descriptor.
      if (it != self->watches.end()) it->second->wanted = 0;
      return 0;
    }
    if (it == self->watches.end()) {
      it = self->watches.emplace(fd, std::make_unique<watch>(self->ex, fd, ++self->generations)).first;
    }
    it->second->wanted = what;
    self->arm(fd, *it->second);
    return 0;
  }

  // CURLOPT_CLOSESOCKETFUNCTION: curl closes `fd`; Asio lets go of it first, without closing it.
  static int on_close_socket(void* clientp, curl_socket_t fd) {
    auto* self = static_cast<impl*>(clientp);
    if (auto it = self->watches.find(fd); it != self->watches.end()) {
      it->second->descriptor.release();  // cancels its waits; their completions find no watch
      self->watches.erase(it);
    }
    return ::close(fd);
  }

  // CURLMOPT_TIMERFUNCTION: -1 no timeout, 0 act as soon as possible (not from in here). curl
  // moves its deadline on almost every call; re-arming an Asio timer each time costs a
  // timerfd_settime. So only an earlier deadline re-arms; a later one is a store, checked when
  // the armed timer fires (io_deadline's pattern).
  static int on_timer(CURLM*, long timeout_ms, void* userp) {
    auto* self = static_cast<impl*>(userp);
    using clock = std::chrono::steady_clock;
    self->due = timeout_ms < 0 ? clock::time_point::max() : clock::now() + std::chrono::milliseconds(timeout_ms);
    if (self->due < self->armed) self->arm_timer();
    return 0;
  }

  void arm_timer() {
    armed = due;
    timer.expires_at(armed);
    timer.async_wait([self = shared_from_this(), at = armed](boost::system::error_code ec) {
      if (ec || at != self->armed) return;  // replaced by an earlier deadline
      self->armed = std::chrono::steady_clock::time_point::max();
      if (std::chrono::steady_clock::now() >= self->due) {
        self->due = std::chrono::steady_clock::time_point::max();
        self->action(CURL_SOCKET_TIMEOUT, 0);
      }
      if (self->due != std::chrono::steady_clock::time_point::max() && self->due < self->armed) self->arm_timer();
    });
  }

  void arm(int fd, watch& w) {
    if ((w.wanted & CURL_POLL_IN) && !w.read_waiting) {
      w.read_waiting = true;
      w.descriptor.async_wait(asio::posix::stream_descriptor::wait_read,
                              [self = shared_from_this(), fd, gen = w.generation](boost::system::error_code ec) {
                                self->on_ready(fd, gen, CURL_CSELECT_IN, ec);
                              });
    }
    if ((w.wanted & CURL_POLL_OUT) && !w.write_waiting) {
      w.write_waiting = true;
      w.descriptor.async_wait(asio::posix::stream_descriptor::wait_write,
                              [self = shared_from_this(), fd, gen = w.generation](boost::system::error_code ec) {
                                self->on_ready(fd, gen, CURL_CSELECT_OUT, ec);
                              });
    }
  }

  void on_ready(int fd, std::uint64_t gen, int direction, boost::system::error_code ec) {
    auto it = watches.find(fd);
    if (it == watches.end() || it->second->generation != gen) return;  // closed meanwhile
    watch& w = *it->second;
    (direction == CURL_CSELECT_IN ? w.read_waiting : w.write_waiting) = false;
    if (ec == asio::error::operation_aborted) return;
    const int wanted_bit = direction == CURL_CSELECT_IN ? CURL_POLL_IN : CURL_POLL_OUT;
    if (!(w.wanted & wanted_bit)) return;  // curl lost interest while we waited
    action(fd, ec ? CURL_CSELECT_ERR : direction);
    // curl may have closed the socket or changed its mind during the action.
    it = watches.find(fd);
    if (it != watches.end() && it->second->generation == gen) arm(fd, *it->second);
  }

  void action(curl_socket_t fd, int events) {
    if (multi == nullptr) return;
    int running = 0;
    curl_multi_socket_action(multi, fd, events, &running);
    finish_done();
  }

  void finish_done() {
    int left = 0;
    while (CURLMsg* m = curl_multi_info_read(multi, &left)) {
      if (m->msg != CURLMSG_DONE) continue;
      CURL* easy = m->easy_handle;
      CURLcode result = m->data.result;
      curl_multi_remove_handle(multi, easy);
      running.erase(easy);
      listener.on_transfer_done(easy, result);
      if (multi == nullptr) return;  // the listener shut us down
    }
  }

  void shutdown() {
    if (multi == nullptr) return;
    armed = due = std::chrono::steady_clock::time_point::max();
    timer.cancel();
    CURLM* m = multi;
    multi = nullptr;
    for (CURL* easy : running) curl_multi_remove_handle(m, easy);
    running.clear();
    // Cleaning up closes the cached connections through on_close_socket.
    curl_multi_cleanup(m);
    for (auto& [fd, w] : watches) w->descriptor.release();
    watches.clear();
  }

  asio::any_io_executor ex;
  transfer_listener& listener;
  asio::steady_timer timer;
  std::chrono::steady_clock::time_point due = std::chrono::steady_clock::time_point::max();    // curl's deadline
  std::chrono::steady_clock::time_point armed = std::chrono::steady_clock::time_point::max();  // the timer's
  CURLM* multi = nullptr;
  std::unordered_map<int, std::unique_ptr<watch>> watches;
  std::uint64_t generations = 0;
  std::unordered_set<CURL*> running;
};

curl_multi::curl_multi(asio::any_io_executor ex, transfer_listener& listener, std::size_t max_connections)
    : impl_(std::make_shared<impl>(std::move(ex), listener)) {
  impl_->init(max_connections);
}

curl_multi::~curl_multi() { impl_->shutdown(); }

void curl_multi::prepare(CURL* easy) {
  curl_easy_setopt(easy, CURLOPT_CLOSESOCKETFUNCTION, &impl::on_close_socket);
  curl_easy_setopt(easy, CURLOPT_CLOSESOCKETDATA, impl_.get());
}

void curl_multi::add(CURL* easy) {
  if (impl_->multi == nullptr) return;
  impl_->running.insert(easy);
  curl_multi_add_handle(impl_->multi, easy);  // curl's timer callback (0 ms) starts it
}

void curl_multi::shutdown() { impl_->shutdown(); }

}  // namespace budstikke::adapters::sms_http
