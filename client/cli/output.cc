#include "client/cli/output.h"

#include <algorithm>
#include <cmath>

#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/time_util.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace videotask::cli {

std::string StateName(v1::State state) { return v1::State_Name(state); }

std::optional<v1::State> ParseState(absl::string_view name) {
  v1::State state;
  if (!v1::State_Parse(absl::AsciiStrToUpper(name), &state) || state == v1::STATE_UNSPECIFIED) {
    return std::nullopt;
  }
  return state;
}

std::string StateNames() {
  std::vector<std::string> names;
  for (int i = v1::QUEUED; i <= v1::CANCELLED; ++i) {
    if (v1::State_IsValid(i)) names.push_back(v1::State_Name(static_cast<v1::State>(i)));
  }
  return absl::StrJoin(names, ", ");
}

bool IsTerminal(v1::State state) {
  return state == v1::SUCCEEDED || state == v1::FAILED || state == v1::CANCELLED;
}

nlohmann::ordered_json ProtoToJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string text;
  if (!google::protobuf::util::MessageToJsonString(message, &text, options).ok()) {
    return nlohmann::ordered_json::object();
  }
  nlohmann::ordered_json value = nlohmann::ordered_json::parse(text, nullptr, /*allow_exceptions=*/false);
  return value.is_discarded() ? nlohmann::ordered_json::object() : value;
}

std::string JsonLine(const nlohmann::ordered_json& value) {
  // Replace invalid UTF-8 rather than throw.
  return value.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

Table::Table(std::vector<std::string> header) : header_(std::move(header)) {}

void Table::AddRow(std::vector<std::string> row) {
  row.resize(header_.size());
  rows_.push_back(std::move(row));
}

std::string Table::Render() const {
  std::vector<size_t> widths(header_.size());
  auto measure = [&widths](const std::vector<std::string>& row) {
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  };
  measure(header_);
  for (const auto& row : rows_) measure(row);
  std::string out;
  auto emit = [&](const std::vector<std::string>& row) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      absl::StrAppend(&line, row[i]);
      if (i + 1 < row.size()) line.append(widths[i] - row[i].size() + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    absl::StrAppend(&out, line, "\n");
  };
  emit(header_);
  for (const auto& row : rows_) emit(row);
  return out;
}

std::string FormatAge(absl::Duration age) {
  if (age < absl::ZeroDuration()) age = absl::ZeroDuration();
  int64_t s = absl::ToInt64Seconds(age);
  if (s < 120) return absl::StrCat(s, "s");
  if (s < 2 * 3600) return absl::StrCat(s / 60, "m");
  if (s < 2 * 86400) return absl::StrCat(s / 3600, "h");
  return absl::StrCat(s / 86400, "d");
}

std::string FormatBytes(int64_t bytes) {
  if (bytes < 1024) return absl::StrCat(bytes, " B");
  if (bytes < 1024 * 1024) return absl::StrFormat("%.1f KiB", bytes / 1024.0);
  return absl::StrFormat("%.1f MiB", bytes / (1024.0 * 1024.0));
}

std::string ProgressBar(float progress, int width) {
  float p = std::clamp(progress, 0.0f, 1.0f);
  int filled = static_cast<int>(std::lround(p * width));
  return absl::StrCat("[", std::string(filled, '#'), std::string(width - filled, '-'), "]");
}

std::string Percent(float progress) {
  return absl::StrCat(std::lround(std::clamp(progress, 0.0f, 1.0f) * 100), "%");
}

std::string Abbreviate(absl::string_view text, size_t max) {
  std::string out(text);
  std::replace(out.begin(), out.end(), '\n', ' ');
  std::replace(out.begin(), out.end(), '\r', ' ');
  if (out.size() > max && max > 3) out = absl::StrCat(out.substr(0, max - 3), "...");
  return out;
}

std::string TaskErrorText(const v1::Task& task) {
  if (!task.has_error() || (task.error().code().empty() && task.error().message().empty())) {
    return "";
  }
  std::string text = absl::StrCat(task.error().code(), ": ", task.error().message());
  if (!task.error().provider_code().empty()) {
    absl::StrAppend(&text, " (provider code ", task.error().provider_code(), ")");
  }
  return text;
}

namespace {

std::string FormatTime(const google::protobuf::Timestamp& ts) {
  if (ts.seconds() == 0 && ts.nanos() == 0) return "";
  return google::protobuf::util::TimeUtil::ToString(ts);
}

// "task.succeeded to https://... DELIVERED after 3 tries (200)".
std::string DescribeDelivery(const v1::WebhookDelivery& d) {
  std::string state = v1::WebhookDelivery::DeliveryState_Name(d.state());
  std::string text = absl::StrCat(d.event_type(), " to ", d.url(), " ", state, " after ",
                                  d.attempts(), d.attempts() == 1 ? " try" : " tries");
  if (d.last_status_code() != 0) absl::StrAppend(&text, " (HTTP ", d.last_status_code(), ")");
  if (!d.last_error().empty() && d.state() != v1::WebhookDelivery::DELIVERED) {
    absl::StrAppend(&text, ": ", d.last_error());
  }
  if (d.state() == v1::WebhookDelivery::PENDING) {
    std::string next = FormatTime(d.next_attempt_time());
    if (!next.empty()) absl::StrAppend(&text, "; next try ", next);
  }
  return text;
}

}  // namespace

std::string DescribeTask(const v1::Task& task, absl::Time now) {
  std::vector<std::pair<std::string, std::string>> rows;
  const v1::TaskSpec& spec = task.spec();
  rows.emplace_back("id", task.id());
  rows.emplace_back("state", StateName(task.state()));
  rows.emplace_back("progress", Percent(task.progress()));
  rows.emplace_back("stub", task.target_filename_stub());
  rows.emplace_back("backend", spec.backend());
  if (!task.caller().empty()) rows.emplace_back("caller", task.caller());
  rows.emplace_back("model", spec.model());
  rows.emplace_back("image", spec.image().filename());
  rows.emplace_back("image_sha256", task.image_sha256());
  rows.emplace_back("prompt", spec.prompt_text());
  rows.emplace_back("ratio", spec.ratio());
  rows.emplace_back("duration", spec.duration_seconds() ? absl::StrCat(spec.duration_seconds(), "s") : "");
  if (spec.has_seed()) rows.emplace_back("seed", absl::StrCat(spec.seed()));
  if (spec.priority() != 0) rows.emplace_back("priority", absl::StrCat(spec.priority()));
  std::vector<std::string> labels;
  for (const auto& [k, v] : spec.labels()) labels.push_back(absl::StrCat(k, "=", v));
  std::sort(labels.begin(), labels.end());
  rows.emplace_back("labels", absl::StrJoin(labels, ", "));
  rows.emplace_back("request_id", task.request_id());
  rows.emplace_back("provider_task_id", task.provider_task_id());
  rows.emplace_back("provider_status", task.provider_status());
  rows.emplace_back("attempts", task.attempt_count() ? absl::StrCat(task.attempt_count()) : "");
  rows.emplace_back("error", TaskErrorText(task));
  rows.emplace_back("output", task.output_path());
  if (task.output_size_bytes() > 0) rows.emplace_back("output_size", FormatBytes(task.output_size_bytes()));
  rows.emplace_back("output_sha256", task.output_sha256());
  std::string created = FormatTime(task.create_time());
  if (!created.empty()) {
    absl::Time t = absl::FromUnixSeconds(task.create_time().seconds());
    absl::StrAppend(&created, " (", FormatAge(now - t), " ago)");
  }
  rows.emplace_back("created", created);
  rows.emplace_back("started", FormatTime(task.start_time()));
  rows.emplace_back("ended", FormatTime(task.end_time()));
  rows.emplace_back("next_attempt", FormatTime(task.next_attempt_time()));
  // Earlier tries (the last attempt is the task itself).
  for (int i = 0; i + 1 < task.attempts_size(); ++i) {
    const v1::Attempt& a = task.attempts(i);
    std::string text = StateName(a.state());
    if (!a.provider_task_id().empty()) absl::StrAppend(&text, " ", a.provider_task_id());
    if (!a.error().code().empty()) {
      absl::StrAppend(&text, " (", a.error().code(), ": ", a.error().message(), ")");
    }
    std::string ended = FormatTime(a.end_time());
    if (!ended.empty()) absl::StrAppend(&text, " ended ", ended);
    rows.emplace_back(absl::StrCat("try ", i + 1), text);
  }
  if (!spec.notify_url().empty()) rows.emplace_back("notify_url", spec.notify_url());
  rows.emplace_back("notify_events", absl::StrJoin(spec.notify_events(), ", "));
  for (const v1::WebhookDelivery& d : task.deliveries()) {
    rows.emplace_back(absl::StrCat("webhook ", d.id()), DescribeDelivery(d));
  }
  std::string out;
  for (const auto& [key, value] : rows) {
    if (value.empty()) continue;
    absl::StrAppend(&out, absl::StrFormat("%-17s %s\n", key + ":", Abbreviate(value, 400)));
  }
  return out;
}

}  // namespace videotask::cli
