// CurlTransport against a real loopback HTTP server (cpp-httplib).
#include "backends/http/curl_transport.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "backends/api/errors.h"
#include "tests/testing/fake_runway_server.h"
#include "tests/testing/status_matchers.h"

namespace videotask::backends {
namespace {

using ::testing::HasSubstr;
using ::videotask::testing::IsOk;
using ::videotask::testing::StatusIs;

// A port nothing listens on: bound once, then closed.
int ClosedPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

class CurlTransportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_.set_keep_alive_timeout(1);
    server_.set_tcp_nodelay(true);
    server_.Get("/hello", [this](const httplib::Request& req, httplib::Response& res) {
      ++requests_;
      ports_.push_back(req.remote_port);
      res.set_header("X-Reply", "Yes");
      res.set_content(absl::StrCat("hello ", req.get_header_value("User-Agent")), "text/plain");
    });
    server_.Post("/echo", [this](const httplib::Request& req, httplib::Response& res) {
      ++requests_;
      ports_.push_back(req.remote_port);
      res.status = 201;
      res.set_content(absl::StrCat(req.method, ":", req.get_header_value("X-Test"), ":", req.body),
                      "text/plain");
    });
    server_.Delete("/thing", [this](const httplib::Request& req, httplib::Response& res) {
      ++requests_;
      res.status = 204;
    });
    server_.Get("/missing", [this](const httplib::Request&, httplib::Response& res) {
      ++requests_;
      res.status = 404;
      res.set_content("{\"error\":\"nope\"}", "application/json");
    });
    server_.Post("/close", [this](const httplib::Request& req, httplib::Response& res) {
      ++requests_;
      videotask::testing::ShutdownConnectionOf(req);
    });
    server_.Get("/slow", [this](const httplib::Request&, httplib::Response& res) {
      ++requests_;
      release_.WaitForNotificationWithTimeout(absl::Seconds(10));
      res.set_content("late", "text/plain");
    });
    server_.Get("/truncated", [this](const httplib::Request&, httplib::Response& res) {
      ++requests_;
      res.set_content_provider(1000, "text/plain", [](size_t, size_t, httplib::DataSink& sink) {
        sink.write(std::string(400, 'x').data(), 400);
        return false;
      });
    });
    server_.Get("/big", [this](const httplib::Request&, httplib::Response& res) {
      ++requests_;
      res.set_content(std::string(300'000, 'b'), "application/octet-stream");
    });
    server_.Get("/big-chunked", [this](const httplib::Request&, httplib::Response& res) {
      ++requests_;
      res.set_chunked_content_provider("application/octet-stream",
                                       [](size_t offset, httplib::DataSink& sink) {
                                         if (offset >= 300'000) {
                                           sink.done();
                                           return true;
                                         }
                                         std::string piece(10'000, 'c');
                                         sink.write(piece.data(), piece.size());
                                         return true;
                                       });
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    ASSERT_GT(port_, 0);
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::yield();
    CurlOptions options;
    options.connect_timeout = absl::Seconds(2);
    options.total_timeout = absl::Seconds(5);
    VT_ASSERT_OK_AND_ASSIGN(transport_, CurlTransport::Create(options));
  }

  void TearDown() override {
    release_.Notify();
    transport_.reset();
    server_.stop();
    thread_.join();
  }

  std::string Url(absl::string_view path) const {
    return absl::StrCat("http://127.0.0.1:", port_, path);
  }

  HttpRequest Get(absl::string_view path) const {
    HttpRequest request;
    request.url = Url(path);
    return request;
  }

  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  std::atomic<int> requests_{0};
  std::vector<int> ports_;  // written by one server thread at a time in these tests
  absl::Notification release_;
  std::unique_ptr<CurlTransport> transport_;
};

TEST_F(CurlTransportTest, GetReadsStatusHeadersAndBody) {
  VT_ASSERT_OK_AND_ASSIGN(HttpResponse response, transport_->Send(Get("/hello")));
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.Header("x-reply"), "Yes");  // names lower-cased
  EXPECT_EQ(response.body, absl::StrCat("hello ", DefaultUserAgent()));
  EXPECT_THAT(DefaultUserAgent(), ::testing::StartsWith("videotask/"));
}

TEST_F(CurlTransportTest, PostSendsHeadersAndBody) {
  HttpRequest request;
  request.method = "POST";
  request.url = Url("/echo");
  request.headers = {{"X-Test", "42"}, {"Content-Type", "application/json"}};
  request.body = "{\"a\":1}";
  VT_ASSERT_OK_AND_ASSIGN(HttpResponse response, transport_->Send(request));
  EXPECT_EQ(response.status, 201);
  EXPECT_EQ(response.body, "POST:42:{\"a\":1}");
}

TEST_F(CurlTransportTest, DeleteAndErrorAnswersAreOkStatuses) {
  HttpRequest del = Get("/thing");
  del.method = "DELETE";
  VT_ASSERT_OK_AND_ASSIGN(HttpResponse deleted, transport_->Send(del));
  EXPECT_EQ(deleted.status, 204);
  VT_ASSERT_OK_AND_ASSIGN(HttpResponse missing, transport_->Send(Get("/missing")));
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.body, "{\"error\":\"nope\"}");
}

TEST_F(CurlTransportTest, ReusesTheConnectionForGetsButNotForPosts) {
  VT_ASSERT_OK(transport_->Send(Get("/hello")).status());
  VT_ASSERT_OK(transport_->Send(Get("/hello")).status());
  HttpRequest post = Get("/echo");
  post.method = "POST";
  post.body = "x";
  VT_ASSERT_OK(transport_->Send(post).status());
  ASSERT_EQ(ports_.size(), 3u);
  EXPECT_EQ(ports_[0], ports_[1]);  // same client port: one connection
  EXPECT_NE(ports_[2], ports_[1]);  // a create never rides a pooled connection
}

TEST_F(CurlTransportTest, ConnectRefusedIsUnavailableAndNotSent) {
  HttpRequest request;
  request.method = "POST";
  request.url = absl::StrCat("http://127.0.0.1:", ClosedPort(), "/v1/image_to_video");
  request.body = "{}";
  absl::StatusOr<HttpResponse> response = transport_->Send(request);
  EXPECT_THAT(response, StatusIs(absl::StatusCode::kUnavailable, ::testing::_));
  EXPECT_FALSE(MaybeSent(response.status()));
}

TEST_F(CurlTransportTest, ConnectionClosedAfterTheRequestIsMaybeSent) {
  // Warm a pooled connection first: the POST must still go out exactly once.
  VT_ASSERT_OK(transport_->Send(Get("/hello")).status());
  HttpRequest request = Get("/close");
  request.method = "POST";
  request.body = "{\"model\":\"gen4_turbo\"}";
  absl::StatusOr<HttpResponse> response = transport_->Send(request);
  EXPECT_THAT(response, StatusIs(absl::StatusCode::kUnavailable, ::testing::_));
  EXPECT_TRUE(MaybeSent(response.status()));
  EXPECT_EQ(requests_.load(), 2);  // /hello + one /close: never re-sent
}

TEST_F(CurlTransportTest, TimeoutAfterConnectIsDeadlineExceededAndMaybeSent) {
  CurlOptions options;
  options.total_timeout = absl::Milliseconds(300);
  VT_ASSERT_OK_AND_ASSIGN(auto fast, CurlTransport::Create(options));
  absl::Time start = absl::Now();
  absl::StatusOr<HttpResponse> response = fast->Send(Get("/slow"));
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
  EXPECT_THAT(response, StatusIs(absl::StatusCode::kDeadlineExceeded, ::testing::_));
  EXPECT_TRUE(MaybeSent(response.status()));
}

TEST_F(CurlTransportTest, PerRequestTimeoutOverridesTheDefault) {
  HttpRequest request = Get("/slow");
  request.timeout = absl::Milliseconds(200);
  absl::StatusOr<HttpResponse> response = transport_->Send(request);
  EXPECT_THAT(response, StatusIs(absl::StatusCode::kDeadlineExceeded, ::testing::_));
}

TEST_F(CurlTransportTest, TruncatedBodyIsMaybeSent) {
  absl::StatusOr<HttpResponse> response = transport_->Send(Get("/truncated"));
  EXPECT_THAT(response, StatusIs(absl::StatusCode::kUnavailable, ::testing::_));
  EXPECT_TRUE(MaybeSent(response.status()));
}

TEST_F(CurlTransportTest, AnswerLargerThanTheCapIsResourceExhausted) {
  for (const char* path : {"/big", "/big-chunked"}) {
    HttpRequest request = Get(path);
    request.max_response_bytes = 100'000;
    EXPECT_THAT(transport_->Send(request),
                StatusIs(absl::StatusCode::kResourceExhausted, ::testing::_))
        << path;
  }
  CurlOptions options;
  options.max_response_bytes = 1000;
  VT_ASSERT_OK_AND_ASSIGN(auto small, CurlTransport::Create(options));
  EXPECT_THAT(small->Send(Get("/big")), StatusIs(absl::StatusCode::kResourceExhausted, ::testing::_));
  VT_ASSERT_OK_AND_ASSIGN(HttpResponse ok, transport_->Send(Get("/big")));
  EXPECT_EQ(ok.body.size(), 300'000u);
}

TEST_F(CurlTransportTest, RequestLargerThanTheCapIsRefusedBeforeSending) {
  CurlOptions options;
  options.max_request_bytes = 100;
  VT_ASSERT_OK_AND_ASSIGN(auto small, CurlTransport::Create(options));
  HttpRequest request = Get("/echo");
  request.method = "POST";
  request.body = std::string(101, 'x');
  absl::StatusOr<HttpResponse> response = small->Send(request);
  EXPECT_THAT(response, StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("101")));
  EXPECT_FALSE(MaybeSent(response.status()));
  EXPECT_EQ(requests_.load(), 0);
}

TEST_F(CurlTransportTest, StreamingDeliversTheBodyToTheSink) {
  std::string got;
  for (const char* path : {"/big", "/big-chunked"}) {
    got.clear();
    VT_ASSERT_OK_AND_ASSIGN(HttpResponse response,
                            transport_->SendStreaming(Get(path), [&](absl::string_view chunk) {
                              got.append(chunk.data(), chunk.size());
                              return absl::OkStatus();
                            }));
    EXPECT_EQ(response.status, 200);
    EXPECT_TRUE(response.body.empty());
    EXPECT_EQ(got.size(), 300'000u) << path;
  }
}

TEST_F(CurlTransportTest, StreamingKeepsErrorBodiesOutOfTheSink) {
  bool called = false;
  VT_ASSERT_OK_AND_ASSIGN(HttpResponse response,
                          transport_->SendStreaming(Get("/missing"), [&](absl::string_view) {
                            called = true;
                            return absl::OkStatus();
                          }));
  EXPECT_EQ(response.status, 404);
  EXPECT_EQ(response.body, "{\"error\":\"nope\"}");
  EXPECT_FALSE(called);
}

TEST_F(CurlTransportTest, SinkErrorAbortsTheTransfer) {
  int chunks = 0;
  absl::StatusOr<HttpResponse> response =
      transport_->SendStreaming(Get("/big"), [&](absl::string_view) {
        ++chunks;
        return absl::DataLossError("disk full");
      });
  EXPECT_THAT(response, StatusIs(absl::StatusCode::kDataLoss, HasSubstr("disk full")));
  EXPECT_EQ(chunks, 1);
}

TEST_F(CurlTransportTest, StreamingCapIsEnforced) {
  HttpRequest request = Get("/big-chunked");
  request.max_response_bytes = 50'000;
  int64_t got = 0;
  absl::StatusOr<HttpResponse> response =
      transport_->SendStreaming(request, [&](absl::string_view chunk) {
        got += chunk.size();
        return absl::OkStatus();
      });
  EXPECT_THAT(response, StatusIs(absl::StatusCode::kResourceExhausted, ::testing::_));
  EXPECT_LE(got, 50'000);
}

TEST_F(CurlTransportTest, PlainHttpToANonLoopbackHostIsRefusedWithoutTraffic) {
  HttpRequest request;
  request.url = "http://api.dev.runwayml.com/v1/tasks/x";
  absl::StatusOr<HttpResponse> response = transport_->Send(request);
  EXPECT_THAT(response, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("loopback")));
  EXPECT_FALSE(MaybeSent(response.status()));
  request.url = absl::StrCat("ftp://127.0.0.1:", port_, "/x");
  EXPECT_THAT(transport_->Send(request), StatusIs(absl::StatusCode::kInvalidArgument, ::testing::_));
}

TEST_F(CurlTransportTest, ManyThreadsShareOneTransport) {
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 15; ++i) {
        absl::StatusOr<HttpResponse> response = transport_->Send(Get("/big"));
        if (response.ok() && response->status == 200 && response->body.size() == 300'000) ++ok;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(ok.load(), 90);
}

TEST(CurlTransportOptionsTest, RefusesNonsenseOptions) {
  CurlOptions options;
  options.total_timeout = absl::ZeroDuration();
  EXPECT_THAT(CurlTransport::Create(options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("timeout")));
  options = CurlOptions();
  options.max_response_bytes = 0;
  EXPECT_THAT(CurlTransport::Create(options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("size")));
}

}  // namespace
}  // namespace videotask::backends
