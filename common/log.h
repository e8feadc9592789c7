// The one logging header. Backed by spdlog; never log request bodies or
// secrets.
#ifndef VIDEOTASK_COMMON_LOG_H_
#define VIDEOTASK_COMMON_LOG_H_

#include <spdlog/spdlog.h>

#include <string>

#include "absl/strings/string_view.h"

// Debian's absl::string_view is its own type: teach fmt to print it.
template <>
struct fmt::formatter<absl::string_view> : fmt::formatter<fmt::string_view> {
  template <typename FormatContext>
  auto format(absl::string_view s, FormatContext& ctx) const {
    return fmt::formatter<fmt::string_view>::format(fmt::string_view(s.data(), s.size()), ctx);
  }
};

#define VT_LOG_DEBUG(...) ::spdlog::debug(__VA_ARGS__)
#define VT_LOG_INFO(...) ::spdlog::info(__VA_ARGS__)
#define VT_LOG_WARN(...) ::spdlog::warn(__VA_ARGS__)
#define VT_LOG_ERROR(...) ::spdlog::error(__VA_ARGS__)

namespace videotask {

// Sets the level from a name: "debug", "info", "warn", "error", "off".
// Returns false for an unknown name.
bool SetLogLevel(const std::string& level);

// "text" (spdlog's default lines) or "json": one object per line with
// time (RFC 3339, UTC), level, message, and the fields of the thread's
// LogContext that are set. Returns false for an unknown name.
bool SetLogFormat(const std::string& format);

// What a log line is about, attached to every line the current thread logs
// while a ScopedLogContext is alive (json format). Ids only: never caller
// text or secrets.
struct LogContext {
  std::string task_id;
  std::string backend;
  std::string provider_task_id;
  std::string request_id;
};

class ScopedLogContext {
 public:
  explicit ScopedLogContext(LogContext context);
  ~ScopedLogContext();
  ScopedLogContext(const ScopedLogContext&) = delete;
  ScopedLogContext& operator=(const ScopedLogContext&) = delete;

 private:
  LogContext context_;
  const LogContext* previous_;
};

// The current thread's context; null outside any ScopedLogContext.
const LogContext* CurrentLogContext();

}  // namespace videotask

#endif  // VIDEOTASK_COMMON_LOG_H_
