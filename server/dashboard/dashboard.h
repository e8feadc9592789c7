// The operators' web dashboard on the HTTP port: the embedded page (GET /),
// and its data under /api/ as the JSON of the gRPC messages. Every task
// read, list, watch and cancel goes through the VideoTaskService itself
// (over an in-process channel), so the page sees what grpcurl sees and
// writes obey the same validation; there is no second model of a task.
//
// Routes (all "protected" ones need the bearer token when the port has
// tokens; the static files and media tickets do not):
//   GET  /, /index.html, /app.js, /style.css       the page (open)
//   GET  /api/capabilities                          what the page may offer
//   GET  /api/overview                              counts per backend and state
//   GET  /api/events                                the overview as Server-Sent Events, on change
//   GET  /api/tasks?state=&backend=&label=&q=&page_size=&page_token=
//   GET  /api/tasks/{id}                            GetTask
//   GET  /api/tasks/{id}/watch                      WatchTask as Server-Sent Events
//   POST /api/tasks/{id}/cancel                     CancelTask
//   POST /api/tasks/{id}/retry                      RetryTask, when the service has it
//                                                   (retry_call.h; /api/capabilities says)
//   POST /api/tasks/{id}/media                      a media ticket (media_tickets.h)
//   GET  /media/{ticket}/image, /media/{ticket}/video[?download=1]
// POSTs must be application/json: a cross-site form cannot send that
// without a CORS preflight, which this port never grants. Every answer
// carries a strict Content-Security-Policy.
#ifndef VIDEOTASK_SERVER_DASHBOARD_DASHBOARD_H_
#define VIDEOTASK_SERVER_DASHBOARD_DASHBOARD_H_

#include <atomic>
#include <memory>
#include <string>

#include <grpcpp/channel.h>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "server/dashboard/media_tickets.h"
#include "server/http/http_server.h"
#include "server/store/task_store.h"
#include "videotask/v1/video_task_service.grpc.pb.h"

namespace videotask::dashboard {

inline constexpr char kContentSecurityPolicy[] =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "media-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'";

struct DashboardOptions {
  // A channel to the VideoTaskService, e.g. grpc::Server::InProcessChannel.
  std::shared_ptr<grpc::Channel> channel;
  // Borrowed, outlive the dashboard: state counts and input images.
  store::TaskStore* store = nullptr;
  const Clock* clock = nullptr;
  absl::Duration call_timeout = absl::Seconds(10);
  absl::Duration ticket_lifetime = absl::Minutes(30);
  // How often an event stream looks for a changed overview.
  absl::Duration event_check_interval = absl::Milliseconds(500);
  // An idle event stream sends a comment this often: a closed page is
  // noticed (its writes fail) and its slot freed within about twice this.
  absl::Duration keep_alive_interval = absl::Seconds(2);
  // Event streams end after this long (the page reconnects), so no
  // connection is held forever.
  absl::Duration stream_lifetime = absl::Minutes(5);
  // Event streams open at once, at most; more get 503 (the page retries).
  // Each holds an HTTP thread while open, so this must stay below the HTTP
  // port's thread count, or /metrics scrapes would wait behind dashboards.
  int max_streams = 8;
};

class Dashboard {
 public:
  explicit Dashboard(DashboardOptions options);
  ~Dashboard() { Shutdown(); }

  // Adds the routes above. `server` must be stopped before the dashboard is
  // destroyed.
  void AddRoutes(http::HttpServer& server);
  // Ends open event streams (call before stopping the HTTP server).
  void Shutdown() { if (!stopping_.HasBeenNotified()) stopping_.Notify(); }

 private:
  using Request = httplib::Request;
  using Response = httplib::Response;

  void Capabilities(const Request& req, Response& res);
  void Overview(const Request& req, Response& res);
  void Events(const Request& req, Response& res);
  void ListTasks(const Request& req, Response& res);
  void GetTask(const Request& req, Response& res);
  void WatchTask(const Request& req, Response& res);
  void CancelTask(const Request& req, Response& res);
  void RetryTask(const Request& req, Response& res);
  void IssueMedia(const Request& req, Response& res);
  void Media(const Request& req, Response& res);

  // The overview's JSON, or the failing call's status.
  grpc::Status OverviewJson(std::string& json);
  // Fills `ctx` with the call deadline.
  void Prepare(grpc::ClientContext& ctx) const;
  // Takes a stream slot; false (and a 503 in `res`) when all are taken.
  bool OpenStream(Response& res);
  void CloseStream() { open_streams_.fetch_sub(1); }
  // GetTask through the service.
  grpc::Status FetchTask(const std::string& id, v1::Task& task);

  const DashboardOptions options_;
  std::unique_ptr<v1::VideoTaskService::Stub> stub_;
  MediaTickets tickets_;
  absl::Notification stopping_;
  std::atomic<int> open_streams_{0};
};

}  // namespace videotask::dashboard

#endif  // VIDEOTASK_SERVER_DASHBOARD_DASHBOARD_H_
