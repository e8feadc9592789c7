// A loopback stand-in for fal.ai's queue API (and its storage upload), on
// cpp-httplib, bound to 127.0.0.1 on a free port. It answers with fal's
// shapes (submit answer with request_id and the three URLs, 202/200 status
// with queue positions, the result or the model's error, cancel codes),
// checks every request (`Authorization: Key …`, the model's input names and
// values; unknown or bad inputs get a 422 like fal's validation) and records
// what it found wrong in violations(). Faults are scripted per route.
#ifndef VIDEOTASK_TESTS_TESTING_FAKE_FAL_SERVER_H_
#define VIDEOTASK_TESTS_TESTING_FAKE_FAL_SERVER_H_

#include <httplib.h>

#include <deque>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "tests/testing/fake_runway_server.h"

namespace videotask::testing {

// A key in fal's "key_id:key_secret" form.
extern const char kFakeFalKey[];

enum class FalRoute {
  kSubmit,          // POST /{owner}/{app}/{path}
  kStatus,          // GET  /{owner}/{app}/requests/{id}/status
  kResult,          // GET  /{owner}/{app}/requests/{id}
  kCancel,          // PUT  /{owner}/{app}/requests/{id}/cancel
  kUploadInitiate,  // POST /storage/upload/initiate
  kUploadTarget,    // PUT  /upload-target/{n} (the presigned URL)
  kFile,            // GET  /files/{name} (an output file)
};

// Replies in fal's error shapes, for Enqueue (FakeReply comes from the
// RunwayML fake: status, body, headers, delay, close/truncate faults).
// {"detail": [{"loc": ["body", loc], "msg": msg, "type": type}]}
FakeReply FalModelError(int status, const std::string& type, const std::string& msg,
                        const std::string& loc = "prompt");
// {"detail": msg, "error_type": type} + X-Fal-Error-Type, and Retry-After
// when given.
FakeReply FalRequestError(int status, const std::string& type, const std::string& msg,
                          std::optional<std::string> retry_after = std::nullopt);
// A submit whose connection is closed before its body was read (nothing is
// queued). FakeReply::Close() on a submit queues the request first, then
// closes: fal has it, the client never hears.
FakeReply FalDropBeforeRead();

// One status answer of a request; the last one repeats.
struct FalStep {
  std::string status;       // IN_QUEUE, IN_PROGRESS, COMPLETED
  int queue_position = -1;  // IN_QUEUE: sent when >= 0
};

class FakeFalServer {
 public:
  explicit FakeFalServer(std::string key = kFakeFalKey);
  ~FakeFalServer();
  FakeFalServer(const FakeFalServer&) = delete;
  FakeFalServer& operator=(const FakeFalServer&) = delete;

  absl::Status Start();
  void Stop();
  std::string base_url() const;  // "http://127.0.0.1:<port>"
  int port() const { return port_; }

  // Queued replies are served first (FIFO, per route), then the default.
  void Enqueue(FalRoute route, FakeReply reply) ABSL_LOCKS_EXCLUDED(mu_);
  // Requests queued afterwards walk through `steps`, one per status call.
  // Default: IN_QUEUE 2, IN_QUEUE 0, IN_PROGRESS, COMPLETED.
  void SetSteps(std::vector<FalStep> steps) ABSL_LOCKS_EXCLUDED(mu_);
  // Requests queued afterwards answer their result call with `reply` once
  // COMPLETED (e.g. a 422 content_policy_violation); nullopt = the video.
  void SetResult(std::optional<FakeReply> reply) ABSL_LOCKS_EXCLUDED(mu_);
  // Per task, told apart by the submit body's prompt (a test gives each task
  // its own): submits carrying `prompt` take these replies first (FIFO),
  // before the route's queue (Close() still queues the request first); requests
  // queued with `prompt` walk through `steps` and answer `result` instead.
  void EnqueueForPrompt(const std::string& prompt, FakeReply reply) ABSL_LOCKS_EXCLUDED(mu_);
  void SetScriptForPrompt(const std::string& prompt, std::vector<FalStep> steps,
                          std::optional<FakeReply> result = std::nullopt)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Observations.
  int request_count(FalRoute route) const ABSL_LOCKS_EXCLUDED(mu_);
  // Replies queued for `route` (Enqueue) and not served yet.
  int unserved(FalRoute route) const ABSL_LOCKS_EXCLUDED(mu_);
  // Requests actually queued (billed), with their bodies, in order.
  std::vector<std::string> queued_ids() const ABSL_LOCKS_EXCLUDED(mu_);
  std::vector<nlohmann::json> queued_bodies() const ABSL_LOCKS_EXCLUDED(mu_);
  // How many times a prompt was queued: at most once per task.
  int queued_with_prompt(const std::string& prompt) const ABSL_LOCKS_EXCLUDED(mu_);
  // Submit requests that carried `prompt`, whatever they were answered.
  int submits_with_prompt(const std::string& prompt) const ABSL_LOCKS_EXCLUDED(mu_);
  std::vector<std::string> cancelled_ids() const ABSL_LOCKS_EXCLUDED(mu_);
  std::vector<std::string> uploaded_files() const ABSL_LOCKS_EXCLUDED(mu_);
  std::vector<std::string> violations() const ABSL_LOCKS_EXCLUDED(mu_);
  std::string output() const { return output_; }

 private:
  struct Request {
    std::string owner_app;
    std::vector<FalStep> steps;
    size_t next = 0;
    bool cancelled = false;
    std::optional<FakeReply> result;
  };

  void Handle(FalRoute route, const httplib::Request& req, httplib::Response& res,
              const httplib::ContentReader* reader) ABSL_LOCKS_EXCLUDED(mu_);
  void Apply(const FakeReply& reply, const httplib::Request& req, httplib::Response& res);
  void Default(FalRoute route, const httplib::Request& req, httplib::Response& res)
      ABSL_LOCKS_EXCLUDED(mu_);
  void Submit(const httplib::Request& req, httplib::Response& res)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Status(const httplib::Request& req, httplib::Response& res)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Result(const httplib::Request& req, httplib::Response& res)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Cancel(const httplib::Request& req, httplib::Response& res)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The request a status/result/cancel path names, or null (404 sent).
  Request* Find(const httplib::Request& req, httplib::Response& res)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool CheckHeaders(FalRoute route, const httplib::Request& req, httplib::Response& res)
      ABSL_LOCKS_EXCLUDED(mu_);
  // The model's input problems ({loc, msg, type}), empty when valid.
  std::vector<nlohmann::json> CheckInput(const std::string& model, const nlohmann::json& body)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  nlohmann::json Urls(const std::string& owner_app, const std::string& id) const;
  void Violation(std::string what) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string key_;
  const std::string output_;
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  absl::Notification stopping_;

  mutable absl::Mutex mu_;
  std::map<FalRoute, std::deque<FakeReply>> queued_replies_ ABSL_GUARDED_BY(mu_);
  std::map<FalRoute, int> counts_ ABSL_GUARDED_BY(mu_);
  std::vector<FalStep> steps_ ABSL_GUARDED_BY(mu_);
  std::optional<FakeReply> result_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::deque<FakeReply>> prompt_replies_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::pair<std::vector<FalStep>, std::optional<FakeReply>>> prompt_scripts_
      ABSL_GUARDED_BY(mu_);
  std::map<std::string, int> prompt_submits_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, Request> requests_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> queued_ids_ ABSL_GUARDED_BY(mu_);
  std::vector<nlohmann::json> queued_bodies_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> cancelled_ids_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> uploaded_files_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> issued_file_urls_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> violations_ ABSL_GUARDED_BY(mu_);
  int next_id_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace videotask::testing

#endif  // VIDEOTASK_TESTS_TESTING_FAKE_FAL_SERVER_H_
