#include "server/dashboard/dashboard.h"

#include <fstream>
#include <utility>
#include <vector>

#include <grpcpp/client_context.h>
#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/api/image_input.h"
#include "server/dashboard/assets.h"
#include "server/dashboard/json_api.h"
#include "server/dashboard/retry_call.h"

namespace videotask::dashboard {
namespace {

constexpr int kScanLimit = 2000;  // rows a text filter reads per page at most
constexpr size_t kMediaChunk = 64 * 1024;

void SetSecurityHeaders(httplib::Response& res) {
  res.set_header("Content-Security-Policy", kContentSecurityPolicy);
  res.set_header("X-Frame-Options", "DENY");
  res.set_header("Referrer-Policy", "no-referrer");
  res.set_header("Cross-Origin-Opener-Policy", "same-origin");
  res.set_header("Cross-Origin-Resource-Policy", "same-origin");
}

void Json(httplib::Response& res, int status, const std::string& body) {
  res.status = status;
  res.set_content(body, "application/json");
}

void Fail(httplib::Response& res, const grpc::Status& status) {
  Json(res, HttpStatusFor(status.error_code()), ErrorJson(status));
}

grpc::Status Invalid(const absl::Status& status) {
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, std::string(status.message()));
}

bool IsJsonPost(const httplib::Request& req) {
  return absl::StartsWith(req.get_header_value("Content-Type"), "application/json");
}

}  // namespace

Dashboard::Dashboard(DashboardOptions options)
    : options_(std::move(options)),
      stub_(v1::VideoTaskService::NewStub(options_.channel)),
      tickets_(*options_.clock, options_.ticket_lifetime) {}

void Dashboard::Prepare(grpc::ClientContext& ctx) const {
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + options_.call_timeout));
}

void Dashboard::AddRoutes(http::HttpServer& server) {
  using Access = http::HttpServer::Access;
  auto wrap = [this](void (Dashboard::*method)(const Request&, Response&)) {
    return [this, method](const Request& req, Response& res) {
      SetSecurityHeaders(res);
      (this->*method)(req, res);
    };
  };
  for (const Asset* a = EmbeddedAssets(); a->path != nullptr; ++a) {
    auto serve = [a](const Request&, Response& res) {
      SetSecurityHeaders(res);
      res.set_content(reinterpret_cast<const char*>(a->data), a->size, a->content_type);
    };
    server.Get(a->path, Access::kOpen, serve);
    if (std::string(a->path) == "/index.html") server.Get("/", Access::kOpen, serve);
  }
  server.Get("/api/capabilities", Access::kProtected, wrap(&Dashboard::Capabilities));
  server.Get("/api/overview", Access::kProtected, wrap(&Dashboard::Overview));
  server.Get("/api/events", Access::kProtected, wrap(&Dashboard::Events));
  server.Get("/api/tasks", Access::kProtected, wrap(&Dashboard::ListTasks));
  server.Get(R"(/api/tasks/([^/]+))", Access::kProtected, wrap(&Dashboard::GetTask));
  server.Get(R"(/api/tasks/([^/]+)/watch)", Access::kProtected, wrap(&Dashboard::WatchTask));
  server.Post(R"(/api/tasks/([^/]+)/cancel)", Access::kProtected, wrap(&Dashboard::CancelTask));
  server.Post(R"(/api/tasks/([^/]+)/retry)", Access::kProtected, wrap(&Dashboard::RetryTask));
  server.Post(R"(/api/tasks/([^/]+)/media)", Access::kProtected, wrap(&Dashboard::IssueMedia));
  server.Get(R"(/media/([0-9a-f]{32})/(image|video))", Access::kOpen, wrap(&Dashboard::Media));
}

void Dashboard::Capabilities(const Request&, Response& res) {
  nlohmann::json j;
  j["retry"] = ServiceHasRetry();
  Json(res, 200, j.dump());
}

grpc::Status Dashboard::OverviewJson(std::string& json) {
  v1::ListBackendsResponse backends;
  grpc::ClientContext ctx;
  Prepare(ctx);
  grpc::Status status = stub_->ListBackends(&ctx, v1::ListBackendsRequest(), &backends);
  if (!status.ok()) return status;
  absl::StatusOr<std::vector<store::StateCount>> counts = options_.store->CountByState();
  if (!counts.ok()) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "cannot read task counts");
  absl::StatusOr<std::vector<store::OldestQueued>> oldest = options_.store->OldestQueuedTimes();
  if (!oldest.ok()) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "cannot read queue ages");
  json = dashboard::OverviewJson(backends, *counts, *oldest);
  return grpc::Status::OK;
}

void Dashboard::Overview(const Request&, Response& res) {
  std::string json;
  grpc::Status status = OverviewJson(json);
  if (!status.ok()) return Fail(res, status);
  Json(res, 200, json);
}

void Dashboard::ListTasks(const Request& req, Response& res) {
  absl::StatusOr<ListQuery> query = ParseListQuery(req.params);
  if (!query.ok()) return Fail(res, Invalid(query.status()));
  v1::ListTasksResponse out;
  if (query->text.empty()) {
    grpc::ClientContext ctx;
    Prepare(ctx);
    grpc::Status status = stub_->ListTasks(&ctx, query->request, &out);
    if (!status.ok()) return Fail(res, status);
    return Json(res, 200, ToJson(out));
  }
  // A whole task id: that task.
  v1::Task exact;
  if (FetchTask(query->text, exact).ok()) {
    *out.add_tasks() = std::move(exact);
    return Json(res, 200, ToJson(out));
  }
  // Part of a stub or id: scan pages, asking each time for no more rows
  // than the page still needs, so the next token resumes exactly.
  int want = query->request.page_size() <= 0 ? 50 : std::min(query->request.page_size(), 1000);
  v1::ListTasksRequest page = query->request;
  int scanned = 0;
  for (;;) {
    page.set_page_size(want - out.tasks_size());
    v1::ListTasksResponse got;
    grpc::ClientContext ctx;
    Prepare(ctx);
    grpc::Status status = stub_->ListTasks(&ctx, page, &got);
    if (!status.ok()) return Fail(res, status);
    scanned += got.tasks_size();
    for (v1::Task& t : *got.mutable_tasks()) {
      if (MatchesText(t, query->text)) *out.add_tasks() = std::move(t);
    }
    out.set_next_page_token(got.next_page_token());
    if (got.next_page_token().empty() || out.tasks_size() >= want || scanned >= kScanLimit) break;
    page.set_page_token(got.next_page_token());
  }
  Json(res, 200, ToJson(out));
}

grpc::Status Dashboard::FetchTask(const std::string& id, v1::Task& task) {
  v1::GetTaskRequest request;
  request.set_id(id);
  grpc::ClientContext ctx;
  Prepare(ctx);
  return stub_->GetTask(&ctx, request, &task);
}

void Dashboard::GetTask(const Request& req, Response& res) {
  v1::Task task;
  grpc::Status status = FetchTask(req.matches[1], task);
  if (!status.ok()) return Fail(res, status);
  Json(res, 200, ToJson(task));
}

void Dashboard::CancelTask(const Request& req, Response& res) {
  if (!IsJsonPost(req)) {
    return Fail(res, grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                  "Content-Type must be application/json"));
  }
  v1::CancelTaskRequest request;
  request.set_id(req.matches[1]);
  v1::Task task;
  grpc::ClientContext ctx;
  Prepare(ctx);
  grpc::Status status = stub_->CancelTask(&ctx, request, &task);
  if (!status.ok()) return Fail(res, status);
  Json(res, 200, ToJson(task));
}

void Dashboard::RetryTask(const Request& req, Response& res) {
  if (!IsJsonPost(req)) {
    return Fail(res, grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                  "Content-Type must be application/json"));
  }
  v1::Task task;
  grpc::ClientContext ctx;
  Prepare(ctx);
  grpc::Status status = CallRetryTask(options_.channel, ctx, req.matches[1], task);
  if (!status.ok()) return Fail(res, status);
  Json(res, 200, ToJson(task));
}

void Dashboard::IssueMedia(const Request& req, Response& res) {
  if (!IsJsonPost(req)) {
    return Fail(res, grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                  "Content-Type must be application/json"));
  }
  v1::Task task;
  grpc::Status status = FetchTask(req.matches[1], task);
  if (!status.ok()) return Fail(res, status);
  std::string base = absl::StrCat("/media/", tickets_.Issue(task.id()));
  nlohmann::json j;
  // The store keeps an input image only while a live task needs it.
  if (options_.store->ReadImage(task.image_sha256()).ok()) j["image"] = base + "/image";
  if (task.state() == v1::SUCCEEDED) {
    j["video"] = base + "/video";
    j["download"] = base + "/video?download=1";
  }
  Json(res, 200, j.dump());
}

void Dashboard::Media(const Request& req, Response& res) {
  std::optional<std::string> id = tickets_.Lookup(req.matches[1]);
  if (!id.has_value()) {
    return Fail(res, grpc::Status(grpc::StatusCode::NOT_FOUND, "unknown or expired media link"));
  }
  v1::Task task;
  grpc::Status status = FetchTask(*id, task);
  if (!status.ok()) return Fail(res, status);
  if (req.matches[2] == "image") {
    absl::StatusOr<std::string> bytes = options_.store->ReadImage(task.image_sha256());
    if (!bytes.ok()) {
      return Fail(res, grpc::Status(grpc::StatusCode::NOT_FOUND, "the input image is gone"));
    }
    absl::StatusOr<std::string> type = api::SniffImage(*bytes, "image");
    res.set_content(std::move(*bytes), type.ok() ? *type : "application/octet-stream");
    return;
  }
  if (task.state() != v1::SUCCEEDED || task.output_path().empty()) {
    return Fail(res, grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                                  "the task has no video (it has not succeeded)"));
  }
  auto file = std::make_shared<std::ifstream>(task.output_path(), std::ios::binary);
  if (!*file) return Fail(res, grpc::Status(grpc::StatusCode::NOT_FOUND, "the video file is gone"));
  file->seekg(0, std::ios::end);
  const size_t size = static_cast<size_t>(file->tellg());
  if (req.has_param("download")) {
    res.set_header("Content-Disposition",
                   absl::StrCat("attachment; filename=\"", task.target_filename_stub(), ".mp4\""));
  }
  res.set_header("Accept-Ranges", "bytes");
  // httplib answers Range requests (206, Content-Range) from this provider.
  res.set_content_provider(
      size, "video/mp4", [file](size_t offset, size_t length, httplib::DataSink& sink) {
        std::vector<char> buf(std::min(length, kMediaChunk));
        file->clear();
        file->seekg(static_cast<std::streamoff>(offset));
        file->read(buf.data(), static_cast<std::streamsize>(buf.size()));
        std::streamsize got = file->gcount();
        if (got <= 0) return false;
        return sink.write(buf.data(), static_cast<size_t>(got));
      });
}

}  // namespace videotask::dashboard
