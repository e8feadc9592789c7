// Status propagation helpers: one line to pass an error up.
#ifndef VIDEOTASK_COMMON_STATUS_MACROS_H_
#define VIDEOTASK_COMMON_STATUS_MACROS_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define VT_RETURN_IF_ERROR(expr)                                  \
  do {                                                            \
    if (::absl::Status vt_status_ = (expr); !vt_status_.ok()) {   \
      return vt_status_;                                          \
    }                                                             \
  } while (0)

#define VT_INTERNAL_CONCAT_(a, b) a##b
#define VT_INTERNAL_CONCAT(a, b) VT_INTERNAL_CONCAT_(a, b)

#define VT_INTERNAL_ASSIGN_OR_RETURN(tmp, decl, expr) \
  auto tmp = (expr);                                  \
  if (!tmp.ok()) return std::move(tmp).status();      \
  decl = *std::move(tmp)

// VT_ASSIGN_OR_RETURN(auto x, FunctionReturningStatusOr());
#define VT_ASSIGN_OR_RETURN(decl, expr) \
  VT_INTERNAL_ASSIGN_OR_RETURN(VT_INTERNAL_CONCAT(vt_statusor_, __LINE__), decl, expr)

#endif  // VIDEOTASK_COMMON_STATUS_MACROS_H_
