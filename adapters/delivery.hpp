// What the engine hands an adapter, and what it gets back.
//
// The engine owns every `delivery` (a fixed set of in-flight slots) and pushes it to a
// `messenger`; the messenger calls `delivery_listener::on_delivered` exactly once per push, on
// the shard's executor, after it has an outcome. Nothing here allocates per message: the
// strings are reused slot buffers.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace budstikke::adapters {

enum class outcome : std::uint8_t {
  accepted,   // the relay or gateway took responsibility (SMTP 250 after the final dot)
  transient,  // not sent; may be tried again (4xx, connection failure before the final dot)
  permanent,  // not sent and never will be with this data (5xx)
  ambiguous,  // may have been sent: the final dot went out but no reply came back (RFC 1047)
};

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

class delivery_listener {
 public:
  virtual void on_delivered(delivery& d) = 0;

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
