#include "common/log.h"

#include <spdlog/pattern_formatter.h>

#include <memory>
#include <string>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace videotask {
namespace {

thread_local const LogContext* current_context = nullptr;

// One JSON object per line. Invalid UTF-8 in a message is replaced, never
// thrown on, so every line parses.
class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    nlohmann::json line;
    line["time"] = absl::FormatTime("%Y-%m-%d%ET%H:%M:%E6SZ", absl::FromChrono(msg.time),
                                    absl::UTCTimeZone());
    const spdlog::string_view_t level = spdlog::level::to_string_view(msg.level);
    line["level"] = std::string(level.data(), level.size());
    line["message"] = std::string(msg.payload.data(), msg.payload.size());
    if (const LogContext* c = current_context; c != nullptr) {
      if (!c->task_id.empty()) line["task_id"] = c->task_id;
      if (!c->backend.empty()) line["backend"] = c->backend;
      if (!c->provider_task_id.empty()) line["provider_task_id"] = c->provider_task_id;
      if (!c->request_id.empty()) line["request_id"] = c->request_id;
    }
    std::string text = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    text.push_back('\n');
    dest.append(text.data(), text.data() + text.size());
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>();
  }
};

}  // namespace

bool SetLogLevel(const std::string& level) {
  spdlog::level::level_enum parsed = spdlog::level::from_str(level);
  if (parsed == spdlog::level::off && level != "off") return false;
  spdlog::set_level(parsed);
  return true;
}

bool SetLogFormat(const std::string& format) {
  if (format == "json") {
    spdlog::set_formatter(std::make_unique<JsonFormatter>());
    return true;
  }
  if (format == "text") {
    spdlog::set_formatter(std::make_unique<spdlog::pattern_formatter>());
    return true;
  }
  return false;
}

ScopedLogContext::ScopedLogContext(LogContext context)
    : context_(std::move(context)), previous_(current_context) {
  current_context = &context_;
}

ScopedLogContext::~ScopedLogContext() { current_context = previous_; }

const LogContext* CurrentLogContext() { return current_context; }

}  // namespace videotask
