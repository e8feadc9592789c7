#include "client/loadgen/loadgen.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <fstream>
#include <memory>
#include <sstream>
#include <thread>
#include <utility>

#include <unistd.h>

#include <grpcpp/grpcpp.h>

#include "absl/random/random.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "client/loadgen/png.h"
#include "videotask/v1/video_task_service.grpc.pb.h"

namespace videotask::loadgen {
namespace {

using SteadyClock = std::chrono::steady_clock;

constexpr absl::Duration kWaitTimeout = absl::Seconds(60);

std::string CodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK: return "OK";
    case grpc::StatusCode::CANCELLED: return "CANCELLED";
    case grpc::StatusCode::UNKNOWN: return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED: return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND: return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS: return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED: return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION: return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED: return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE: return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED: return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL: return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE: return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS: return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED: return "UNAUTHENTICATED";
    default: return absl::StrCat("CODE_", static_cast<int>(code));
  }
}

bool IsTerminal(v1::State state) {
  return state == v1::SUCCEEDED || state == v1::FAILED || state == v1::CANCELLED;
}

std::chrono::system_clock::time_point DeadlineIn(absl::Duration d) {
  return std::chrono::system_clock::now() + absl::ToChronoNanoseconds(d);
}

class Runner;

// One closed-loop client: exactly one call (or one submit-then-wait chain)
// outstanding at a time, so its fields need no lock.
struct Slot {
  Runner* runner = nullptr;
  int index = 0;
  v1::VideoTaskService::Stub* stub = nullptr;
  std::unique_ptr<grpc::ClientContext> ctx;
  SteadyClock::time_point started;
  uint64_t seq = 0;
  int pages = 0;

  v1::SubmitTaskRequest submit;
  v1::Task task;
  v1::BatchSubmitTasksRequest batch;
  v1::BatchSubmitTasksResponse batch_reply;
  v1::GetTaskRequest get;
  v1::ListTasksRequest list;
  v1::ListTasksResponse list_reply;
  v1::WaitTaskRequest wait;

  // Measured results of this slot.
  std::vector<int64_t> latency_ns;
  std::map<std::string, int64_t> errors;
  int64_t calls = 0;
  int64_t items = 0;
  SteadyClock::time_point last_done;
};

class Runner {
 public:
  explicit Runner(const LoadOptions& options) : options_(options) {}

  absl::StatusOr<LoadResult> Run() {
    if (options_.in_flight < 1 || options_.channels < 1) {
      return absl::InvalidArgumentError("in_flight and channels must be at least 1");
    }
    if (options_.batch_size < 1 || options_.page_size < 1 || options_.list_depth < 1) {
      return absl::InvalidArgumentError("batch_size, page_size and list_depth must be at least 1");
    }
    for (int i = 0; i < options_.channels; ++i) {
      grpc::ChannelArguments args;
      args.SetMaxReceiveMessageSize(-1);
      args.SetMaxSendMessageSize(-1);
      // A connection of its own per channel, not one shared subchannel.
      args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
      args.SetInt("videotask.bench.channel", i);
      auto channel = client::MakeChannel(options_.channel, args);
      if (!channel.ok()) return channel.status();
      channels_.push_back(*std::move(channel));
      stubs_.push_back(v1::VideoTaskService::NewStub(channels_.back()));
    }
    for (auto& channel : channels_) {
      if (!channel->WaitForConnected(DeadlineIn(absl::Seconds(10)))) {
        return absl::UnavailableError(absl::StrCat("cannot connect to ", options_.channel.target));
      }
    }
    if (options_.mode == Mode::kGet) {
      absl::Status ids = FetchIds();
      if (!ids.ok()) return ids;
    }
    nonce_ = absl::StrFormat("%08x", absl::Uniform<uint32_t>(rng_));
    image_ = MakePng(static_cast<size_t>(options_.image_bytes), 0);

    slots_.resize(options_.in_flight);
    for (int i = 0; i < options_.in_flight; ++i) {
      Slot& s = slots_[i];
      s.runner = this;
      s.index = i;
      s.stub = stubs_[i % stubs_.size()].get();
      Prepare(s);
    }
    auto t0 = SteadyClock::now();
    if (options_.max_items > 0) {
      measure_start_ = t0;
      measure_end_ = SteadyClock::time_point::max();
    } else {
      measure_start_ = t0 + absl::ToChronoNanoseconds(options_.warmup);
      measure_end_ = measure_start_ + absl::ToChronoNanoseconds(options_.duration);
    }
    {
      absl::MutexLock lock(&mu_);
      active_ = options_.in_flight;
    }
    // The server's CPU is read at both ends of the measured window: a timed
    // run's are known in advance; a fill run's are its start and end.
    bool timed = options_.max_items <= 0;
    int64_t cpu_start = timed ? -1 : ServerCpuMicros();
    for (Slot& s : slots_) Next(s);
    int64_t cpu_end = -1;
    if (timed) {
      std::this_thread::sleep_until(measure_start_);
      cpu_start = ServerCpuMicros();
      std::this_thread::sleep_until(measure_end_);
      cpu_end = ServerCpuMicros();
    }
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](int* active) { return *active == 0; }, &active_));
    }
    if (!timed) cpu_end = ServerCpuMicros();
    LoadResult result = Collect(t0);
    if (cpu_start >= 0 && cpu_end >= 0) result.server_cpu_us = cpu_end - cpu_start;
    return result;
  }

  // Starts the next call of `s`, or retires the slot when the run is over.
  void Next(Slot& s) {
    auto now = SteadyClock::now();
    bool over = now >= measure_end_;
    if (options_.max_items > 0) {
      int64_t per_call = options_.mode == Mode::kBatch ? options_.batch_size : 1;
      over = items_started_.fetch_add(per_call) >= options_.max_items;
    }
    if (over) {
      absl::MutexLock lock(&mu_);
      --active_;
      return;
    }
    s.started = now;
    s.ctx = NewContext();
    ++s.seq;
    switch (options_.mode) {
      case Mode::kSubmit:
      case Mode::kEndToEnd:
        StartSubmit(s);
        return;
      case Mode::kBatch:
        StartBatch(s);
        return;
      case Mode::kGet:
        StartGet(s);
        return;
      case Mode::kList:
        StartList(s);
        return;
    }
  }

 private:
  void Prepare(Slot& s) {
    v1::SubmitTaskRequest base;
    v1::TaskSpec* spec = base.mutable_spec();
    spec->set_backend(options_.backend);
    spec->mutable_image()->set_content(image_);
    spec->mutable_image()->set_filename(absl::StrCat("bench_", s.index, ".png"));
    spec->set_prompt_text("a slow pan across a quiet harbour at dawn");
    spec->set_ratio("16:9");
    for (const auto& [k, v] : options_.labels) (*spec->mutable_labels())[k] = v;
    switch (options_.mode) {
      case Mode::kSubmit:
      case Mode::kEndToEnd:
        s.submit = base;
        break;
      case Mode::kBatch:
        for (int i = 0; i < options_.batch_size; ++i) *s.batch.add_requests() = base;
        break;
      case Mode::kGet:
        break;
      case Mode::kList:
        s.list.set_page_size(options_.page_size);
        break;
    }
  }

  // A request id and image no other call of this run uses.
  void Stamp(Slot& s, v1::SubmitTaskRequest& req, int item) {
    uint64_t unique = (static_cast<uint64_t>(s.index) << 40) |
                      (static_cast<uint64_t>(s.seq) << 12) | static_cast<uint64_t>(item);
    req.set_request_id(absl::StrCat("bench-", nonce_, "-", s.index, "-", s.seq, "-", item));
    if (options_.unique_images) {
      uint64_t tagged = unique ^ (static_cast<uint64_t>(std::hash<std::string>()(nonce_)) << 52);
      SetPngId(*req.mutable_spec()->mutable_image()->mutable_content(), tagged);
    }
  }

  void StartSubmit(Slot& s) {
    Stamp(s, s.submit, 0);
    s.ctx->set_deadline(DeadlineIn(options_.rpc_timeout));
    s.task.Clear();
    s.stub->async()->SubmitTask(s.ctx.get(), &s.submit, &s.task, [this, &s](grpc::Status st) {
      if (!st.ok()) {
        Finish(s, 0, CodeName(st.error_code()));
        return;
      }
      if (options_.mode == Mode::kSubmit) {
        Finish(s, 1, "");
        return;
      }
      s.wait.set_id(s.task.id());
      StartWait(s);
    });
  }

  void StartWait(Slot& s) {
    s.ctx = NewContext();
    s.ctx->set_deadline(DeadlineIn(kWaitTimeout + options_.rpc_timeout));
    s.wait.mutable_timeout()->set_seconds(absl::ToInt64Seconds(kWaitTimeout));
    s.task.Clear();
    s.stub->async()->WaitTask(s.ctx.get(), &s.wait, &s.task, [this, &s](grpc::Status st) {
      if (!st.ok()) {
        Finish(s, 0, CodeName(st.error_code()));
      } else if (!IsTerminal(s.task.state())) {
        StartWait(s);
      } else if (s.task.state() == v1::SUCCEEDED) {
        Finish(s, 1, "");
      } else {
        Finish(s, 0, absl::StrCat("TASK_", v1::State_Name(s.task.state())));
      }
    });
  }

  void StartBatch(Slot& s) {
    for (int i = 0; i < s.batch.requests_size(); ++i) Stamp(s, *s.batch.mutable_requests(i), i);
    s.ctx->set_deadline(DeadlineIn(options_.rpc_timeout));
    s.batch_reply.Clear();
    s.stub->async()->BatchSubmitTasks(
        s.ctx.get(), &s.batch, &s.batch_reply, [this, &s](grpc::Status st) {
          if (!st.ok()) {
            Finish(s, 0, CodeName(st.error_code()));
            return;
          }
          int64_t ok = 0;
          std::vector<std::string> item_errors;
          for (const v1::BatchSubmitResult& r : s.batch_reply.results()) {
            if (r.has_task()) {
              ++ok;
            } else {
              item_errors.push_back(r.error().code().empty() ? "ITEM_ERROR" : r.error().code());
            }
          }
          if (s.batch_reply.results_size() != s.batch.requests_size()) {
            item_errors.push_back("WRONG_RESULT_COUNT");
          }
          Finish(s, ok, "", item_errors);
        });
  }

  void StartGet(Slot& s) {
    s.get.set_id(ids_[(s.seq * 7919 + s.index) % ids_.size()]);
    s.ctx->set_deadline(DeadlineIn(options_.rpc_timeout));
    s.task.Clear();
    s.stub->async()->GetTask(s.ctx.get(), &s.get, &s.task, [this, &s](grpc::Status st) {
      Finish(s, st.ok() ? 1 : 0, st.ok() ? "" : CodeName(st.error_code()));
    });
  }

  void StartList(Slot& s) {
    s.ctx->set_deadline(DeadlineIn(options_.rpc_timeout));
    s.list_reply.Clear();
    s.stub->async()->ListTasks(s.ctx.get(), &s.list, &s.list_reply, [this, &s](grpc::Status st) {
      if (!st.ok()) {
        s.list.clear_page_token();
        s.pages = 0;
        Finish(s, 0, CodeName(st.error_code()));
        return;
      }
      int64_t n = s.list_reply.tasks_size();
      if (++s.pages >= options_.list_depth || s.list_reply.next_page_token().empty()) {
        s.list.clear_page_token();
        s.pages = 0;
      } else {
        s.list.set_page_token(s.list_reply.next_page_token());
      }
      Finish(s, n, "");
    });
  }

  // Records one finished call (or chain) and starts the next one.
  void Finish(Slot& s, int64_t items, const std::string& error,
              const std::vector<std::string>& item_errors = {}) {
    auto done = SteadyClock::now();
    if (done >= measure_start_ && done < measure_end_) {
      if (error.empty()) {
        ++s.calls;
        s.items += items;
        s.latency_ns.push_back(
            std::chrono::duration_cast<std::chrono::nanoseconds>(done - s.started).count());
      } else {
        ++s.errors[error];
      }
      for (const std::string& e : item_errors) ++s.errors[e];
      s.last_done = done;
    }
    Next(s);
  }

  // The CPU time of all server_pids so far; -1 without pids or on a
  // failed read.
  int64_t ServerCpuMicros() const {
    if (options_.server_pids.empty()) return -1;
    int64_t total = 0;
    for (int pid : options_.server_pids) {
      absl::StatusOr<int64_t> us = ProcessCpuMicros(pid);
      if (!us.ok()) return -1;
      total += *us;
    }
    return total;
  }

  // A fresh context carrying the bearer token; the caller sets the deadline.
  std::unique_ptr<grpc::ClientContext> NewContext() const {
    auto ctx = std::make_unique<grpc::ClientContext>();
    client::AddCallCredentials(options_.channel, *ctx);
    return ctx;
  }

  absl::Status FetchIds() {
    v1::ListTasksRequest req;
    req.set_page_size(1000);
    for (int page = 0; page < 10 && ids_.size() < 10000; ++page) {
      grpc::ClientContext ctx;
      ctx.set_deadline(DeadlineIn(options_.rpc_timeout));
      client::AddCallCredentials(options_.channel, ctx);
      v1::ListTasksResponse resp;
      grpc::Status st = stubs_[0]->ListTasks(&ctx, req, &resp);
      if (!st.ok()) {
        return absl::UnavailableError(
            absl::StrCat("listing task ids for get mode failed: ", st.error_message()));
      }
      for (const v1::Task& t : resp.tasks()) ids_.push_back(t.id());
      if (resp.next_page_token().empty()) break;
      req.set_page_token(resp.next_page_token());
    }
    if (ids_.empty()) {
      return absl::FailedPreconditionError("get mode needs tasks on the server; it lists none");
    }
    return absl::OkStatus();
  }

  LoadResult Collect(SteadyClock::time_point t0) {
    LoadResult result;
    SteadyClock::time_point last = t0;
    for (Slot& s : slots_) {
      result.calls += s.calls;
      result.items += s.items;
      result.latency_ns.insert(result.latency_ns.end(), s.latency_ns.begin(), s.latency_ns.end());
      for (const auto& [code, n] : s.errors) result.errors[code] += n;
      last = std::max(last, s.last_done);
    }
    std::sort(result.latency_ns.begin(), result.latency_ns.end());
    auto window = options_.max_items > 0 ? last - t0 : measure_end_ - measure_start_;
    result.seconds = std::chrono::duration<double>(window).count();
    return result;
  }

  const LoadOptions options_;
  absl::BitGen rng_;
  std::string nonce_;
  std::string image_;
  std::vector<std::shared_ptr<grpc::Channel>> channels_;
  std::vector<std::unique_ptr<v1::VideoTaskService::Stub>> stubs_;
  std::vector<std::string> ids_;
  std::vector<Slot> slots_;
  SteadyClock::time_point measure_start_;
  SteadyClock::time_point measure_end_;
  std::atomic<int64_t> items_started_{0};
  absl::Mutex mu_;
  int active_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace

absl::string_view ModeName(Mode mode) {
  switch (mode) {
    case Mode::kSubmit: return "submit";
    case Mode::kBatch: return "batch";
    case Mode::kGet: return "get";
    case Mode::kList: return "list";
    case Mode::kEndToEnd: return "e2e";
  }
  return "?";
}

absl::StatusOr<Mode> ParseMode(absl::string_view name) {
  for (Mode m : {Mode::kSubmit, Mode::kBatch, Mode::kGet, Mode::kList, Mode::kEndToEnd}) {
    if (ModeName(m) == name) return m;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("mode \"", name, "\"; allowed: submit, batch, get, list, e2e"));
}

absl::StatusOr<int64_t> ProcessCpuMicros(int pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string line;
  if (!in || !std::getline(in, line)) {
    return absl::NotFoundError(absl::StrCat("cannot read /proc/", pid, "/stat"));
  }
  // "pid (comm) state ppid ...": comm may hold spaces, so fields are counted
  // after its closing parenthesis; utime and stime are fields 14 and 15.
  size_t close = line.rfind(')');
  if (close == std::string::npos) {
    return absl::DataLossError(absl::StrCat("/proc/", pid, "/stat has no command field"));
  }
  std::istringstream fields(line.substr(close + 1));
  std::string field;
  int64_t utime = -1, stime = -1;
  for (int n = 3; n <= 15 && fields >> field; ++n) {
    if (n == 14 && !absl::SimpleAtoi(field, &utime)) utime = -1;
    if (n == 15 && !absl::SimpleAtoi(field, &stime)) stime = -1;
  }
  long ticks = sysconf(_SC_CLK_TCK);
  if (utime < 0 || stime < 0 || ticks <= 0) {
    return absl::DataLossError(absl::StrCat("/proc/", pid, "/stat is too short"));
  }
  return (utime + stime) * 1000000 / ticks;
}

double LoadResult::ServerCpuUsPerOp(Mode mode) const {
  int64_t ops = mode == Mode::kList ? calls : items;
  if (server_cpu_us < 0 || ops <= 0) return -1;
  return static_cast<double>(server_cpu_us) / static_cast<double>(ops);
}

double LoadResult::LatencyMs(double q) const {
  if (latency_ns.empty()) return 0;
  q = std::clamp(q, 0.0, 1.0);
  size_t rank = static_cast<size_t>(std::ceil(q * latency_ns.size()));
  rank = std::clamp<size_t>(rank, 1, latency_ns.size());
  return latency_ns[rank - 1] / 1e6;
}

absl::StatusOr<LoadResult> RunLoad(const LoadOptions& options) {
  Runner runner(options);
  return runner.Run();
}

namespace {
// "n/a" when the server's CPU was not measured.
std::string CpuPerOp(const LoadOptions& options, const LoadResult& r) {
  double us = r.ServerCpuUsPerOp(options.mode);
  return us < 0 ? std::string("n/a") : absl::StrFormat("%.1f", us);
}
}  // namespace

std::string FormatResultLine(const LoadOptions& options, const LoadResult& r) {
  std::vector<std::string> errors;
  for (const auto& [code, n] : r.errors) errors.push_back(absl::StrCat(code, ":", n));
  return absl::StrFormat(
      "RESULT mode=%s in_flight=%d channels=%d image_bytes=%d batch_size=%d seconds=%.3f "
      "calls=%d items=%d calls_per_s=%.1f items_per_s=%.1f p50_ms=%.3f p90_ms=%.3f "
      "p99_ms=%.3f max_ms=%.3f server_cpu_us_per_op=%s errors=%s",
      ModeName(options.mode), options.in_flight, options.channels, options.image_bytes,
      options.mode == Mode::kBatch ? options.batch_size : 1, r.seconds, r.calls, r.items,
      r.CallsPerSecond(), r.ItemsPerSecond(), r.LatencyMs(0.50), r.LatencyMs(0.90),
      r.LatencyMs(0.99), r.LatencyMs(1.0), CpuPerOp(options, r),
      errors.empty() ? "none" : absl::StrJoin(errors, ","));
}

std::string FormatSummary(const LoadOptions& options, const LoadResult& r) {
  std::vector<std::string> errors;
  for (const auto& [code, n] : r.errors) errors.push_back(absl::StrCat(code, " ", n));
  return absl::StrFormat(
      "%s against %s: %d in flight over %d channel(s), %.1f s measured\n"
      "  throughput  %.1f calls/s, %.1f items/s (%d calls)\n"
      "  latency ms  p50 %.3f  p90 %.3f  p99 %.3f  max %.3f\n"
      "  server CPU  %s us per %s\n"
      "  errors      %s\n",
      ModeName(options.mode), options.channel.target, options.in_flight, options.channels, r.seconds,
      r.CallsPerSecond(), r.ItemsPerSecond(), r.calls, r.LatencyMs(0.50), r.LatencyMs(0.90),
      r.LatencyMs(0.99), r.LatencyMs(1.0), CpuPerOp(options, r),
      options.mode == Mode::kList ? "call" : "item",
      errors.empty() ? "none" : absl::StrJoin(errors, ", "));
}

}  // namespace videotask::loadgen
