// A webhook receiver on 127.0.0.1:<free port> (cpp-httplib) that checks the
// Standard Webhooks signature of every request with its own HMAC (OpenSSL
// directly, not the server's signer) and answers as a test scripts it.
#ifndef VIDEOTASK_TESTS_TESTING_WEBHOOK_RECEIVER_H_
#define VIDEOTASK_TESTS_TESTING_WEBHOOK_RECEIVER_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace httplib {
class Server;
}

namespace videotask::testing {

// A test secret: "whsec_" + base64 of 24 fixed bytes.
std::string TestWebhookSecret();

// The name of this machine when it resolves only to private or loopback
// addresses (a name that reaches loopback); "" otherwise.
std::string LoopbackName();

struct ReceivedWebhook {
  std::string path;       // the request path, without the query
  std::string id;         // webhook-id
  std::string timestamp;  // webhook-timestamp
  std::string signature;  // webhook-signature
  bool signature_ok = false;
  std::string body;
  std::string type;     // body "type"
  std::string task_id;  // body data.id
  std::string state;    // body data.state
  int answered = 0;     // the status it got
};

class WebhookReceiver {
 public:
  // The status for the `attempt`-th request (1-based) carrying `id`.
  using Script = std::function<int(const std::string& id, int attempt)>;

  explicit WebhookReceiver(std::string secret);
  ~WebhookReceiver();

  absl::Status Start();
  void Stop();
  void SetScript(Script script) ABSL_LOCKS_EXCLUDED(mu_);
  std::string url(const std::string& path = "/hook") const;
  int port() const { return port_; }

  std::vector<ReceivedWebhook> received() const ABSL_LOCKS_EXCLUDED(mu_);
  // Waits until `done(received())` holds; false at the timeout.
  bool WaitFor(const std::function<bool(const std::vector<ReceivedWebhook>&)>& done,
               absl::Duration timeout) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  const std::string key_;  // the decoded secret
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
  mutable absl::Mutex mu_;
  Script script_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int> tries_ ABSL_GUARDED_BY(mu_);
  std::vector<ReceivedWebhook> received_ ABSL_GUARDED_BY(mu_);
};

}  // namespace videotask::testing

#endif  // VIDEOTASK_TESTS_TESTING_WEBHOOK_RECEIVER_H_
