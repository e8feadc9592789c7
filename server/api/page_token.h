// Opaque ListTasks page tokens: the keyset position plus a digest of the
// filters, so a token reused with other filters is refused.
#ifndef VIDEOTASK_SERVER_API_PAGE_TOKEN_H_
#define VIDEOTASK_SERVER_API_PAGE_TOKEN_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/store/task_store.h"

namespace videotask::api {

// Digest of the filters of a query (states, backend, labels, caller).
std::string FilterDigest(const store::ListQuery& query);

std::string EncodePageToken(const store::ListCursor& cursor, absl::string_view filter_digest);

// INVALID_ARGUMENT naming page_token when malformed or issued for other
// filters.
absl::StatusOr<store::ListCursor> DecodePageToken(absl::string_view token,
                                                  absl::string_view filter_digest);

}  // namespace videotask::api

#endif  // VIDEOTASK_SERVER_API_PAGE_TOKEN_H_
