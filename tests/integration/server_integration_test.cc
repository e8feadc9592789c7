// The real server on a free loopback port, a real SQLite file and the mock
// backend, driven through real gRPC stubs.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/store/sqlite/sqlite_task_store.h"
#include "tests/testing/server_fixture.h"

namespace videotask::testing {
namespace {

using ::testing::HasSubstr;

std::string ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class ServerIntegrationTest : public ServerTest {
 protected:
  grpc::Status Submit(const v1::SubmitTaskRequest& request, v1::Task* task) {
    grpc::ClientContext ctx;
    return stub_->SubmitTask(&ctx, request, task);
  }
  v1::Task SubmitOk(const v1::SubmitTaskRequest& request) {
    v1::Task task;
    grpc::Status status = Submit(request, &task);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return task;
  }
  v1::Task Get(const std::string& id) {
    grpc::ClientContext ctx;
    v1::GetTaskRequest request;
    request.set_id(id);
    v1::Task task;
    grpc::Status status = stub_->GetTask(&ctx, request, &task);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return task;
  }
  // The error a submit gets (asserts it fails).
  grpc::Status SubmitError(const v1::SubmitTaskRequest& request) {
    v1::Task task;
    grpc::Status status = Submit(request, &task);
    EXPECT_FALSE(status.ok()) << "submit unexpectedly succeeded";
    return status;
  }
  std::string ReadOutput(const std::string& id, int64_t offset = 0) {
    grpc::ClientContext ctx;
    v1::ReadTaskOutputRequest request;
    request.set_id(id);
    request.set_offset(offset);
    auto reader = stub_->ReadTaskOutput(&ctx, request);
    std::string bytes;
    v1::OutputChunk chunk;
    while (reader->Read(&chunk)) {
      EXPECT_EQ(chunk.offset(), offset + static_cast<int64_t>(bytes.size()));
      EXPECT_EQ(chunk.mime_type(), "video/mp4");
      bytes += chunk.data();
    }
    grpc::Status status = reader->Finish();
    EXPECT_TRUE(status.ok()) << status.error_message();
    return bytes;
  }
};

TEST_F(ServerIntegrationTest, SubmitWatchReadOutput) {
  v1::Task task = SubmitOk(PngRequest("video_queue/elegant_business_classic_tt_draft.png"));
  EXPECT_EQ(task.state(), v1::QUEUED);
  EXPECT_EQ(task.id().size(), 26u);
  EXPECT_EQ(task.target_filename_stub(), "elegant_business_classic_tt_video");
  EXPECT_EQ(task.spec().ratio(), "1280:720");
  EXPECT_EQ(task.spec().duration_seconds(), 4);
  EXPECT_EQ(task.spec().model(), "gen4_turbo");
  EXPECT_EQ(task.spec().backend(), "mock");
  EXPECT_TRUE(task.spec().image().content().empty()) << "image bytes must not be echoed";
  EXPECT_EQ(task.image_sha256().size(), 64u);

  grpc::ClientContext ctx;
  v1::WatchTaskRequest watch;
  watch.set_id(task.id());
  auto reader = stub_->WatchTask(&ctx, watch);
  std::vector<v1::State> states;
  v1::Task update;
  while (reader->Read(&update)) states.push_back(update.state());
  ASSERT_TRUE(reader->Finish().ok());
  ASSERT_FALSE(states.empty());
  EXPECT_EQ(states.back(), v1::SUCCEEDED);
  for (size_t i = 1; i < states.size(); ++i) EXPECT_LE(states[i - 1], states[i]);

  v1::Task done = Get(task.id());
  EXPECT_EQ(done.state(), v1::SUCCEEDED);
  EXPECT_EQ(done.output_path(), tmp_.path() + "/outputs/elegant_business_classic_tt_video.mp4");
  EXPECT_EQ(done.output_mime_type(), "video/mp4");
  EXPECT_TRUE(done.has_end_time());
  std::string on_disk = ReadWholeFile(done.output_path());
  EXPECT_EQ(static_cast<int64_t>(on_disk.size()), done.output_size_bytes());
  EXPECT_EQ(on_disk.substr(4, 4), "ftyp");  // an MP4
  EXPECT_EQ(ReadOutput(task.id()), on_disk);
  EXPECT_EQ(ReadOutput(task.id(), 1000), on_disk.substr(1000));
  EXPECT_EQ(mock().CreateCount(task.id()), 1);
}

TEST_F(ServerIntegrationTest, TwoImagesWithOneStubGetDistinctOutputs) {
  v1::Task a = SubmitOk(PngRequest("shot_01.png", 1));
  v1::Task b = SubmitOk(PngRequest("shot_02_draft.png", 2));
  EXPECT_EQ(a.target_filename_stub(), "shot_video");
  EXPECT_EQ(b.target_filename_stub(), "shot_video_2");
  EXPECT_EQ(WaitTerminal(a.id()).output_path(), tmp_.path() + "/outputs/shot_video.mp4");
  EXPECT_EQ(WaitTerminal(b.id()).output_path(), tmp_.path() + "/outputs/shot_video_2.mp4");
}

TEST_F(ServerIntegrationTest, RestartKeepsEveryTaskAndResumesTheRest) {
  std::vector<std::string> ids;
  for (int i = 0; i < 6; ++i) {
    v1::SubmitTaskRequest request = PngRequest(absl::StrCat("img_", i, ".png"), i);
    (*request.mutable_spec()->mutable_labels())["mock.latency_ms"] = "1500";
    ids.push_back(SubmitOk(request).id());
  }
  // Let some start, then restart mid-flight on the same data dir.
  absl::SleepFor(absl::Milliseconds(300));
  StopServer();
  // Which tasks had reached the provider before the stop (read from the file
  // the next server opens).
  std::set<std::string> created_before;
  {
    store::SqliteStoreOptions options;
    options.data_dir = tmp_.path();
    auto store = store::SqliteTaskStore::Open(options);
    ASSERT_TRUE(store.ok()) << store.status();
    for (const std::string& id : ids) {
      auto task = (*store)->Get(id);
      ASSERT_TRUE(task.ok()) << "an acknowledged task is missing after the stop";
      if (!task->provider_task_id.empty()) created_before.insert(id);
    }
  }
  StartServer();
  for (const std::string& id : ids) {
    v1::Task task = WaitTerminal(id);
    EXPECT_EQ(task.state(), v1::SUCCEEDED) << task.error().message();
    EXPECT_EQ(mock().CreateCount(id), created_before.count(id) ? 0 : 1)
        << "a task that reached the provider was created again after the restart";
  }
}

TEST_F(ServerIntegrationTest, RequestIdMakesSubmitIdempotent) {
  v1::SubmitTaskRequest request = PngRequest("a.png");
  request.set_request_id("batch-7:item-1");
  v1::Task first = SubmitOk(request);
  v1::Task again = SubmitOk(request);
  EXPECT_EQ(first.id(), again.id());
  EXPECT_EQ(again.request_id(), "batch-7:item-1");
  request.mutable_spec()->set_prompt_text("something else");
  grpc::Status clash = SubmitError(request);
  EXPECT_EQ(clash.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_THAT(clash.error_message(), HasSubstr("batch-7:item-1"));
}

TEST_F(ServerIntegrationTest, ValidateOnlyStoresNothing) {
  v1::SubmitTaskRequest request = PngRequest("shot_01.png");
  request.set_validate_only(true);
  request.mutable_spec()->set_ratio("9:16");
  v1::Task task = SubmitOk(request);
  EXPECT_TRUE(task.id().empty());
  EXPECT_EQ(task.spec().ratio(), "720:1280");
  EXPECT_EQ(task.target_filename_stub(), "shot_video");
  grpc::ClientContext ctx;
  v1::ListTasksResponse list;
  ASSERT_TRUE(stub_->ListTasks(&ctx, v1::ListTasksRequest(), &list).ok());
  EXPECT_EQ(list.tasks_size(), 0);
  EXPECT_EQ(mock().TotalCreates(), 0);
}

TEST_F(ServerIntegrationTest, BatchWithOneBadItem) {
  v1::BatchSubmitTasksRequest batch;
  *batch.add_requests() = PngRequest("a_01.png", 1);
  v1::SubmitTaskRequest bad = PngRequest("b.png", 2);
  bad.mutable_spec()->set_duration_seconds(30);
  *batch.add_requests() = bad;
  *batch.add_requests() = PngRequest("c_draft.png", 3);
  grpc::ClientContext ctx;
  v1::BatchSubmitTasksResponse response;
  ASSERT_TRUE(stub_->BatchSubmitTasks(&ctx, batch, &response).ok());
  ASSERT_EQ(response.results_size(), 3);
  EXPECT_TRUE(response.results(0).has_task());
  EXPECT_FALSE(response.results(0).has_error());
  EXPECT_FALSE(response.results(1).has_task());
  EXPECT_EQ(response.results(1).error().code(), "INVALID_ARGUMENT");
  EXPECT_THAT(response.results(1).error().message(),
              HasSubstr("requests[1].spec.duration_seconds"));
  EXPECT_THAT(response.results(1).error().message(), HasSubstr("2..10"));
  EXPECT_EQ(response.results(2).task().target_filename_stub(), "c_video");
  EXPECT_EQ(WaitTerminal(response.results(0).task().id()).state(), v1::SUCCEEDED);
  EXPECT_EQ(WaitTerminal(response.results(2).task().id()).state(), v1::SUCCEEDED);
}

TEST_F(ServerIntegrationTest, PagingThrough250TasksWithFilters) {
  // 250 tasks in batches; every third labelled team=blue; they stay QUEUED
  // behind a long-running task? No: they run; we filter on labels instead.
  std::set<std::string> all, blue;
  for (int b = 0; b < 5; ++b) {
    v1::BatchSubmitTasksRequest batch;
    for (int i = 0; i < 50; ++i) {
      int n = b * 50 + i;
      v1::SubmitTaskRequest r = PngRequest(absl::StrCat("p_", n, ".png"), n);
      if (n % 3 == 0) (*r.mutable_spec()->mutable_labels())["team"] = "blue";
      *batch.add_requests() = r;
    }
    grpc::ClientContext ctx;
    v1::BatchSubmitTasksResponse response;
    ASSERT_TRUE(stub_->BatchSubmitTasks(&ctx, batch, &response).ok());
    for (int i = 0; i < 50; ++i) {
      ASSERT_TRUE(response.results(i).has_task()) << response.results(i).error().message();
      all.insert(response.results(i).task().id());
      if ((b * 50 + i) % 3 == 0) blue.insert(response.results(i).task().id());
    }
  }
  auto list_all = [&](v1::ListTasksRequest request) {
    std::vector<std::string> seen;
    std::string previous_time_id;
    int pages = 0;
    do {
      grpc::ClientContext ctx;
      v1::ListTasksResponse page;
      grpc::Status status = stub_->ListTasks(&ctx, request, &page);
      EXPECT_TRUE(status.ok()) << status.error_message();
      if (!status.ok()) break;
      for (const v1::Task& t : page.tasks()) seen.push_back(t.id());
      request.set_page_token(page.next_page_token());
      ++pages;
    } while (!request.page_token().empty() && pages < 100);
    return seen;
  };
  v1::ListTasksRequest request;
  request.set_page_size(40);
  std::vector<std::string> seen = list_all(request);
  EXPECT_EQ(seen.size(), 250u);
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()), all);
  EXPECT_TRUE(std::is_sorted(seen.rbegin(), seen.rend())) << "newest first (ids sort by time)";

  (*request.mutable_labels())["team"] = "blue";
  std::vector<std::string> blue_seen = list_all(request);
  EXPECT_EQ(std::set<std::string>(blue_seen.begin(), blue_seen.end()), blue);

  request.set_backend("nope");
  EXPECT_TRUE(list_all(request).empty());

  // A token reused with other filters is refused.
  v1::ListTasksRequest first;
  first.set_page_size(10);
  grpc::ClientContext ctx1;
  v1::ListTasksResponse page1;
  ASSERT_TRUE(stub_->ListTasks(&ctx1, first, &page1).ok());
  ASSERT_FALSE(page1.next_page_token().empty());
  v1::ListTasksRequest other;
  other.set_page_token(page1.next_page_token());
  other.add_states(v1::FAILED);
  grpc::ClientContext ctx2;
  v1::ListTasksResponse page2;
  grpc::Status refused = stub_->ListTasks(&ctx2, other, &page2);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(refused.error_message(), HasSubstr("other filters"));
}

TEST_F(ServerIntegrationTest, ListPageSizeRules) {
  v1::ListTasksRequest request;
  request.set_page_size(-1);
  grpc::ClientContext ctx;
  v1::ListTasksResponse response;
  grpc::Status status = stub_->ListTasks(&ctx, request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("page_size"));
  request.set_page_size(5000);  // lowered, not refused
  grpc::ClientContext ctx2;
  EXPECT_TRUE(stub_->ListTasks(&ctx2, request, &response).ok());
  request.set_page_size(0);
  request.set_page_token("garbage!");
  grpc::ClientContext ctx3;
  status = stub_->ListTasks(&ctx3, request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("page_token"));
}

TEST_F(ServerIntegrationTest, CancelQueuedRunningAndFinished) {
  v1::SubmitTaskRequest slow = PngRequest("slow.png", 1);
  (*slow.mutable_spec()->mutable_labels())["mock.latency_ms"] = "600000";
  v1::Task running = SubmitOk(slow);
  absl::Time give_up = absl::Now() + absl::Seconds(10);
  while (Get(running.id()).state() != v1::RUNNING && absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  ASSERT_EQ(Get(running.id()).state(), v1::RUNNING);
  grpc::ClientContext ctx;
  v1::CancelTaskRequest cancel;
  cancel.set_id(running.id());
  v1::Task cancelled;
  ASSERT_TRUE(stub_->CancelTask(&ctx, cancel, &cancelled).ok());
  EXPECT_EQ(cancelled.state(), v1::CANCELLED);
  EXPECT_EQ(cancelled.error().code(), "CANCELLED");

  v1::Task done = SubmitOk(PngRequest("fast.png", 2));
  WaitTerminal(done.id());
  grpc::ClientContext ctx2;
  cancel.set_id(done.id());
  grpc::Status refused = stub_->CancelTask(&ctx2, cancel, &cancelled);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(refused.error_message(), HasSubstr("already SUCCEEDED"));

  grpc::ClientContext ctx3;
  cancel.set_id("01ARZ3NDEKTSV4RRFFQ69G5FAV");
  EXPECT_EQ(stub_->CancelTask(&ctx3, cancel, &cancelled).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(ServerIntegrationTest, WaitTimesOutWithTheLatestState) {
  v1::SubmitTaskRequest slow = PngRequest("slow.png");
  (*slow.mutable_spec()->mutable_labels())["mock.latency_ms"] = "600000";
  v1::Task task = SubmitOk(slow);
  grpc::ClientContext ctx;
  v1::WaitTaskRequest wait;
  wait.set_id(task.id());
  wait.mutable_timeout()->set_nanos(300'000'000);
  v1::Task latest;
  absl::Time start = absl::Now();
  grpc::Status status = stub_->WaitTask(&ctx, wait, &latest);
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(250));
  EXPECT_EQ(latest.id(), task.id());
  EXPECT_NE(latest.state(), v1::SUCCEEDED);

  wait.mutable_timeout()->set_seconds(-1);
  grpc::ClientContext ctx2;
  EXPECT_EQ(stub_->WaitTask(&ctx2, wait, &latest).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(ServerIntegrationTest, OutputOfAnUnfinishedTaskIsRefused) {
  v1::SubmitTaskRequest slow = PngRequest("slow.png");
  (*slow.mutable_spec()->mutable_labels())["mock.latency_ms"] = "600000";
  v1::Task task = SubmitOk(slow);
  grpc::ClientContext ctx;
  v1::ReadTaskOutputRequest request;
  request.set_id(task.id());
  auto reader = stub_->ReadTaskOutput(&ctx, request);
  v1::OutputChunk chunk;
  EXPECT_FALSE(reader->Read(&chunk));
  grpc::Status status = reader->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(status.error_message(), HasSubstr("once it is SUCCEEDED"));
}

TEST_F(ServerIntegrationTest, FailedProviderTaskStaysInTheQueueWithItsError) {
  v1::SubmitTaskRequest request = PngRequest("x.png");
  (*request.mutable_spec()->mutable_labels())["mock.outcome"] = "fail";
  (*request.mutable_spec()->mutable_labels())["mock.failure_code"] = "SAFETY.INPUT.IMAGE";
  v1::Task task = WaitTerminal(SubmitOk(request).id());
  EXPECT_EQ(task.state(), v1::FAILED);
  EXPECT_EQ(task.error().code(), "PROVIDER_FAILED");
  EXPECT_EQ(task.error().provider_code(), "SAFETY.INPUT.IMAGE");
  v1::ListTasksRequest list;
  list.add_states(v1::FAILED);
  grpc::ClientContext ctx;
  v1::ListTasksResponse response;
  ASSERT_TRUE(stub_->ListTasks(&ctx, list, &response).ok());
  ASSERT_EQ(response.tasks_size(), 1);
  EXPECT_EQ(response.tasks(0).id(), task.id());
}

TEST_F(ServerIntegrationTest, ListBackendsDescribesCapabilities) {
  grpc::ClientContext ctx;
  v1::ListBackendsResponse response;
  ASSERT_TRUE(stub_->ListBackends(&ctx, v1::ListBackendsRequest(), &response).ok());
  EXPECT_EQ(response.default_backend(), "mock");
  ASSERT_EQ(response.backends_size(), 1);
  const v1::BackendInfo& mock_info = response.backends(0);
  EXPECT_EQ(mock_info.name(), "mock");
  EXPECT_EQ(mock_info.default_model(), "gen4_turbo");
  ASSERT_GE(mock_info.models_size(), 1);
  EXPECT_EQ(mock_info.models(0).ratio_aliases().at("16:9"), "1280:720");
  EXPECT_EQ(mock_info.models(0).durations_size(), 9);
  EXPECT_GT(mock_info.max_image_bytes(), 0);
}

}  // namespace
}  // namespace videotask::testing
