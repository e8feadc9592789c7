#include "tests/testing/fake_runway_server.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <set>
#include <string>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace videotask::testing {

const char kFakeRunwaySecret[] =
    "key_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

namespace {

using Json = nlohmann::json;

constexpr size_t kMaxDataUri = 5'242'880;

// The create body's promptText, or "".
std::string PromptOf(const httplib::Request& req) {
  Json body = Json::parse(req.body, nullptr, false);
  if (!body.is_object() || !body.contains("promptText") || !body["promptText"].is_string()) {
    return "";
  }
  return body["promptText"].get<std::string>();
}

const char* RouteName(FakeRoute route) {
  switch (route) {
    case FakeRoute::kCreate:
      return "POST /v1/image_to_video";
    case FakeRoute::kGetTask:
      return "GET /v1/tasks/{id}";
    case FakeRoute::kDeleteTask:
      return "DELETE /v1/tasks/{id}";
    case FakeRoute::kCreateUpload:
      return "POST /v1/uploads";
    case FakeRoute::kUploadTarget:
      return "POST /upload-target/{n}";
    case FakeRoute::kOutput:
      return "GET /outputs/{name}";
  }
  return "?";
}

bool IsApiRoute(FakeRoute route) {
  return route == FakeRoute::kCreate || route == FakeRoute::kGetTask ||
         route == FakeRoute::kDeleteTask || route == FakeRoute::kCreateUpload;
}

// The provider's rules per model, written independently of the backend.
struct ModelRule {
  std::vector<std::string> ratios;
  std::vector<int> durations;
  bool prompt_required = false;
};

const std::map<std::string, ModelRule>& ModelRules() {
  static const auto* rules = [] {
    std::vector<std::string> gen4 = {"1280:720", "720:1280", "1104:832",
                                     "832:1104", "960:960",  "1584:672"};
    std::vector<std::string> veo = {"1280:720", "720:1280", "1080:1920", "1920:1080"};
    return new std::map<std::string, ModelRule>{
        {"gen4_turbo", {gen4, {2, 3, 4, 5, 6, 7, 8, 9, 10}, false}},
        {"gen4.5", {gen4, {2, 3, 4, 5, 6, 7, 8, 9, 10}, true}},
        {"veo3.1", {veo, {4, 6, 8}, false}},
        {"veo3.1_fast", {veo, {4, 6, 8}, false}},
        {"veo3", {veo, {8}, false}},
        {"gemini_omni_flash", {{"1280:720", "720:1280"}, {3, 4, 5, 6, 7, 8, 9, 10}, false}},
    };
  }();
  return *rules;
}

int PortOf(const sockaddr_storage& addr) {
  if (addr.ss_family == AF_INET) {
    return ntohs(reinterpret_cast<const sockaddr_in*>(&addr)->sin_port);
  }
  if (addr.ss_family == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&addr)->sin6_port);
  }
  return -1;
}

}  // namespace

void ShutdownConnectionOf(const httplib::Request& request) {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return;
  std::vector<int> fds;
  while (dirent* entry = readdir(dir)) {
    int fd = 0;
    if (absl::SimpleAtoi(entry->d_name, &fd)) fds.push_back(fd);
  }
  closedir(dir);
  for (int fd : fds) {
    sockaddr_storage local{};
    sockaddr_storage peer{};
    socklen_t local_len = sizeof(local);
    socklen_t peer_len = sizeof(peer);
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_len) != 0) continue;
    if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &peer_len) != 0) continue;
    if (PortOf(local) == request.local_port && PortOf(peer) == request.remote_port) {
      ::shutdown(fd, SHUT_RDWR);
      return;
    }
  }
}

FakeReply FakeReply::Json(int status, const nlohmann::json& body) {
  FakeReply reply;
  reply.status = status;
  reply.body = body.dump();
  return reply;
}

FakeReply FakeReply::Error(int status, const std::string& message,
                           std::optional<std::string> retry_after) {
  FakeReply reply = Json(status, {{"error", message}});
  if (retry_after.has_value()) reply.headers.emplace_back("Retry-After", *retry_after);
  return reply;
}

FakeReply FakeReply::Raw(int status, std::string body) {
  FakeReply reply;
  reply.status = status;
  reply.body = std::move(body);
  return reply;
}

FakeReply FakeReply::Close() {
  FakeReply reply;
  reply.fault = Fault::kCloseWithoutAnswer;
  return reply;
}

FakeReply FakeReply::Truncated() {
  FakeReply reply;
  reply.fault = Fault::kTruncatedBody;
  reply.body = std::string(2000, 'x');
  return reply;
}

FakeReply FakeReply::Slow(absl::Duration delay) {
  FakeReply reply = Json(200, {{"id", "slow-task"}});
  reply.delay = delay;
  return reply;
}

FakeRunwayServer::FakeRunwayServer(std::string api_secret) : api_secret_(std::move(api_secret)) {
  script_ = {{"PENDING"}, {"RUNNING", 0.5}, {"SUCCEEDED"}};
  output_.reserve(100'000);
  for (int i = 0; i < 100'000; ++i) output_.push_back(static_cast<char>('a' + i % 26));

  auto route = [this](FakeRoute r) {
    return [this, r](const httplib::Request& req, httplib::Response& res) { Handle(r, req, res); };
  };
  server_.Post("/v1/image_to_video", route(FakeRoute::kCreate));
  server_.Get(R"(/v1/tasks/([^/]+))", route(FakeRoute::kGetTask));
  server_.Delete(R"(/v1/tasks/([^/]+))", route(FakeRoute::kDeleteTask));
  server_.Post("/v1/uploads", route(FakeRoute::kCreateUpload));
  server_.Post(R"(/upload-target/(\d+))", route(FakeRoute::kUploadTarget));
  server_.Get(R"(/outputs/([^/]+))", route(FakeRoute::kOutput));
  server_.set_keep_alive_timeout(1);
  server_.set_read_timeout(5, 0);
  server_.set_tcp_nodelay(true);  // no Nagle stalls between headers and body
}

FakeRunwayServer::~FakeRunwayServer() { Stop(); }

absl::Status FakeRunwayServer::Start() {
  port_ = server_.bind_to_any_port("127.0.0.1");
  if (port_ <= 0) return absl::UnavailableError("fake RunwayML server could not bind 127.0.0.1");
  thread_ = std::thread([this] { server_.listen_after_bind(); });
  // Requests queue in the backlog meanwhile; Stop() needs the loop running.
  while (!server_.is_running()) std::this_thread::yield();
  return absl::OkStatus();
}

void FakeRunwayServer::Stop() {
  if (!stopping_.HasBeenNotified()) stopping_.Notify();
  if (thread_.joinable()) {
    server_.stop();
    thread_.join();
  }
}

std::string FakeRunwayServer::base_url() const { return absl::StrCat("http://127.0.0.1:", port_); }

void FakeRunwayServer::Enqueue(FakeRoute route, FakeReply reply) {
  absl::MutexLock lock(&mu_);
  queued_[route].push_back(std::move(reply));
}

void FakeRunwayServer::SetHook(FakeRoute route, Hook hook) {
  absl::MutexLock lock(&mu_);
  hooks_[route] = std::move(hook);
}

void FakeRunwayServer::SetTaskScript(std::vector<FakeTaskStep> steps) {
  absl::MutexLock lock(&mu_);
  script_ = std::move(steps);
}

void FakeRunwayServer::EnqueueForPrompt(const std::string& prompt, FakeReply reply) {
  absl::MutexLock lock(&mu_);
  prompt_replies_[prompt].push_back(std::move(reply));
}

void FakeRunwayServer::SetTaskScriptForPrompt(const std::string& prompt,
                                              std::vector<FakeTaskStep> steps) {
  absl::MutexLock lock(&mu_);
  prompt_scripts_[prompt] = std::move(steps);
}

void FakeRunwayServer::SetOutput(std::string bytes) {
  absl::MutexLock lock(&mu_);
  output_ = std::move(bytes);
}

int FakeRunwayServer::create_count() const { return request_count(FakeRoute::kCreate); }

int FakeRunwayServer::request_count(FakeRoute route) const {
  absl::MutexLock lock(&mu_);
  auto it = counts_.find(route);
  return it == counts_.end() ? 0 : it->second;
}

int FakeRunwayServer::unserved(FakeRoute route) const {
  absl::MutexLock lock(&mu_);
  auto it = queued_.find(route);
  return it == queued_.end() ? 0 : static_cast<int>(it->second.size());
}

std::vector<std::string> FakeRunwayServer::violations() const {
  absl::MutexLock lock(&mu_);
  return violations_;
}

std::vector<nlohmann::json> FakeRunwayServer::create_bodies() const {
  absl::MutexLock lock(&mu_);
  return create_bodies_;
}

std::vector<std::string> FakeRunwayServer::uploaded_files() const {
  absl::MutexLock lock(&mu_);
  return uploaded_files_;
}

std::string FakeRunwayServer::output() const {
  absl::MutexLock lock(&mu_);
  return output_;
}

std::vector<std::string> FakeRunwayServer::task_ids() const {
  absl::MutexLock lock(&mu_);
  return task_ids_;
}

std::vector<std::string> FakeRunwayServer::created_prompts() const {
  absl::MutexLock lock(&mu_);
  return created_prompts_;
}

int FakeRunwayServer::create_requests_with_prompt(const std::string& prompt) const {
  absl::MutexLock lock(&mu_);
  auto it = prompt_creates_.find(prompt);
  return it == prompt_creates_.end() ? 0 : it->second;
}

std::vector<std::string> FakeRunwayServer::cancelled_ids() const {
  absl::MutexLock lock(&mu_);
  return cancelled_ids_;
}

void FakeRunwayServer::Violation(std::string what) { violations_.push_back(std::move(what)); }

void FakeRunwayServer::Handle(FakeRoute route, const httplib::Request& req,
                              httplib::Response& res) {
  {
    absl::MutexLock lock(&mu_);
    ++counts_[route];
    if (route == FakeRoute::kCreate) ++prompt_creates_[PromptOf(req)];
  }
  Check(route, req);
  if (ServeScripted(route, req, res)) return;
  Default(route, req, res);
}

bool FakeRunwayServer::ServeScripted(FakeRoute route, const httplib::Request& req,
                                     httplib::Response& res) {
  std::optional<FakeReply> reply;
  Hook hook;
  {
    absl::MutexLock lock(&mu_);
    auto& queue = queued_[route];
    auto by_prompt = route == FakeRoute::kCreate ? prompt_replies_.find(PromptOf(req))
                                                 : prompt_replies_.end();
    if (by_prompt != prompt_replies_.end() && !by_prompt->second.empty()) {
      reply = std::move(by_prompt->second.front());
      by_prompt->second.pop_front();
    } else if (!queue.empty()) {
      reply = std::move(queue.front());
      queue.pop_front();
    } else if (auto it = hooks_.find(route); it != hooks_.end()) {
      hook = it->second;
    }
  }
  if (!reply.has_value() && hook) reply = hook(req);
  if (!reply.has_value()) return false;
  Apply(*reply, req, res);
  return true;
}

void FakeRunwayServer::Apply(const FakeReply& reply, const httplib::Request& req,
                             httplib::Response& res) {
  if (reply.delay > absl::ZeroDuration()) stopping_.WaitForNotificationWithTimeout(reply.delay);
  switch (reply.fault) {
    case FakeReply::Fault::kCloseWithoutAnswer:
      ShutdownConnectionOf(req);
      res.status = 500;
      return;
    case FakeReply::Fault::kTruncatedBody: {
      res.status = reply.status;
      std::string body = reply.body;
      res.set_content_provider(body.size(), "application/json",
                               [body](size_t, size_t, httplib::DataSink& sink) {
                                 sink.write(body.data(), body.size() / 2);
                                 return false;  // closes the connection mid-body
                               });
      return;
    }
    case FakeReply::Fault::kNone:
      break;
  }
  res.status = reply.status;
  std::string content_type = "application/json";
  for (const auto& [name, value] : reply.headers) {
    if (absl::EqualsIgnoreCase(name, "content-type")) {
      content_type = value;
    } else {
      res.set_header(name.c_str(), value);
    }
  }
  if (!reply.body.empty()) res.set_content(reply.body, content_type.c_str());
}

nlohmann::json FakeRunwayServer::TaskJson(const std::string& id, const FakeTaskStep& step) const {
  Json json = {{"id", id}, {"status", step.status}, {"createdAt", "2026-08-01T12:00:00.000Z"}};
  if (step.status == "RUNNING" && step.progress >= 0) json["progress"] = step.progress;
  if (step.status == "SUCCEEDED") {
    json["output"] = {absl::StrCat(base_url(), "/outputs/", id, ".mp4?sig=fake-signature")};
  }
  if (step.status == "FAILED") {
    json["failure"] = step.failure;
    if (!step.failure_code.empty()) json["failureCode"] = step.failure_code;
  }
  return json;
}

void FakeRunwayServer::Default(FakeRoute route, const httplib::Request& req,
                               httplib::Response& res) {
  absl::MutexLock lock(&mu_);
  auto json_reply = [&res](int status, const Json& body) {
    res.status = status;
    res.set_content(body.dump(), "application/json");
  };
  switch (route) {
    case FakeRoute::kCreate: {
      std::string id = absl::StrFormat("00000000-0000-4000-8000-%012d", ++next_id_);
      const std::string prompt = PromptOf(req);
      auto script = prompt_scripts_.find(prompt);
      tasks_[id] = FakeTask{script == prompt_scripts_.end() ? script_ : script->second, 0, false};
      task_ids_.push_back(id);
      created_prompts_.push_back(prompt);
      json_reply(200, {{"id", id}});
      return;
    }
    case FakeRoute::kGetTask: {
      std::string id = req.matches[1];
      auto it = tasks_.find(id);
      if (it == tasks_.end()) {
        json_reply(404, {{"error", "Task not found"}});
        return;
      }
      FakeTask& task = it->second;
      if (task.cancelled) {
        json_reply(200, TaskJson(id, {"CANCELLED"}));
        return;
      }
      if (task.steps.empty()) task.steps = {{"PENDING"}};
      const FakeTaskStep& step = task.steps[std::min(task.next, task.steps.size() - 1)];
      ++task.next;
      json_reply(200, TaskJson(id, step));
      return;
    }
    case FakeRoute::kDeleteTask: {
      auto it = tasks_.find(req.matches[1]);
      if (it == tasks_.end()) {
        json_reply(404, {{"error", "Task not found"}});
        return;
      }
      if (!it->second.cancelled) cancelled_ids_.push_back(it->first);
      it->second.cancelled = true;
      res.status = 204;
      return;
    }
    case FakeRoute::kCreateUpload: {
      std::string slot = absl::StrCat(++next_id_);
      std::string filename = "image";
      if (Json body = Json::parse(req.body, nullptr, false);
          body.is_object() && body.contains("filename") && body["filename"].is_string()) {
        filename = body["filename"].get<std::string>();
      }
      std::map<std::string, std::string> fields = {
          {"key", absl::StrCat("uploads/", slot, "/", filename)},
          {"policy", absl::StrCat("fake-policy-", slot)}};
      upload_slots_[slot] = fields;
      std::string uri = absl::StrCat("runway://fake-upload/", slot);
      issued_uris_.push_back(uri);
      json_reply(200, {{"uploadUrl", absl::StrCat(base_url(), "/upload-target/", slot)},
                       {"fields", fields},
                       {"runwayUri", uri}});
      return;
    }
    case FakeRoute::kUploadTarget: {
      auto it = upload_slots_.find(req.matches[1]);
      if (it == upload_slots_.end()) {
        Violation("upload to an unknown upload slot");
        res.status = 403;
        return;
      }
      for (const auto& [name, value] : it->second) {
        if (!req.has_file(name) || req.get_file_value(name).content != value) {
          Violation(absl::StrCat("upload form lacks field \"", name, "\" or changed it"));
        }
      }
      if (!req.has_file("file")) {
        Violation("upload form lacks the \"file\" part");
        res.status = 400;
        return;
      }
      uploaded_files_.push_back(req.get_file_value("file").content);
      res.status = 204;
      return;
    }
    case FakeRoute::kOutput:
      res.status = 200;
      res.set_content(output_, "video/mp4");
      return;
  }
}

void FakeRunwayServer::Check(FakeRoute route, const httplib::Request& req) {
  absl::MutexLock lock(&mu_);
  const std::string where = RouteName(route);
  if (!absl::StartsWith(req.get_header_value("User-Agent"), "videotask/")) {
    Violation(absl::StrCat(where, ": User-Agent is not videotask/<version>"));
  }
  if (IsApiRoute(route)) {
    if (req.get_header_value("Authorization") != absl::StrCat("Bearer ", api_secret_)) {
      Violation(absl::StrCat(where, ": Authorization is not \"Bearer <the key>\""));
    }
    if (req.get_header_value("X-Runway-Version") != "2024-11-06") {
      Violation(absl::StrCat(where, ": X-Runway-Version is not 2024-11-06"));
    }
  } else {
    if (req.has_header("Authorization") || req.has_header("X-Runway-Version")) {
      Violation(absl::StrCat(where, ": Runway credentials or headers sent to a storage URL"));
    }
  }
  switch (route) {
    case FakeRoute::kCreate: {
      if (!absl::StartsWith(req.get_header_value("Content-Type"), "application/json")) {
        Violation("create: Content-Type is not application/json");
      }
      Json body = Json::parse(req.body, nullptr, false);
      if (body.is_discarded() || !body.is_object()) {
        Violation("create: body is not a JSON object");
        return;
      }
      create_bodies_.push_back(body);
      CheckCreateBody(body);
      return;
    }
    case FakeRoute::kCreateUpload: {
      Json body = Json::parse(req.body, nullptr, false);
      if (!body.is_object()) {
        Violation("uploads: body is not a JSON object");
        return;
      }
      for (auto it = body.begin(); it != body.end(); ++it) {
        if (it.key() != "filename" && it.key() != "type") {
          Violation(absl::StrCat("uploads: unknown key \"", it.key(), "\""));
        }
      }
      if (!body.contains("filename") || !body["filename"].is_string() ||
          body["filename"].get<std::string>().empty()) {
        Violation("uploads: filename missing");
      }
      if (!body.contains("type") || body["type"] != "ephemeral") {
        Violation("uploads: type is not \"ephemeral\"");
      }
      return;
    }
    case FakeRoute::kUploadTarget:
      if (!req.is_multipart_form_data()) Violation("upload target: not multipart/form-data");
      return;
    case FakeRoute::kGetTask:
    case FakeRoute::kDeleteTask:
    case FakeRoute::kOutput:
      if (!req.body.empty()) Violation(absl::StrCat(where, ": unexpected request body"));
      return;
  }
}

void FakeRunwayServer::CheckCreateBody(const nlohmann::json& body) {
  static const std::set<std::string> kKnown = {"model",    "promptImage", "promptText", "ratio",
                                                "duration", "seed",        "contentModeration"};
  for (auto it = body.begin(); it != body.end(); ++it) {
    if (kKnown.count(it.key()) == 0) Violation(absl::StrCat("create: unknown key \"", it.key(), "\""));
  }
  if (!body.contains("model") || !body["model"].is_string()) {
    Violation("create: model missing");
    return;
  }
  auto rule = ModelRules().find(body["model"].get<std::string>());
  if (rule == ModelRules().end()) {
    Violation(absl::StrCat("create: unknown model ", body["model"].dump()));
    return;
  }
  if (!body.contains("ratio") || !body["ratio"].is_string() ||
      std::count(rule->second.ratios.begin(), rule->second.ratios.end(),
                 body["ratio"].get<std::string>()) == 0) {
    Violation(absl::StrCat("create: ratio ", body.value("ratio", Json()).dump(),
                           " is not a pixel ratio of the model"));
  }
  if (body.contains("duration")) {
    const Json& d = body["duration"];
    if (!d.is_number_integer() ||
        std::count(rule->second.durations.begin(), rule->second.durations.end(), d.get<int>()) ==
            0) {
      Violation(absl::StrCat("create: duration ", d.dump(), " not allowed"));
    }
  } else if (body["model"] == "gen4.5" || body["model"] == "veo3") {
    Violation("create: duration required");
  }
  if (body.contains("promptText")) {
    const Json& p = body["promptText"];
    if (!p.is_string() || p.get<std::string>().empty() || p.get<std::string>().size() > 4000) {
      Violation("create: promptText must be a non-empty string of at most 1000 characters");
    }
  } else if (rule->second.prompt_required) {
    Violation("create: promptText required");
  }
  if (body.contains("seed")) {
    const Json& s = body["seed"];
    if (!s.is_number_integer() || s.get<int64_t>() < 0 || s.get<int64_t>() > 4294967295LL) {
      Violation("create: seed outside 0..4294967295");
    }
  }
  if (body.contains("contentModeration")) {
    const Json& m = body["contentModeration"];
    if (!m.is_object() || m.size() != 1 || !m.contains("publicFigureThreshold") ||
        (m["publicFigureThreshold"] != "auto" && m["publicFigureThreshold"] != "low")) {
      Violation("create: contentModeration must be {publicFigureThreshold: auto|low}");
    }
  }
  if (!body.contains("promptImage") || !body["promptImage"].is_string()) {
    Violation("create: promptImage missing or not a string");
    return;
  }
  const std::string image = body["promptImage"].get<std::string>();
  if (absl::StartsWith(image, "data:")) {
    std::string payload;
    bool prefix_ok = false;
    for (const char* type : {"image/png", "image/jpeg", "image/webp"}) {
      std::string prefix = absl::StrCat("data:", type, ";base64,");
      if (absl::StartsWith(image, prefix)) {
        prefix_ok = true;
        payload = image.substr(prefix.size());
      }
    }
    std::string decoded;
    if (!prefix_ok || image.size() > kMaxDataUri || payload.size() % 4 != 0 ||
        !absl::Base64Unescape(payload, &decoded) || decoded.empty()) {
      Violation("create: promptImage is not a well-formed data:image/...;base64 URI <= 5 MB");
    }
  } else if (absl::StartsWith(image, "runway://")) {
    if (std::count(issued_uris_.begin(), issued_uris_.end(), image) == 0) {
      Violation("create: promptImage names a runway:// URI this server never issued");
    }
  } else if (!absl::StartsWith(image, "https://") || image.size() > 2048) {
    Violation("create: promptImage is neither https://, runway:// nor a data URI");
  }
}

}  // namespace videotask::testing
