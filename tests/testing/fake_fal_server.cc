#include "tests/testing/fake_fal_server.h"

#include <algorithm>
#include <set>
#include <string>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace videotask::testing {

const char kFakeFalKey[] = "0b6c2f7e-fake-4d1e-9a77-5e0c1d2b3a4f:5f4dcc3b5aa765d61d8327deb882cf99";

namespace {

using Json = nlohmann::json;

// One input of a model as fal declares it, written independently of the
// backend's table.
struct Input {
  enum Kind { kText, kChoice, kBool, kNumber, kInt } kind;
  std::vector<std::string> choices;
  double min = 0, max = 0;
  bool required = false;
};

const std::map<std::string, std::map<std::string, Input>>& Models() {
  static const auto* models = [] {
    Input prompt{Input::kText, {}, 0, 2500, true};
    Input image{Input::kText, {}, 0, 0, true};
    Input text{Input::kText, {}, 0, 2500, false};
    Input flag{Input::kBool, {}, 0, 0, false};
    return new std::map<std::string, std::map<std::string, Input>>{
        {"fal-ai/kling-video/v2.1/standard/image-to-video",
         {{"prompt", prompt},
          {"image_url", image},
          {"duration", {Input::kChoice, {"5", "10"}}},
          {"negative_prompt", text},
          {"cfg_scale", {Input::kNumber, {}, 0, 1}}}},
        {"fal-ai/minimax/hailuo-02/standard/image-to-video",
         {{"prompt", prompt},
          {"image_url", image},
          {"duration", {Input::kChoice, {"6", "10"}}},
          {"resolution", {Input::kChoice, {"512P", "768P"}}},
          {"prompt_optimizer", flag},
          {"end_image_url", {Input::kText, {}, 0, 0, false}}}},
        {"fal-ai/veo3.1/fast/image-to-video",
         {{"prompt", prompt},
          {"image_url", image},
          {"aspect_ratio", {Input::kChoice, {"auto", "16:9", "9:16"}}},
          {"duration", {Input::kChoice, {"4s", "6s", "8s"}}},
          {"resolution", {Input::kChoice, {"720p", "1080p", "4k"}}},
          {"generate_audio", flag},
          {"negative_prompt", text},
          {"seed", {Input::kInt, {}, 0, 4294967295.0}},
          {"auto_fix", flag},
          {"safety_tolerance", {Input::kChoice, {"1", "2", "3", "4", "5", "6"}}}}},
    };
  }();
  return *models;
}

// The submit body's prompt, or "".
std::string PromptOf(const std::string& body) {
  Json json = Json::parse(body, nullptr, false);
  if (!json.is_object() || !json.contains("prompt") || !json["prompt"].is_string()) return "";
  return json["prompt"].get<std::string>();
}

Json Problem(const std::string& loc, const std::string& msg, const std::string& type) {
  return {{"loc", {"body", loc}}, {"msg", msg}, {"type", type}};
}

std::optional<Json> CheckValue(const std::string& name, const Input& input, const Json& v) {
  switch (input.kind) {
    case Input::kText:
      if (!v.is_string()) return Problem(name, "Input should be a valid string", "string_type");
      if (input.max > 0 && v.get<std::string>().size() > input.max) {
        return Problem(name, "String should have at most 2500 characters", "string_too_long");
      }
      return std::nullopt;
    case Input::kChoice:
      if (!v.is_string() ||
          std::count(input.choices.begin(), input.choices.end(), v.get<std::string>()) == 0) {
        return Problem(name, "Input should be one of the allowed values", "literal_error");
      }
      return std::nullopt;
    case Input::kBool:
      if (!v.is_boolean()) return Problem(name, "Input should be a valid boolean", "bool_type");
      return std::nullopt;
    case Input::kNumber:
    case Input::kInt:
      if (!v.is_number() || (input.kind == Input::kInt && !v.is_number_integer())) {
        return Problem(name, "Input should be a valid number", "number_type");
      }
      if (v.get<double>() < input.min || v.get<double>() > input.max) {
        return Problem(name, "Input is out of range", "less_than_equal");
      }
      return std::nullopt;
  }
  return std::nullopt;
}

}  // namespace

FakeReply FalModelError(int status, const std::string& type, const std::string& msg,
                        const std::string& loc) {
  return FakeReply::Json(status, {{"detail", {Problem(loc, msg, type)}}});
}

FakeReply FalRequestError(int status, const std::string& type, const std::string& msg,
                          std::optional<std::string> retry_after) {
  FakeReply reply = FakeReply::Json(status, {{"detail", msg}, {"error_type", type}});
  reply.headers.emplace_back("X-Fal-Error-Type", type);
  if (retry_after.has_value()) reply.headers.emplace_back("Retry-After", *retry_after);
  return reply;
}

FakeReply FalDropBeforeRead() {
  FakeReply reply = FakeReply::Close();
  reply.status = 0;  // marks "before the body was read"
  return reply;
}

FakeFalServer::FakeFalServer(std::string key)
    : key_(std::move(key)), output_([] {
        std::string bytes =
            "\0\0\0\x18"
            "ftypmp42";
        for (int i = 0; i < 150'000; ++i) bytes.push_back(static_cast<char>((i * 7919) % 256));
        return bytes;
      }()) {
  steps_ = {{"IN_QUEUE", 2}, {"IN_QUEUE", 0}, {"IN_PROGRESS"}, {"COMPLETED"}};
  auto plain = [this](FalRoute r) {
    return [this, r](const httplib::Request& req, httplib::Response& res) {
      Handle(r, req, res, nullptr);
    };
  };
  server_.Get(R"(/([^/]+)/([^/]+)/requests/([^/]+)/status)", plain(FalRoute::kStatus));
  server_.Get(R"(/([^/]+)/([^/]+)/requests/([^/]+))", plain(FalRoute::kResult));
  server_.Put(R"(/([^/]+)/([^/]+)/requests/([^/]+)/cancel)", plain(FalRoute::kCancel));
  server_.Put(R"(/upload-target/(\d+))", plain(FalRoute::kUploadTarget));
  server_.Get(R"(/files/([^/]+))", plain(FalRoute::kFile));
  // Every POST reads its body itself, so a fault can drop it unread.
  server_.Post(R"(/.*)", [this](const httplib::Request& req, httplib::Response& res,
                                const httplib::ContentReader& reader) {
    Handle(req.path == "/storage/upload/initiate" ? FalRoute::kUploadInitiate : FalRoute::kSubmit,
           req, res, &reader);
  });
  server_.set_keep_alive_timeout(1);
  server_.set_read_timeout(5, 0);
  server_.set_tcp_nodelay(true);
}

FakeFalServer::~FakeFalServer() { Stop(); }

absl::Status FakeFalServer::Start() {
  port_ = server_.bind_to_any_port("127.0.0.1");
  if (port_ <= 0) return absl::UnavailableError("fake fal server could not bind 127.0.0.1");
  thread_ = std::thread([this] { server_.listen_after_bind(); });
  while (!server_.is_running()) std::this_thread::yield();
  return absl::OkStatus();
}

void FakeFalServer::Stop() {
  if (!stopping_.HasBeenNotified()) stopping_.Notify();
  if (thread_.joinable()) {
    server_.stop();
    thread_.join();
  }
}

std::string FakeFalServer::base_url() const { return absl::StrCat("http://127.0.0.1:", port_); }

void FakeFalServer::Enqueue(FalRoute route, FakeReply reply) {
  absl::MutexLock lock(&mu_);
  queued_replies_[route].push_back(std::move(reply));
}

void FakeFalServer::SetSteps(std::vector<FalStep> steps) {
  absl::MutexLock lock(&mu_);
  steps_ = std::move(steps);
}

void FakeFalServer::SetResult(std::optional<FakeReply> reply) {
  absl::MutexLock lock(&mu_);
  result_ = std::move(reply);
}

void FakeFalServer::EnqueueForPrompt(const std::string& prompt, FakeReply reply) {
  absl::MutexLock lock(&mu_);
  prompt_replies_[prompt].push_back(std::move(reply));
}

void FakeFalServer::SetScriptForPrompt(const std::string& prompt, std::vector<FalStep> steps,
                                       std::optional<FakeReply> result) {
  absl::MutexLock lock(&mu_);
  prompt_scripts_[prompt] = {std::move(steps), std::move(result)};
}

int FakeFalServer::submits_with_prompt(const std::string& prompt) const {
  absl::MutexLock lock(&mu_);
  auto it = prompt_submits_.find(prompt);
  return it == prompt_submits_.end() ? 0 : it->second;
}

int FakeFalServer::request_count(FalRoute route) const {
  absl::MutexLock lock(&mu_);
  auto it = counts_.find(route);
  return it == counts_.end() ? 0 : it->second;
}

int FakeFalServer::unserved(FalRoute route) const {
  absl::MutexLock lock(&mu_);
  auto it = queued_replies_.find(route);
  return it == queued_replies_.end() ? 0 : static_cast<int>(it->second.size());
}

std::vector<std::string> FakeFalServer::queued_ids() const {
  absl::MutexLock lock(&mu_);
  return queued_ids_;
}

std::vector<nlohmann::json> FakeFalServer::queued_bodies() const {
  absl::MutexLock lock(&mu_);
  return queued_bodies_;
}

int FakeFalServer::queued_with_prompt(const std::string& prompt) const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(
      std::count_if(queued_bodies_.begin(), queued_bodies_.end(),
                    [&](const Json& b) { return b.value("prompt", "") == prompt; }));
}

std::vector<std::string> FakeFalServer::cancelled_ids() const {
  absl::MutexLock lock(&mu_);
  return cancelled_ids_;
}

std::vector<std::string> FakeFalServer::uploaded_files() const {
  absl::MutexLock lock(&mu_);
  return uploaded_files_;
}

std::vector<std::string> FakeFalServer::violations() const {
  absl::MutexLock lock(&mu_);
  return violations_;
}

void FakeFalServer::Violation(std::string what) { violations_.push_back(std::move(what)); }

void FakeFalServer::Handle(FalRoute route, const httplib::Request& req, httplib::Response& res,
                           const httplib::ContentReader* reader) {
  std::optional<FakeReply> reply;
  {
    absl::MutexLock lock(&mu_);
    ++counts_[route];
    auto& queue = queued_replies_[route];
    if (!queue.empty()) {
      reply = std::move(queue.front());
      queue.pop_front();
    }
  }
  if (reply.has_value() && reply->fault == FakeReply::Fault::kCloseWithoutAnswer &&
      reply->status == 0) {
    ShutdownConnectionOf(req);  // the body stays unread
    res.status = 500;
    return;
  }
  httplib::Request full = req;
  if (reader != nullptr) {
    (*reader)([&full](const char* data, size_t length) {
      full.body.append(data, length);
      return true;
    });
  }
  if (route == FalRoute::kSubmit) {
    absl::MutexLock lock(&mu_);
    const std::string prompt = PromptOf(full.body);
    ++prompt_submits_[prompt];
    auto by_prompt = prompt_replies_.find(prompt);
    if (by_prompt != prompt_replies_.end() && !by_prompt->second.empty()) {
      // Served before the route's queue: put the route's reply back first.
      if (reply.has_value()) queued_replies_[route].push_front(*std::move(reply));
      reply = std::move(by_prompt->second.front());
      by_prompt->second.pop_front();
    }
  }
  if (!CheckHeaders(route, full, res)) return;
  if (reply.has_value() && route == FalRoute::kSubmit &&
      reply->fault == FakeReply::Fault::kCloseWithoutAnswer) {
    Default(route, full, res);  // queued (and billed), but the answer is lost
    ShutdownConnectionOf(full);
    return;
  }
  if (reply.has_value()) {
    Apply(*reply, full, res);
    return;
  }
  Default(route, full, res);
}

void FakeFalServer::Apply(const FakeReply& reply, const httplib::Request& req,
                          httplib::Response& res) {
  if (reply.delay > absl::ZeroDuration()) stopping_.WaitForNotificationWithTimeout(reply.delay);
  if (reply.fault == FakeReply::Fault::kCloseWithoutAnswer) {
    ShutdownConnectionOf(req);
    res.status = 500;
    return;
  }
  res.status = reply.status;
  if (reply.fault == FakeReply::Fault::kTruncatedBody) {
    std::string body = reply.body;
    res.set_content_provider(body.size(), "application/json",
                             [body](size_t, size_t, httplib::DataSink& sink) {
                               sink.write(body.data(), body.size() / 2);
                               return false;
                             });
    return;
  }
  for (const auto& [name, value] : reply.headers) res.set_header(name.c_str(), value);
  if (!reply.body.empty()) res.set_content(reply.body, "application/json");
}

bool FakeFalServer::CheckHeaders(FalRoute route, const httplib::Request& req,
                                 httplib::Response& res) {
  absl::MutexLock lock(&mu_);
  const bool api = route != FalRoute::kUploadTarget && route != FalRoute::kFile;
  if (!absl::StartsWith(req.get_header_value("User-Agent"), "videotask/")) {
    Violation(absl::StrCat(req.method, " ", req.path, ": User-Agent is not videotask/<version>"));
  }
  if (!api) {
    if (req.has_header("Authorization")) {
      Violation(absl::StrCat(req.path, ": the fal key was sent to a file URL"));
    }
    return true;
  }
  if (req.get_header_value("Authorization") != absl::StrCat("Key ", key_)) {
    Violation(absl::StrCat(req.method, " ", req.path, ": Authorization is not \"Key <FAL_KEY>\""));
    res.status = 401;
    res.set_content(R"({"detail": "No user found for Key ID and Secret"})", "application/json");
    return false;
  }
  return true;
}

void FakeFalServer::Default(FalRoute route, const httplib::Request& req, httplib::Response& res) {
  absl::MutexLock lock(&mu_);
  switch (route) {
    case FalRoute::kSubmit:
      Submit(req, res);
      return;
    case FalRoute::kStatus:
      Status(req, res);
      return;
    case FalRoute::kResult:
      Result(req, res);
      return;
    case FalRoute::kCancel:
      Cancel(req, res);
      return;
    case FalRoute::kUploadInitiate: {
      Json body = Json::parse(req.body, nullptr, false);
      if (!body.is_object() || !body.contains("content_type") || !body.contains("file_name") ||
          body.size() != 2 || req.get_param_value("storage_type") != "fal-cdn-v3") {
        Violation("upload initiate: body is not {content_type, file_name} or no storage_type");
      }
      std::string slot = absl::StrCat(++next_id_);
      std::string file_url = absl::StrCat("https://v3.fal.media/files/fake/", slot, ".png");
      issued_file_urls_.push_back(file_url);
      res.set_content(Json{{"upload_url", absl::StrCat(base_url(), "/upload-target/", slot)},
                           {"file_url", file_url}}
                          .dump(),
                      "application/json");
      return;
    }
    case FalRoute::kUploadTarget:
      uploaded_files_.push_back(req.body);
      res.status = 200;
      return;
    case FalRoute::kFile:
      res.set_content(output_, "video/mp4");
      return;
  }
}

nlohmann::json FakeFalServer::Urls(const std::string& owner_app, const std::string& id) const {
  std::string base = absl::StrCat(base_url(), "/", owner_app, "/requests/", id);
  return {{"request_id", id},
          {"response_url", base},
          {"status_url", absl::StrCat(base, "/status")},
          {"cancel_url", absl::StrCat(base, "/cancel")}};
}

void FakeFalServer::Submit(const httplib::Request& req, httplib::Response& res) {
  const std::string model = req.path.substr(1);
  auto send = [&res](int status, const Json& body) {
    res.status = status;
    res.set_content(body.dump(), "application/json");
  };
  if (Models().count(model) == 0) {
    Violation(absl::StrCat("submit to unknown model ", model));
    send(404, {{"detail", absl::StrCat("Application \"", model, "\" not found")}});
    return;
  }
  Json body = Json::parse(req.body, nullptr, false);
  if (!absl::StartsWith(req.get_header_value("Content-Type"), "application/json") ||
      !body.is_object()) {
    Violation("submit: body is not a JSON object");
    send(422,
         {{"detail", {Problem("body", "Input should be an object", "model_attributes_type")}}});
    return;
  }
  std::vector<Json> problems = CheckInput(model, body);
  if (!problems.empty()) {
    Violation(absl::StrCat("submit: ", Json(problems).dump()));
    send(422, {{"detail", problems}});
    return;
  }
  const std::string owner_app = model.substr(0, model.find('/', model.find('/') + 1));
  ++next_id_;
  std::string id = absl::StrFormat("%08x-fa1f-4a11-8000-%012d", next_id_ * 7919, next_id_);
  auto script = prompt_scripts_.find(body.value("prompt", ""));
  requests_[id] = script == prompt_scripts_.end()
                      ? Request{owner_app, steps_, 0, false, result_}
                      : Request{owner_app, script->second.first, 0, false, script->second.second};
  queued_ids_.push_back(id);
  queued_bodies_.push_back(body);
  Json answer = Urls(owner_app, id);
  answer["status"] = "IN_QUEUE";
  answer["queue_position"] = static_cast<int>(requests_.size() - 1);
  send(200, answer);
}

std::vector<nlohmann::json> FakeFalServer::CheckInput(const std::string& model,
                                                      const nlohmann::json& body) {
  std::vector<Json> problems;
  const auto& inputs = Models().at(model);
  for (auto it = body.begin(); it != body.end(); ++it) {
    auto input = inputs.find(it.key());
    if (input == inputs.end()) {
      problems.push_back(Problem(it.key(), "Extra inputs are not permitted", "extra_forbidden"));
    } else if (std::optional<Json> p = CheckValue(it.key(), input->second, *it); p.has_value()) {
      problems.push_back(*p);
    }
  }
  for (const auto& [name, input] : inputs) {
    if (input.required && !body.contains(name)) {
      problems.push_back(Problem(name, "Field required", "missing"));
    }
  }
  if (body.contains("image_url") && body["image_url"].is_string()) {
    const std::string url = body["image_url"].get<std::string>();
    std::string decoded;
    bool ok = false;
    for (const char* type : {"image/png", "image/jpeg", "image/webp"}) {
      std::string prefix = absl::StrCat("data:", type, ";base64,");
      if (absl::StartsWith(url, prefix)) {
        ok = absl::Base64Unescape(url.substr(prefix.size()), &decoded) && !decoded.empty();
      }
    }
    if (absl::StartsWith(url, "https://v3.fal.media/")) {
      ok = std::count(issued_file_urls_.begin(), issued_file_urls_.end(), url) > 0;
    } else if (absl::StartsWith(url, "https://")) {
      ok = true;
    }
    if (!ok)
      problems.push_back(Problem("image_url", "Could not load the image", "image_load_error"));
  }
  return problems;
}

FakeFalServer::Request* FakeFalServer::Find(const httplib::Request& req, httplib::Response& res) {
  auto it = requests_.find(req.matches[3]);
  if (it == requests_.end() ||
      it->second.owner_app != absl::StrCat(req.matches[1].str(), "/", req.matches[2].str())) {
    res.status = 404;
    res.set_content(R"({"detail": "Request not found"})", "application/json");
    return nullptr;
  }
  return &it->second;
}

void FakeFalServer::Status(const httplib::Request& req, httplib::Response& res) {
  Request* request = Find(req, res);
  if (request == nullptr) return;
  FalStep step = request->steps.empty()
                     ? FalStep{"COMPLETED"}
                     : request->steps[std::min(request->next, request->steps.size() - 1)];
  ++request->next;
  if (request->cancelled) step = {"COMPLETED"};
  Json body = Urls(request->owner_app, req.matches[3]);
  body["status"] = step.status;
  if (step.status == "IN_QUEUE" && step.queue_position >= 0) {
    body["queue_position"] = step.queue_position;
  }
  if (step.status != "IN_QUEUE") body["logs"] = nullptr;
  res.status = step.status == "COMPLETED" ? 200 : 202;
  res.set_content(body.dump(), "application/json");
}

void FakeFalServer::Result(const httplib::Request& req, httplib::Response& res) {
  Request* request = Find(req, res);
  if (request == nullptr) return;
  const bool completed =
      request->cancelled ||
      (!request->steps.empty() && request->next > 0 &&
       request->steps[std::min(request->next - 1, request->steps.size() - 1)].status ==
           "COMPLETED");
  if (!completed) {
    Violation("result fetched before the status said COMPLETED");
    res.status = 400;
    res.set_content(R"({"detail": "Request is still in progress"})", "application/json");
    return;
  }
  if (request->cancelled) {
    res.status = 499;
    res.set_content(R"({"detail": "Request was cancelled", "error_type": "client_cancelled"})",
                    "application/json");
    return;
  }
  if (request->result.has_value()) {
    res.status = request->result->status;
    for (const auto& [name, value] : request->result->headers) res.set_header(name.c_str(), value);
    res.set_content(request->result->body, "application/json");
    return;
  }
  std::string id = req.matches[3];
  Json video = {{"url", absl::StrCat(base_url(), "/files/", id, ".mp4")},
                {"content_type", "video/mp4"},
                {"file_name", "output.mp4"},
                {"file_size", output_.size()}};
  res.set_content(Json{{"video", video}}.dump(), "application/json");
}

void FakeFalServer::Cancel(const httplib::Request& req, httplib::Response& res) {
  auto it = requests_.find(req.matches[3]);
  if (it == requests_.end()) {
    res.status = 404;
    res.set_content(R"({"status": "NOT_FOUND"})", "application/json");
    return;
  }
  Request& request = it->second;
  const bool done =
      !request.steps.empty() && request.next > 0 &&
      request.steps[std::min(request.next - 1, request.steps.size() - 1)].status == "COMPLETED";
  if (done || request.cancelled) {
    res.status = 400;
    res.set_content(R"({"status": "ALREADY_COMPLETED"})", "application/json");
    return;
  }
  request.cancelled = true;
  cancelled_ids_.push_back(it->first);
  res.status = 202;
  res.set_content(R"({"status": "CANCELLATION_REQUESTED"})", "application/json");
}

}  // namespace videotask::testing
