// A loopback stand-in for the RunwayML API (version 2024-11-06), on
// cpp-httplib, bound to 127.0.0.1 on a free port. It answers like the
// provider, can be scripted per test (queued replies per route, a handler
// hook, faults, task state progressions) and checks every request it gets
// (headers, camelCase body without unknown keys, pixel ratio, data URI),
// recording what it found wrong in violations().
#ifndef VIDEOTASK_TESTS_TESTING_FAKE_RUNWAY_SERVER_H_
#define VIDEOTASK_TESTS_TESTING_FAKE_RUNWAY_SERVER_H_

#include <deque>
#include <functional>
#include <map>
#include <memory>
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

namespace videotask::testing {

// A syntactically valid key: "key_" + 128 lowercase hex characters.
extern const char kFakeRunwaySecret[];

enum class FakeRoute {
  kCreate,        // POST /v1/image_to_video
  kGetTask,       // GET /v1/tasks/{id}
  kDeleteTask,    // DELETE /v1/tasks/{id}
  kCreateUpload,  // POST /v1/uploads
  kUploadTarget,  // POST /upload-target/{n} (the presigned URL)
  kOutput,        // GET /outputs/{name} (an output URL)
};

// One scripted answer.
struct FakeReply {
  enum class Fault {
    kNone,
    // Reads the request, then closes the connection without a byte.
    kCloseWithoutAnswer,
    // Sends headers announcing the body, half the body, then closes.
    kTruncatedBody,
  };
  int status = 200;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  Fault fault = Fault::kNone;
  // Wait before answering (ended early when the server stops).
  absl::Duration delay = absl::ZeroDuration();

  static FakeReply Json(int status, const nlohmann::json& body);
  // {"error": message}, with a Retry-After header when `retry_after` is set.
  static FakeReply Error(int status, const std::string& message,
                         std::optional<std::string> retry_after = std::nullopt);
  static FakeReply Raw(int status, std::string body);
  static FakeReply Close();
  static FakeReply Truncated();
  static FakeReply Slow(absl::Duration delay);
};

// One answer of GET /v1/tasks/{id}.
struct FakeTaskStep {
  FakeTaskStep(std::string status, double progress = -1, std::string failure = "",
               std::string failure_code = "")
      : status(std::move(status)),
        progress(progress),
        failure(std::move(failure)),
        failure_code(std::move(failure_code)) {}
  std::string status;        // PENDING, THROTTLED, RUNNING, SUCCEEDED, FAILED, CANCELLED
  double progress = -1;      // RUNNING: sent when >= 0
  std::string failure;       // FAILED
  std::string failure_code;  // FAILED; "" = omitted
};

// Closes the TCP connection a request came on (both directions) without an
// answer; usable from any httplib handler of this process.
void ShutdownConnectionOf(const httplib::Request& request);

class FakeRunwayServer {
 public:
  explicit FakeRunwayServer(std::string api_secret = kFakeRunwaySecret);
  ~FakeRunwayServer();
  FakeRunwayServer(const FakeRunwayServer&) = delete;
  FakeRunwayServer& operator=(const FakeRunwayServer&) = delete;

  // Binds 127.0.0.1:0 and serves on a background thread.
  absl::Status Start();
  // Releases delayed answers and stops; called by the destructor.
  void Stop();

  int port() const { return port_; }
  std::string base_url() const;  // "http://127.0.0.1:<port>"

  // Scripting. Queued replies are served first (FIFO, per route); a hook
  // answering non-nullopt comes next; otherwise the default behaviour.
  void Enqueue(FakeRoute route, FakeReply reply) ABSL_LOCKS_EXCLUDED(mu_);
  using Hook = std::function<std::optional<FakeReply>(const httplib::Request&)>;
  void SetHook(FakeRoute route, Hook hook) ABSL_LOCKS_EXCLUDED(mu_);
  // Tasks created afterwards walk through `steps`, one per GET; the last
  // step repeats. Default: PENDING, RUNNING 0.5, SUCCEEDED.
  void SetTaskScript(std::vector<FakeTaskStep> steps) ABSL_LOCKS_EXCLUDED(mu_);
  // Per task, told apart by the create body's promptText (a test gives each
  // task its own): creates carrying `prompt` take these replies first (FIFO),
  // before the route's queue and hook; tasks created with `prompt` walk
  // through `steps` instead of the script.
  void EnqueueForPrompt(const std::string& prompt, FakeReply reply) ABSL_LOCKS_EXCLUDED(mu_);
  void SetTaskScriptForPrompt(const std::string& prompt, std::vector<FakeTaskStep> steps)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Bytes served at the output URLs (default: 100 kB of a pattern).
  void SetOutput(std::string bytes) ABSL_LOCKS_EXCLUDED(mu_);

  // Observations.
  int create_count() const ABSL_LOCKS_EXCLUDED(mu_);
  int request_count(FakeRoute route) const ABSL_LOCKS_EXCLUDED(mu_);
  // Replies queued for `route` (Enqueue) and not served yet.
  int unserved(FakeRoute route) const ABSL_LOCKS_EXCLUDED(mu_);
  std::vector<std::string> violations() const ABSL_LOCKS_EXCLUDED(mu_);
  std::vector<nlohmann::json> create_bodies() const ABSL_LOCKS_EXCLUDED(mu_);
  std::vector<std::string> uploaded_files() const ABSL_LOCKS_EXCLUDED(mu_);
  std::string output() const ABSL_LOCKS_EXCLUDED(mu_);
  // Task ids created by the default behaviour, in order.
  std::vector<std::string> task_ids() const ABSL_LOCKS_EXCLUDED(mu_);
  // Prompts of the tasks created, in order ("" for none).
  std::vector<std::string> created_prompts() const ABSL_LOCKS_EXCLUDED(mu_);
  // Create requests that carried `prompt`, whatever they were answered.
  int create_requests_with_prompt(const std::string& prompt) const ABSL_LOCKS_EXCLUDED(mu_);
  // Tasks cancelled by a DELETE while they existed, in order.
  std::vector<std::string> cancelled_ids() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct FakeTask {
    std::vector<FakeTaskStep> steps;
    size_t next = 0;
    bool cancelled = false;
  };

  void Handle(FakeRoute route, const httplib::Request& req, httplib::Response& res)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Answers with a scripted reply; false when none applies.
  bool ServeScripted(FakeRoute route, const httplib::Request& req, httplib::Response& res)
      ABSL_LOCKS_EXCLUDED(mu_);
  void Apply(const FakeReply& reply, const httplib::Request& req, httplib::Response& res);
  void Default(FakeRoute route, const httplib::Request& req, httplib::Response& res)
      ABSL_LOCKS_EXCLUDED(mu_);
  void Check(FakeRoute route, const httplib::Request& req) ABSL_LOCKS_EXCLUDED(mu_);
  void CheckCreateBody(const nlohmann::json& body) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Violation(std::string what) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  nlohmann::json TaskJson(const std::string& id, const FakeTaskStep& step) const;

  const std::string api_secret_;
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  absl::Notification stopping_;

  mutable absl::Mutex mu_;
  std::map<FakeRoute, std::deque<FakeReply>> queued_ ABSL_GUARDED_BY(mu_);
  std::map<FakeRoute, Hook> hooks_ ABSL_GUARDED_BY(mu_);
  std::map<FakeRoute, int> counts_ ABSL_GUARDED_BY(mu_);
  std::vector<FakeTaskStep> script_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, FakeTask> tasks_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> task_ids_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::deque<FakeReply>> prompt_replies_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::vector<FakeTaskStep>> prompt_scripts_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int> prompt_creates_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> created_prompts_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> cancelled_ids_ ABSL_GUARDED_BY(mu_);
  std::string output_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> violations_ ABSL_GUARDED_BY(mu_);
  std::vector<nlohmann::json> create_bodies_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> uploaded_files_ ABSL_GUARDED_BY(mu_);
  // Upload slot -> form fields it expects; runway:// URIs it issued.
  std::map<std::string, std::map<std::string, std::string>> upload_slots_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> issued_uris_ ABSL_GUARDED_BY(mu_);
  int next_id_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace videotask::testing

#endif  // VIDEOTASK_TESTS_TESTING_FAKE_RUNWAY_SERVER_H_
