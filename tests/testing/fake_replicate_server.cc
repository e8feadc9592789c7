#include "tests/testing/fake_replicate_server.h"

#include <algorithm>
#include <set>
#include <string>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "tests/testing/fake_runway_server.h"  // ShutdownConnectionOf

namespace videotask::testing {

const char kFakeReplicateToken[] = "r8_0123456789abcdefghijABCDEFGHIJ0123456";

namespace {

using Json = nlohmann::json;

// The create body's input.prompt, or "".
std::string PromptOf(const httplib::Request& req) {
  Json body = Json::parse(req.body, nullptr, false);
  if (!body.is_object() || !body.contains("input") || !body["input"].is_object()) return "";
  const Json& input = body["input"];
  if (!input.contains("prompt") || !input["prompt"].is_string()) return "";
  return input["prompt"].get<std::string>();
}

// Our own rule, not Replicate's: data URIs only up to 256 KB.
constexpr size_t kMaxDataUriBytes = 256 * 1024;

// One input of a model, as the fake knows it (independent of the backend).
struct InputRule {
  enum class Kind { kString, kUri, kInteger, kBoolean, kEnum };
  Kind kind;
  bool required = false;
  std::vector<std::string> values;  // kEnum: strings; kInteger: allowed values ("" = any)
};

const std::map<std::string, std::map<std::string, InputRule>>& ModelRules() {
  using K = InputRule::Kind;
  static const auto* rules = new std::map<std::string, std::map<std::string, InputRule>>{
      {"kwaivgi/kling-v2.1",
       {{"prompt", {K::kString, true, {}}},
        {"start_image", {K::kUri, true, {}}},
        {"mode", {K::kEnum, false, {"standard", "pro"}}},
        {"duration", {K::kInteger, false, {"5", "10"}}},
        {"negative_prompt", {K::kString, false, {}}},
        {"end_image", {K::kUri, false, {}}}}},
      {"minimax/hailuo-02",
       {{"prompt", {K::kString, true, {}}},
        {"first_frame_image", {K::kUri, false, {}}},
        {"last_frame_image", {K::kUri, false, {}}},
        {"duration", {K::kInteger, false, {"6", "10"}}},
        {"resolution", {K::kEnum, false, {"512p", "768p", "1080p"}}},
        {"prompt_optimizer", {K::kBoolean, false, {}}}}},
      {"google/veo-3-fast",
       {{"prompt", {K::kString, true, {}}},
        {"image", {K::kUri, false, {}}},
        {"aspect_ratio", {K::kEnum, false, {"16:9", "9:16"}}},
        {"duration", {K::kInteger, false, {"4", "6", "8"}}},
        {"resolution", {K::kEnum, false, {"720p", "1080p"}}},
        {"negative_prompt", {K::kString, false, {}}},
        {"generate_audio", {K::kBoolean, false, {}}},
        {"seed", {K::kInteger, false, {}}}}},
  };
  return *rules;
}

Json Field(const std::string& type, const std::string& field, const std::string& description) {
  return {{"type", type}, {"field", field}, {"description", description}};
}

bool IsTerminal(const std::string& status) {
  return status == "succeeded" || status == "failed" || status == "canceled" ||
         status == "aborted";
}

}  // namespace

ReplicateReply ReplicateReply::Json(int status, const nlohmann::json& body) {
  ReplicateReply reply;
  reply.status = status;
  reply.body = body.dump();
  return reply;
}

ReplicateReply ReplicateReply::Problem(int status, const std::string& title,
                                       const std::string& detail,
                                       std::optional<std::string> retry_after) {
  ReplicateReply reply = Json(status, {{"title", title}, {"detail", detail}, {"status", status}});
  reply.headers.emplace_back("Content-Type", "application/problem+json");
  if (retry_after.has_value()) reply.headers.emplace_back("Retry-After", *retry_after);
  return reply;
}

ReplicateReply ReplicateReply::Raw(int status, std::string body) {
  ReplicateReply reply;
  reply.status = status;
  reply.body = std::move(body);
  return reply;
}

ReplicateReply ReplicateReply::Close() {
  ReplicateReply reply;
  reply.fault = Fault::kCloseWithoutAnswer;
  return reply;
}

ReplicateReply ReplicateReply::Truncated() {
  ReplicateReply reply;
  reply.status = 201;
  reply.fault = Fault::kTruncatedBody;
  reply.body = std::string(2000, 'x');
  return reply;
}

ReplicateReply ReplicateReply::Slow(absl::Duration delay) {
  ReplicateReply reply = Json(201, {{"id", "slowprediction"}, {"status", "starting"}});
  reply.delay = delay;
  return reply;
}

FakeReplicateServer::FakeReplicateServer(std::string token) : token_(std::move(token)) {
  script_ = {{"starting"}, {"processing"}, {"succeeded"}};
  output_.reserve(100'000);
  for (int i = 0; i < 100'000; ++i) output_.push_back(static_cast<char>('A' + i % 23));
  auto route = [this](ReplicateRoute r) {
    return [this, r](const httplib::Request& req, httplib::Response& res) { Handle(r, req, res); };
  };
  server_.Post(R"(/v1/models/([^/]+)/([^/]+)/predictions)", route(ReplicateRoute::kCreate));
  server_.Get(R"(/v1/predictions/([^/]+))", route(ReplicateRoute::kGetPrediction));
  server_.Post(R"(/v1/predictions/([^/]+)/cancel)", route(ReplicateRoute::kCancel));
  server_.Post("/v1/files", route(ReplicateRoute::kUploadFile));
  server_.Get(R"(/outputs/([^/]+))", route(ReplicateRoute::kOutput));
  server_.set_keep_alive_timeout(1);
  server_.set_read_timeout(5, 0);
  server_.set_tcp_nodelay(true);
}

FakeReplicateServer::~FakeReplicateServer() { Stop(); }

absl::Status FakeReplicateServer::Start() {
  port_ = server_.bind_to_any_port("127.0.0.1");
  if (port_ <= 0) return absl::UnavailableError("fake Replicate server could not bind 127.0.0.1");
  thread_ = std::thread([this] { server_.listen_after_bind(); });
  while (!server_.is_running()) std::this_thread::yield();
  return front_.Start(port_);
}

void FakeReplicateServer::Stop() {
  if (!stopping_.HasBeenNotified()) stopping_.Notify();
  front_.Stop();
  if (thread_.joinable()) {
    server_.stop();
    thread_.join();
  }
}

std::string FakeReplicateServer::base_url() const {
  return absl::StrCat("http://127.0.0.1:", front_.port());
}

void FakeReplicateServer::Enqueue(ReplicateRoute route, ReplicateReply reply) {
  absl::MutexLock lock(&mu_);
  queued_[route].push_back(std::move(reply));
}

void FakeReplicateServer::SetScript(std::vector<PredictionStep> steps) {
  absl::MutexLock lock(&mu_);
  script_ = std::move(steps);
}

void FakeReplicateServer::EnqueueForPrompt(const std::string& prompt, ReplicateReply reply) {
  absl::MutexLock lock(&mu_);
  prompt_replies_[prompt].push_back(std::move(reply));
}

void FakeReplicateServer::SetScriptForPrompt(const std::string& prompt,
                                             std::vector<PredictionStep> steps) {
  absl::MutexLock lock(&mu_);
  prompt_scripts_[prompt] = std::move(steps);
}

int FakeReplicateServer::create_requests_with_prompt(const std::string& prompt) const {
  absl::MutexLock lock(&mu_);
  auto it = prompt_creates_.find(prompt);
  return it == prompt_creates_.end() ? 0 : it->second;
}

void FakeReplicateServer::SetOutput(std::string bytes) {
  absl::MutexLock lock(&mu_);
  output_ = std::move(bytes);
}

void FakeReplicateServer::SetOutputAsList(bool as_list) {
  absl::MutexLock lock(&mu_);
  output_as_list_ = as_list;
}

int FakeReplicateServer::unserved(ReplicateRoute route) const {
  absl::MutexLock lock(&mu_);
  auto it = queued_.find(route);
  return it == queued_.end() ? 0 : static_cast<int>(it->second.size());
}

int FakeReplicateServer::request_count(ReplicateRoute route) const {
  absl::MutexLock lock(&mu_);
  auto it = counts_.find(route);
  return it == counts_.end() ? 0 : it->second;
}

#define VT_FAKE_GETTER(type, name, member)         \
  type FakeReplicateServer::name() const {         \
    absl::MutexLock lock(&mu_);                    \
    return member;                                 \
  }
VT_FAKE_GETTER(std::vector<std::string>, prediction_ids, prediction_ids_)
VT_FAKE_GETTER(std::vector<std::string>, created_prompts, created_prompts_)
VT_FAKE_GETTER(std::vector<std::string>, cancelled_ids, cancelled_ids_)
VT_FAKE_GETTER(std::vector<nlohmann::json>, create_bodies, create_bodies_)
VT_FAKE_GETTER(std::vector<std::string>, create_models, create_models_)
VT_FAKE_GETTER(std::vector<std::string>, uploaded_files, uploaded_files_)
VT_FAKE_GETTER(std::vector<std::string>, violations, violations_)
VT_FAKE_GETTER(std::string, output, output_)
#undef VT_FAKE_GETTER

void FakeReplicateServer::Violation(std::string what) { violations_.push_back(std::move(what)); }

bool FakeReplicateServer::CheckAuth(ReplicateRoute route, const httplib::Request& req,
                                    httplib::Response& res) {
  absl::MutexLock lock(&mu_);
  if (!absl::StartsWith(req.get_header_value("User-Agent"), "videotask/")) {
    Violation("User-Agent is not videotask/<version>");
  }
  if (route == ReplicateRoute::kOutput) {
    if (req.has_header("Authorization")) Violation("the API token was sent to a delivery URL");
    return true;
  }
  if (req.get_header_value("Authorization") == absl::StrCat("Bearer ", token_)) return true;
  res.status = 401;
  res.set_content(Json{{"title", "Unauthenticated"},
                       {"detail", "You did not pass a valid authentication token"},
                       {"status", 401}}
                      .dump(),
                  "application/problem+json");
  return false;
}

void FakeReplicateServer::Handle(ReplicateRoute route, const httplib::Request& req,
                                 httplib::Response& res) {
  {
    absl::MutexLock lock(&mu_);
    ++counts_[route];
    if (route == ReplicateRoute::kCreate) ++prompt_creates_[PromptOf(req)];
  }
  if (!CheckAuth(route, req, res)) return;
  if (ServeQueued(route, req, res)) return;
  absl::MutexLock lock(&mu_);
  switch (route) {
    case ReplicateRoute::kCreate:
      Create(req, res);
      return;
    case ReplicateRoute::kGetPrediction:
      Get(req.matches[1], res);
      return;
    case ReplicateRoute::kCancel:
      CancelPrediction(req.matches[1], res);
      return;
    case ReplicateRoute::kUploadFile:
      UploadFile(req, res);
      return;
    case ReplicateRoute::kOutput:
      res.status = 200;
      res.set_content(output_, "video/mp4");
      return;
  }
}

bool FakeReplicateServer::ServeQueued(ReplicateRoute route, const httplib::Request& req,
                                      httplib::Response& res) {
  std::optional<ReplicateReply> reply;
  {
    absl::MutexLock lock(&mu_);
    auto& queue = queued_[route];
    auto by_prompt = route == ReplicateRoute::kCreate ? prompt_replies_.find(PromptOf(req))
                                                      : prompt_replies_.end();
    if (by_prompt != prompt_replies_.end() && !by_prompt->second.empty()) {
      reply = std::move(by_prompt->second.front());
      by_prompt->second.pop_front();
    } else if (!queue.empty()) {
      reply = std::move(queue.front());
      queue.pop_front();
    } else {
      return false;
    }
  }
  Apply(*reply, req, res);
  return true;
}

void FakeReplicateServer::Apply(const ReplicateReply& reply, const httplib::Request& req,
                                httplib::Response& res) {
  if (reply.delay > absl::ZeroDuration()) stopping_.WaitForNotificationWithTimeout(reply.delay);
  switch (reply.fault) {
    case ReplicateReply::Fault::kCloseWithoutAnswer:
      ShutdownConnectionOf(req);
      res.status = 500;
      return;
    case ReplicateReply::Fault::kTruncatedBody: {
      res.status = reply.status;
      std::string body = reply.body;
      res.set_content_provider(body.size(), "application/json",
                               [body](size_t, size_t, httplib::DataSink& sink) {
                                 sink.write(body.data(), body.size() / 2);
                                 return false;  // closes the connection mid-body
                               });
      return;
    }
    case ReplicateReply::Fault::kNone:
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

Json FakeReplicateServer::PredictionJson(const std::string& id, const FakePrediction& p) const {
  const std::string get = absl::StrCat(base_url(), "/v1/predictions/", id);
  Json output = nullptr;
  if (p.status == "succeeded") {
    std::string url = absl::StrCat(base_url(), "/outputs/", id, ".mp4");
    output = output_as_list_ ? Json::array({url}) : Json(url);
  }
  Json json = {{"id", id},
               {"model", p.model},
               {"version", "hidden"},
               {"input", p.input},
               {"output", output},
               {"error", p.error.empty() ? Json(nullptr) : Json(p.error)},
               {"logs", ""},
               {"status", p.status},
               {"source", "api"},
               {"data_removed", false},
               {"created_at", "2026-08-01T12:00:00.000Z"},
               {"urls",
                {{"get", get},
                 {"cancel", absl::StrCat(get, "/cancel")},
                 {"web", absl::StrCat("https://replicate.com/p/", id)}}}};
  if (IsTerminal(p.status)) json["metrics"] = {{"predict_time", 1.5}, {"total_time", 2.0}};
  return json;
}

void FakeReplicateServer::Create(const httplib::Request& req, httplib::Response& res) {
  const std::string model = absl::StrCat(req.matches[1].str(), "/", req.matches[2].str());
  if (req.has_header("Prefer")) Violation("create: Prefer header sent");
  if (!absl::StartsWith(req.get_header_value("Content-Type"), "application/json")) {
    Violation("create: Content-Type is not application/json");
  }
  Json body = Json::parse(req.body, nullptr, false);
  if (body.is_discarded() || !body.is_object()) {
    Violation("create: body is not a JSON object");
    res.status = 400;
    res.set_content(Json{{"title", "Invalid JSON"}, {"status", 400}}.dump(), "application/json");
    return;
  }
  create_bodies_.push_back(body);
  create_models_.push_back(model);
  if (ModelRules().count(model) == 0) {
    Violation(absl::StrCat("create: unknown model ", model));
    res.status = 404;
    res.set_content(Json{{"title", "Not found"}, {"detail", "The requested resource could not be found."},
                         {"status", 404}}.dump(), "application/problem+json");
    return;
  }
  Json invalid = InvalidFields(model, body);
  if (!invalid.empty()) {
    std::string detail;
    for (const Json& f : invalid) {
      absl::StrAppend(&detail, "- ", f["field"].get<std::string>(), ": ",
                      f["description"].get<std::string>(), "\n");
    }
    Violation(absl::StrCat("create: ", detail));
    res.status = 422;
    res.set_content(Json{{"title", "Input validation failed"}, {"status", 422}, {"detail", detail},
                         {"invalid_fields", invalid}}.dump(), "application/problem+json");
    return;
  }
  std::string id = absl::StrFormat("fakepred%018d", ++next_id_);
  FakePrediction p;
  p.model = model;
  p.input = body["input"];
  auto script = prompt_scripts_.find(PromptOf(req));
  p.steps = script == prompt_scripts_.end() ? script_ : script->second;
  predictions_[id] = p;
  prediction_ids_.push_back(id);
  created_prompts_.push_back(body["input"]["prompt"].get<std::string>());
  res.status = 201;
  res.set_content(PredictionJson(id, p).dump(), "application/json");
}

Json FakeReplicateServer::InvalidFields(const std::string& model, const Json& body) {
  Json invalid = Json::array();
  for (auto it = body.begin(); it != body.end(); ++it) {
    if (it.key() != "input" && it.key() != "webhook" && it.key() != "webhook_events_filter") {
      invalid.push_back(Field("additional_property_not_allowed", it.key(),
                              absl::StrCat("Additional property ", it.key(), " is not allowed")));
    }
  }
  if (!body.contains("input") || !body["input"].is_object()) {
    invalid.push_back(Field("required", "input", "input is required"));
    return invalid;
  }
  const Json& input = body["input"];
  const auto& rules = ModelRules().at(model);
  for (auto it = input.begin(); it != input.end(); ++it) {
    const std::string field = absl::StrCat("input.", it.key());
    auto rule = rules.find(it.key());
    if (rule == rules.end()) {
      invalid.push_back(Field("additional_property_not_allowed", field,
                              absl::StrCat("Additional property ", it.key(), " is not allowed")));
      continue;
    }
    const Json& v = it.value();
    const std::vector<std::string>& allowed = rule->second.values;
    switch (rule->second.kind) {
      case InputRule::Kind::kString:
        if (!v.is_string()) invalid.push_back(Field("type", field, "must be a string"));
        break;
      case InputRule::Kind::kUri:
        CheckImage(field, v, invalid);
        break;
      case InputRule::Kind::kBoolean:
        if (!v.is_boolean()) invalid.push_back(Field("type", field, "must be a boolean"));
        break;
      case InputRule::Kind::kInteger:
        if (!v.is_number_integer()) {
          invalid.push_back(Field("type", field, "must be an integer"));
        } else if (!allowed.empty() && std::count(allowed.begin(), allowed.end(),
                                                  absl::StrCat(v.get<int64_t>())) == 0) {
          invalid.push_back(Field("enum", field, "is not one of the allowed values"));
        }
        break;
      case InputRule::Kind::kEnum:
        if (!v.is_string() ||
            std::count(allowed.begin(), allowed.end(), v.get<std::string>()) == 0) {
          invalid.push_back(Field("enum", field, "is not one of the allowed values"));
        }
        break;
    }
  }
  for (const auto& [name, rule] : rules) {
    if (rule.required && !input.contains(name)) {
      invalid.push_back(Field("required", absl::StrCat("input.", name), "is required"));
    }
  }
  if (model == "minimax/hailuo-02" && input.value("duration", Json(6)) == 10 &&
      input.value("resolution", Json("1080p")) != "768p") {
    invalid.push_back(Field("enum", "input.duration", "10 s is only offered at 768p"));
  }
  return invalid;
}

void FakeReplicateServer::CheckImage(const std::string& field, const Json& value,
                                     Json& invalid) {
  if (!value.is_string()) {
    invalid.push_back(Field("type", field, "must be a URI"));
    return;
  }
  const std::string image = value.get<std::string>();
  if (absl::StartsWith(image, "data:")) {
    std::string payload;
    for (const char* type : {"image/png", "image/jpeg", "image/webp"}) {
      std::string prefix = absl::StrCat("data:", type, ";base64,");
      if (absl::StartsWith(image, prefix)) payload = image.substr(prefix.size());
    }
    std::string decoded;
    if (payload.empty() || payload.size() % 4 != 0 || !absl::Base64Unescape(payload, &decoded) ||
        decoded.empty() || decoded.size() > kMaxDataUriBytes) {
      invalid.push_back(Field("format", field, "is not a data:image/...;base64 URI <= 256 KB"));
    }
  } else if (!absl::StartsWith(image, "https://") &&
             std::count(file_urls_.begin(), file_urls_.end(), image) == 0) {
    invalid.push_back(Field("format", field, "is neither https://, a file URL nor a data URI"));
  }
}

void FakeReplicateServer::Get(const std::string& id, httplib::Response& res) {
  auto it = predictions_.find(id);
  if (it == predictions_.end()) {
    res.status = 404;
    res.set_content(Json{{"title", "Not found"}, {"detail", "Prediction not found"},
                         {"status", 404}}.dump(), "application/problem+json");
    return;
  }
  FakePrediction& p = it->second;
  if (!IsTerminal(p.status) && !p.steps.empty()) {
    const PredictionStep& step = p.steps[std::min(p.next, p.steps.size() - 1)];
    ++p.next;
    p.status = step.status;
    p.error = step.error;
  }
  res.status = 200;
  res.set_content(PredictionJson(id, p).dump(), "application/json");
}

void FakeReplicateServer::CancelPrediction(const std::string& id, httplib::Response& res) {
  auto it = predictions_.find(id);
  if (it == predictions_.end()) {
    res.status = 404;
    res.set_content(Json{{"title", "Not found"}, {"status", 404}}.dump(),
                    "application/problem+json");
    return;
  }
  cancelled_ids_.push_back(id);
  if (!IsTerminal(it->second.status)) it->second.status = "canceled";
  res.status = 200;
  res.set_content(PredictionJson(id, it->second).dump(), "application/json");
}

void FakeReplicateServer::UploadFile(const httplib::Request& req, httplib::Response& res) {
  if (!req.is_multipart_form_data() || !req.has_file("content")) {
    Violation("files: not multipart/form-data with a \"content\" part");
    res.status = 400;
    return;
  }
  for (const char* part : {"filename", "type"}) {
    if (!req.has_file(part) || req.get_file_value(part).content.empty()) {
      Violation(absl::StrCat("files: part \"", part, "\" missing"));
    }
  }
  const std::string content = req.get_file_value("content").content;
  uploaded_files_.push_back(content);
  std::string id = absl::StrFormat("fakefile%06d", ++next_id_);
  std::string url = absl::StrCat(base_url(), "/v1/files/", id);
  file_urls_.push_back(url);
  res.status = 201;
  res.set_content(Json{{"id", id},
                       {"content_type", req.has_file("type") ? req.get_file_value("type").content : ""},
                       {"size", content.size()},
                       {"checksums", {{"sha256", ""}}},
                       {"metadata", Json::object()},
                       {"created_at", "2026-08-01T12:00:00.000Z"},
                       {"expires_at", "2026-08-02T12:00:00.000Z"},
                       {"urls", {{"get", url}}}}
                      .dump(),
                  "application/json");
}

}  // namespace videotask::testing
