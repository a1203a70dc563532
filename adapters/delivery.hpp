// What the engine hands an adapter, and what it gets back.
//
// The engine owns every `delivery` (a fixed set of in-flight slots) and pushes it to a
// `messenger`; the messenger calls `delivery_listener::on_delivered` exactly once per push, on
// the shard's executor, after it has an outcome. Nothing here allocates per message: the
// strings are reused slot buffers.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace budstikke::adapters {

enum class outcome : std::uint8_t {
  accepted,   // the relay or gateway took responsibility (SMTP 250 after the final dot)
  transient,  // not sent; may be tried again (4xx, connection failure before the final dot)
  permanent,  // not sent and never will be with this data (5xx)
  ambiguous,  // may have been sent: the final dot went out but no reply came back (RFC 1047)
  // Not sent, and nothing was learnt about the message: the path failed (the relay or gateway
  // could not be reached, refused TLS or AUTH, said 421, dropped the connection before the final
  // dot). Not an attempt: the message waits until the path is expected back (retry_after).
  unsent,
};

inline constexpr std::size_t outcome_count = 5;  // the values of `outcome`

const char* to_string(outcome o) noexcept;

struct delivery {
  std::string envelope_from;  // reverse-path, ASCII (IDN already in xn-- form)
  std::string envelope_to;    // forward-path
  // The forward-path has a non-ASCII local part: send with SMTPUTF8 (RFC 6531), or refuse the
  // message when the relay does not offer it.
  bool needs_smtputf8 = false;
  std::string data;           // the complete RFC 5322 message, CRLF line endings, not dot-stuffed
  // SMS: envelope_to is the number in E.164, envelope_from the sender id, data the text (UTF-8);
  // the text goes out in UCS-2 when sms_ucs2, else in the GSM 7-bit alphabet.
  bool sms_ucs2 = false;
  std::uint16_t sms_segments = 0;

  outcome result = outcome::transient;
  std::string reply;          // the last server reply (or a local reason), for records and logs;
                              // an SMS gateway's message id as "id=..." in it when it gave one
  // With a transient result: the peer asked for a pause (HTTP Retry-After); retry no earlier.
  std::chrono::milliseconds retry_after{0};
  std::uint32_t slot = 0;     // the engine's slot index; adapters do not interpret it
};

// A path (one relay, the SMS gateway) changed state. While a path is suspended nothing is sent
// through it; it is probed with capped exponential backoff and resumes by itself.
struct path_event {
  std::string_view kind;    // "smtp" or "sms"
  std::string_view name;    // the path, e.g. "smtp relay 127.0.0.1:2525"
  bool usable = true;       // this path
  bool any_usable = true;   // some path of the same kind (another relay) is usable
  std::string_view reason;  // why it is suspended (a connect failure, a certificate, AUTH, 421)
  std::chrono::steady_clock::time_point since{};  // when suspended: since when
  std::chrono::milliseconds next_probe{0};  // when suspended: the next probe, from now
};

class delivery_listener {
 public:
  virtual void on_delivered(delivery& d) = 0;
  // Called on the listener's executor when the path changes (suspended, probed, up again; a new
  // reason or next probe), never from inside push().
  virtual void on_path_state(const path_event&) {}

 protected:
  ~delivery_listener() = default;
};

// The engine's view of an adapter (listmonk's Messenger{Push, Flush, Close}).
class messenger {
 public:
  virtual ~messenger() = default;

  // Takes the delivery (not ownership) for sending. Never blocks; the engine bounds how many
  // deliveries are outstanding through its in-flight window.
  virtual void push(delivery& d) = 0;

  // Finish what was pushed, then close connections politely (QUIT). Outstanding deliveries still
  // get their on_delivered call.
  virtual void close() = 0;
};

}  // namespace budstikke::adapters
