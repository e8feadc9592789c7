// The one logging header. Backed by spdlog; never log request bodies or
// secrets.
#ifndef VIDEOTASK_COMMON_LOG_H_
#define VIDEOTASK_COMMON_LOG_H_

#include <spdlog/spdlog.h>

#define VT_LOG_DEBUG(...) ::spdlog::debug(__VA_ARGS__)
#define VT_LOG_INFO(...) ::spdlog::info(__VA_ARGS__)
#define VT_LOG_WARN(...) ::spdlog::warn(__VA_ARGS__)
#define VT_LOG_ERROR(...) ::spdlog::error(__VA_ARGS__)

namespace videotask {

// Sets the level from a name: "debug", "info", "warn", "error", "off".
// Returns false for an unknown name.
bool SetLogLevel(const std::string& level);

}  // namespace videotask

#endif  // VIDEOTASK_COMMON_LOG_H_
