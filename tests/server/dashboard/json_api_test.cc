// The dashboard's pure pieces: URL parameters, JSON, HTTP codes, SSE
// framing, media tickets.
#include "server/dashboard/json_api.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/clock.h"
#include "server/dashboard/media_tickets.h"

namespace videotask::dashboard {
namespace {

using ::testing::HasSubstr;

TEST(ParseListQuery, TakesEveryFilter) {
  absl::StatusOr<ListQuery> q = ParseListQuery({{"state", "FAILED"},
                                                {"state", "CANCELLED"},
                                                {"backend", "mock"},
                                                {"label", "batch=a=b"},
                                                {"q", "  hero "},
                                                {"page_size", "20"},
                                                {"page_token", "tok"}});
  ASSERT_TRUE(q.ok()) << q.status();
  ASSERT_EQ(q->request.states_size(), 2);
  EXPECT_EQ(q->request.states(0), v1::FAILED);
  EXPECT_EQ(q->request.states(1), v1::CANCELLED);
  EXPECT_EQ(q->request.backend(), "mock");
  EXPECT_EQ(q->request.labels().at("batch"), "a=b");
  EXPECT_EQ(q->text, "hero");
  EXPECT_EQ(q->request.page_size(), 20);
  EXPECT_EQ(q->request.page_token(), "tok");
}

TEST(ParseListQuery, NamesTheBadParameter) {
  struct Case {
    std::string name;
    std::string value;
    std::string says;
  };
  for (const Case& c : {Case{"state", "running", "parameter state: one of QUEUED"},
                        Case{"state", "STATE_UNSPECIFIED", "parameter state"},
                        Case{"label", "novalue", "parameter label: key=value"},
                        Case{"label", "=x", "parameter label"},
                        Case{"page_size", "-1", "parameter page_size"},
                        Case{"page_size", "ten", "parameter page_size"},
                        Case{"q", std::string(201, 'x'), "parameter q: at most 200"},
                        Case{"sort", "x", "parameter sort: unknown"}}) {
    absl::StatusOr<ListQuery> q = ParseListQuery({{c.name, c.value}});
    ASSERT_FALSE(q.ok()) << c.name << "=" << c.value;
    EXPECT_EQ(q.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(q.status().message()), HasSubstr(c.says));
  }
}

TEST(MatchesText, IdOrStubIgnoringCase) {
  v1::Task t;
  t.set_id("01J0Z3YV6Q8W3C2M5N7P9R1T4X");
  t.set_target_filename_stub("product_hero_video");
  EXPECT_TRUE(MatchesText(t, ""));
  EXPECT_TRUE(MatchesText(t, "HERO"));
  EXPECT_TRUE(MatchesText(t, "6q8w"));
  EXPECT_FALSE(MatchesText(t, "villain"));
}

TEST(HttpStatusFor, MapsTheCodesThePageSees) {
  EXPECT_EQ(HttpStatusFor(grpc::StatusCode::OK), 200);
  EXPECT_EQ(HttpStatusFor(grpc::StatusCode::INVALID_ARGUMENT), 400);
  EXPECT_EQ(HttpStatusFor(grpc::StatusCode::UNAUTHENTICATED), 401);
  EXPECT_EQ(HttpStatusFor(grpc::StatusCode::NOT_FOUND), 404);
  EXPECT_EQ(HttpStatusFor(grpc::StatusCode::FAILED_PRECONDITION), 409);
  EXPECT_EQ(HttpStatusFor(grpc::StatusCode::RESOURCE_EXHAUSTED), 429);
  EXPECT_EQ(HttpStatusFor(grpc::StatusCode::UNAVAILABLE), 503);
  EXPECT_EQ(HttpStatusFor(grpc::StatusCode::INTERNAL), 500);
}

TEST(ErrorJson, IsJsonWhateverTheMessage) {
  std::string out =
      ErrorJson(grpc::Status(grpc::StatusCode::NOT_FOUND, "no task \"<b>\"\n\xff"));
  nlohmann::json j = nlohmann::json::parse(out);
  EXPECT_EQ(j["code"], "NOT_FOUND");
  EXPECT_THAT(j["message"].get<std::string>(), HasSubstr("no task \"<b>\""));
}

TEST(ToJson, UsesTheNamesGrpcurlShows) {
  v1::Task t;
  t.set_id("x");
  t.set_state(v1::FAILED);
  t.set_target_filename_stub("a_video");
  t.mutable_error()->set_provider_code("SAFETY.INPUT.IMAGE");
  nlohmann::json j = nlohmann::json::parse(ToJson(t));
  EXPECT_EQ(j["state"], "FAILED");
  EXPECT_EQ(j["targetFilenameStub"], "a_video");
  EXPECT_EQ(j["error"]["providerCode"], "SAFETY.INPUT.IMAGE");
}

TEST(OverviewJson, CountsActiveCapsAndOldest) {
  v1::ListBackendsResponse backends;
  backends.set_default_backend("mock");
  v1::BackendInfo* mock = backends.add_backends();
  mock->set_name("mock");
  mock->set_max_concurrency(4);
  backends.add_backends()->set_name("runway");
  absl::Time oldest = absl::FromUnixSeconds(1'800'000'000);
  std::string out = OverviewJson(backends,
                                 {{"mock", TaskState::kQueued, 3},
                                  {"mock", TaskState::kRunning, 2},
                                  {"mock", TaskState::kDownloading, 1},
                                  {"mock", TaskState::kFailed, 5},
                                  {"gone", TaskState::kSucceeded, 7}},
                                 {{"mock", oldest}});
  nlohmann::json j = nlohmann::json::parse(out);
  ASSERT_EQ(j["backends"].size(), 3u);
  const nlohmann::json& m = j["backends"][0];
  EXPECT_EQ(m["name"], "mock");
  EXPECT_EQ(m["maxConcurrency"], 4);
  EXPECT_EQ(m["active"], 3);
  EXPECT_EQ(m["counts"]["QUEUED"], 3);
  EXPECT_EQ(m["counts"]["FAILED"], 5);
  EXPECT_EQ(m["oldestQueuedTime"], "2027-01-15T08:00:00Z");
  EXPECT_EQ(j["backends"][1]["name"], "runway");
  EXPECT_EQ(j["backends"][1]["active"], 0);
  EXPECT_FALSE(j["backends"][1].contains("oldestQueuedTime"));
  EXPECT_EQ(j["backends"][2]["name"], "gone");
  EXPECT_EQ(j["backends"][2]["counts"]["SUCCEEDED"], 7);
}

TEST(SseEvent, FramesOneEvent) {
  EXPECT_EQ(SseEvent("task", "{\"id\":\"x\"}"), "event: task\ndata: {\"id\":\"x\"}\n\n");
}

TEST(MediaTickets, NameOneTaskUntilTheyExpire) {
  FakeClock clock;
  MediaTickets tickets(clock, absl::Minutes(30));
  std::string a = tickets.Issue("task-a");
  std::string b = tickets.Issue("task-b");
  EXPECT_EQ(a.size(), 32u);
  EXPECT_NE(a, b);
  EXPECT_EQ(tickets.Lookup(a), "task-a");
  EXPECT_EQ(tickets.Lookup(b), "task-b");
  EXPECT_EQ(tickets.Lookup("00000000000000000000000000000000"), std::nullopt);
  clock.Advance(absl::Minutes(30));
  EXPECT_EQ(tickets.Lookup(a), std::nullopt);
}

TEST(MediaTickets, DropTheOldestBeyondTheLimit) {
  FakeClock clock;
  MediaTickets tickets(clock, absl::Minutes(30), /*max_tickets=*/2);
  std::string a = tickets.Issue("a");
  clock.Advance(absl::Seconds(1));
  std::string b = tickets.Issue("b");
  clock.Advance(absl::Seconds(1));
  std::string c = tickets.Issue("c");
  EXPECT_EQ(tickets.Lookup(a), std::nullopt);
  EXPECT_EQ(tickets.Lookup(b), "b");
  EXPECT_EQ(tickets.Lookup(c), "c");
}

}  // namespace
}  // namespace videotask::dashboard
