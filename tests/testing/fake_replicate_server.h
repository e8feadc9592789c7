// A loopback stand-in for Replicate's predictions API, on cpp-httplib, bound
// to 127.0.0.1 on a free port. It answers with Replicate's shapes (201 +
// prediction object, RFC 7807 problems), checks the Bearer token, validates
// each create body against the model's own inputs (unknown or ill-typed
// inputs get a 422 like Replicate's), walks predictions through scripted
// states over polls, cancels, takes file uploads and serves outputs. Faults
// are injectable per route (429 with Retry-After, 5xx, malformed or
// truncated answers, connections closed after the request was read) and for
// the next new connections (closed before the request is read). Whatever
// the backend does wrong is recorded in violations().
#ifndef VIDEOTASK_TESTS_TESTING_FAKE_REPLICATE_SERVER_H_
#define VIDEOTASK_TESTS_TESTING_FAKE_REPLICATE_SERVER_H_

#include <deque>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <httplib.h>

#include <nlohmann/json.hpp>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "tests/testing/dropping_front.h"

namespace videotask::testing {

// A token of Replicate's shape ("r8_" + 37 characters).
extern const char kFakeReplicateToken[];

enum class ReplicateRoute {
  kCreate,         // POST /v1/models/{owner}/{name}/predictions
  kGetPrediction,  // GET /v1/predictions/{id}
  kCancel,         // POST /v1/predictions/{id}/cancel
  kUploadFile,     // POST /v1/files
  kOutput,         // GET /outputs/{name} (a delivery URL)
};

// One scripted answer.
struct ReplicateReply {
  enum class Fault {
    kNone,
    kCloseWithoutAnswer,  // reads the request, then closes without a byte
    kTruncatedBody,       // announces the body, sends half, closes
  };
  int status = 200;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  Fault fault = Fault::kNone;
  absl::Duration delay = absl::ZeroDuration();  // ended early when the server stops

  static ReplicateReply Json(int status, const nlohmann::json& body);
  // A problem body {"title", "detail", "status"}, with a Retry-After header
  // when `retry_after` is set.
  static ReplicateReply Problem(int status, const std::string& title, const std::string& detail,
                                std::optional<std::string> retry_after = std::nullopt);
  static ReplicateReply Raw(int status, std::string body);
  static ReplicateReply Close();
  static ReplicateReply Truncated();
  // A well-formed 201 that comes after `delay`.
  static ReplicateReply Slow(absl::Duration delay);
};

// One answer of GET /v1/predictions/{id}.
struct PredictionStep {
  PredictionStep(std::string status, std::string error = "")  // NOLINT: implicit from a word
      : status(std::move(status)), error(std::move(error)) {}
  std::string status;  // starting, processing, succeeded, failed, canceled, aborted
  std::string error;   // failed
};

class FakeReplicateServer {
 public:
  explicit FakeReplicateServer(std::string token = kFakeReplicateToken);
  ~FakeReplicateServer();
  FakeReplicateServer(const FakeReplicateServer&) = delete;
  FakeReplicateServer& operator=(const FakeReplicateServer&) = delete;

  // Binds 127.0.0.1:0 and serves on a background thread.
  absl::Status Start();
  void Stop();  // releases delayed answers; called by the destructor

  int port() const { return front_.port(); }
  std::string base_url() const;  // "http://127.0.0.1:<port>"

  // Scripting. Queued replies are served first (FIFO, per route), otherwise
  // the fake behaves like Replicate.
  void Enqueue(ReplicateRoute route, ReplicateReply reply) ABSL_LOCKS_EXCLUDED(mu_);
  // The next `n` new connections are closed before their request is read.
  void DropNextConnections(int n) { front_.DropNext(n); }
  // Predictions created afterwards walk through `steps`, one per GET; the
  // last step repeats. Default: starting, processing, succeeded.
  void SetScript(std::vector<PredictionStep> steps) ABSL_LOCKS_EXCLUDED(mu_);
  // Per task, told apart by the create body's input.prompt (a test gives
  // each task its own): creates carrying `prompt` take these replies first
  // (FIFO), before the route's queue; predictions created with `prompt` walk
  // through `steps` instead of the script.
  void EnqueueForPrompt(const std::string& prompt, ReplicateReply reply) ABSL_LOCKS_EXCLUDED(mu_);
  void SetScriptForPrompt(const std::string& prompt, std::vector<PredictionStep> steps)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Bytes served at the output URLs (default: 100 kB of a pattern).
  void SetOutput(std::string bytes) ABSL_LOCKS_EXCLUDED(mu_);
  // Output as a one-element list instead of a URL string (older models).
  void SetOutputAsList(bool as_list) ABSL_LOCKS_EXCLUDED(mu_);

  // Observations.
  int request_count(ReplicateRoute route) const ABSL_LOCKS_EXCLUDED(mu_);
  // Replies queued for `route` (Enqueue) and not served yet.
  int unserved(ReplicateRoute route) const ABSL_LOCKS_EXCLUDED(mu_);
  int create_count() const { return request_count(ReplicateRoute::kCreate); }
  // Predictions the default behaviour created, in order.
  std::vector<std::string> prediction_ids() const ABSL_LOCKS_EXCLUDED(mu_);
  // Prompts of the created predictions, in order (tests give each task its own).
  std::vector<std::string> created_prompts() const ABSL_LOCKS_EXCLUDED(mu_);
  std::vector<std::string> cancelled_ids() const ABSL_LOCKS_EXCLUDED(mu_);
  // Create requests that carried `prompt`, whatever they were answered.
  int create_requests_with_prompt(const std::string& prompt) const ABSL_LOCKS_EXCLUDED(mu_);
  // Bodies of every create request that parsed, and the model path of each.
  std::vector<nlohmann::json> create_bodies() const ABSL_LOCKS_EXCLUDED(mu_);
  std::vector<std::string> create_models() const ABSL_LOCKS_EXCLUDED(mu_);
  std::vector<std::string> uploaded_files() const ABSL_LOCKS_EXCLUDED(mu_);
  std::vector<std::string> violations() const ABSL_LOCKS_EXCLUDED(mu_);
  std::string output() const ABSL_LOCKS_EXCLUDED(mu_);
  int dropped_connections() const { return front_.dropped(); }

 private:
  struct FakePrediction {
    std::string model;
    nlohmann::json input;
    std::vector<PredictionStep> steps;
    size_t next = 0;
    std::string status = "starting";
    std::string error;
  };

  void Handle(ReplicateRoute route, const httplib::Request& req, httplib::Response& res)
      ABSL_LOCKS_EXCLUDED(mu_);
  bool ServeQueued(ReplicateRoute route, const httplib::Request& req, httplib::Response& res)
      ABSL_LOCKS_EXCLUDED(mu_);
  void Apply(const ReplicateReply& reply, const httplib::Request& req, httplib::Response& res);
  // Default behaviours, under the lock.
  void Create(const httplib::Request& req, httplib::Response& res)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Get(const std::string& id, httplib::Response& res) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void CancelPrediction(const std::string& id, httplib::Response& res)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void UploadFile(const httplib::Request& req, httplib::Response& res)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Replicate's 422 invalid_fields for a create body; empty when valid.
  nlohmann::json InvalidFields(const std::string& model, const nlohmann::json& body)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void CheckImage(const std::string& field, const nlohmann::json& value, nlohmann::json& invalid)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // False (and a 401 written) when the token is not "Bearer <token>".
  bool CheckAuth(ReplicateRoute route, const httplib::Request& req, httplib::Response& res)
      ABSL_LOCKS_EXCLUDED(mu_);
  void Violation(std::string what) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  nlohmann::json PredictionJson(const std::string& id, const FakePrediction& p) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string token_;
  httplib::Server server_;
  DroppingFront front_;  // what clients connect to
  std::thread thread_;
  int port_ = 0;
  absl::Notification stopping_;

  mutable absl::Mutex mu_;
  std::map<ReplicateRoute, std::deque<ReplicateReply>> queued_ ABSL_GUARDED_BY(mu_);
  std::map<ReplicateRoute, int> counts_ ABSL_GUARDED_BY(mu_);
  std::vector<PredictionStep> script_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::deque<ReplicateReply>> prompt_replies_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::vector<PredictionStep>> prompt_scripts_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int> prompt_creates_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, FakePrediction> predictions_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> prediction_ids_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> created_prompts_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> cancelled_ids_ ABSL_GUARDED_BY(mu_);
  std::vector<nlohmann::json> create_bodies_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> create_models_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> uploaded_files_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> file_urls_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> violations_ ABSL_GUARDED_BY(mu_);
  std::string output_ ABSL_GUARDED_BY(mu_);
  bool output_as_list_ ABSL_GUARDED_BY(mu_) = false;
  int next_id_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace videotask::testing

#endif  // VIDEOTASK_TESTS_TESTING_FAKE_REPLICATE_SERVER_H_
