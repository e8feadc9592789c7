#include "backends/http/curl_transport.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <string>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "backends/api/errors.h"
#include "backends/http/url_policy.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "videotask/version.h"


namespace videotask::backends {
namespace {

// Bodies of non-2xx answers during a streamed transfer are kept up to this
// size (for error messages); the rest is dropped.
constexpr size_t kMaxStreamedErrorBody = 64 << 10;

absl::Status GlobalInit() {
  static CURLcode code = [] { return curl_global_init(CURL_GLOBAL_DEFAULT); }();
  if (code != CURLE_OK) {
    return absl::InternalError(absl::StrCat("libcurl initialization failed: ",
                                            curl_easy_strerror(code)));
  }
  const curl_version_info_data* info = curl_version_info(CURLVERSION_NOW);
  if (info == nullptr || (info->features & CURL_VERSION_SSL) == 0) {
    return absl::FailedPreconditionError("libcurl was built without TLS support");
  }
  return absl::OkStatus();
}

long ToMillis(absl::Duration d) {
  return static_cast<long>(std::max<int64_t>(1, absl::ToInt64Milliseconds(d)));
}

// State of one transfer, shared with the libcurl callbacks.
struct Transfer {
  const BodySink* sink = nullptr;
  int64_t max_bytes = 0;
  int64_t received = 0;  // body bytes of the current answer
  HttpResponse response;
  absl::Status callback_error;  // why a callback aborted the transfer
};

bool Is2xx(int status) { return status >= 200 && status < 300; }

size_t OnHeader(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t n = size * count;
  absl::string_view line(data, n);
  line = absl::StripTrailingAsciiWhitespace(line);
  if (absl::StartsWith(line, "HTTP/")) {
    // A new answer begins (after 100 Continue, or a retried request).
    t->response.headers.clear();
    t->response.body.clear();
    t->received = 0;
    t->response.status = 0;
    size_t space = line.find(' ');
    if (space != absl::string_view::npos) {
      absl::string_view rest = line.substr(space + 1);
      int status = 0;
      if (absl::SimpleAtoi(rest.substr(0, rest.find(' ')), &status)) t->response.status = status;
    }
    return n;
  }
  size_t colon = line.find(':');
  if (colon == absl::string_view::npos || colon == 0) return n;
  std::string name = absl::AsciiStrToLower(line.substr(0, colon));
  std::string value(absl::StripAsciiWhitespace(line.substr(colon + 1)));
  t->response.headers.emplace_back(std::move(name), std::move(value));
  return n;
}

size_t OnBody(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t n = size * count;
  absl::string_view chunk(data, n);
  if (t->sink != nullptr && !Is2xx(t->response.status)) {
    // An error answer while streaming: keep the start for messages.
    size_t room = kMaxStreamedErrorBody - std::min(kMaxStreamedErrorBody, t->response.body.size());
    t->response.body.append(data, std::min(room, n));
    return n;
  }
  t->received += static_cast<int64_t>(n);
  if (t->received > t->max_bytes) {
    t->callback_error = absl::ResourceExhaustedError(
        absl::StrCat("HTTP answer larger than the allowed ", t->max_bytes, " bytes"));
    return 0;  // aborts with CURLE_WRITE_ERROR
  }
  if (t->sink != nullptr) {
    absl::Status status = (*t->sink)(chunk);
    if (!status.ok()) {
      t->callback_error = std::move(status);
      return 0;
    }
    return n;
  }
  t->response.body.append(data, n);
  return n;
}

// Whether the transfer got as far as (possibly) handing the request over.
bool MayHaveSent(CURL* curl) {
  curl_off_t connect_us = 0;
  curl_off_t pretransfer_us = 0;
  long request_size = 0;
  curl_easy_getinfo(curl, CURLINFO_CONNECT_TIME_T, &connect_us);
  curl_easy_getinfo(curl, CURLINFO_PRETRANSFER_TIME_T, &pretransfer_us);
  curl_easy_getinfo(curl, CURLINFO_REQUEST_SIZE, &request_size);
  return connect_us > 0 || pretransfer_us > 0 || request_size > 0;
}

absl::Status ClassifyCurlError(CURL* curl, CURLcode code, const char* errbuf,
                               absl::string_view what) {
  std::string detail = errbuf[0] != '\0' ? errbuf : curl_easy_strerror(code);
  std::string message = absl::StrCat(what, ": ", detail);
  switch (code) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
      return absl::UnavailableError(message);
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
      // The handshake failed: nothing of the request went out.
      return absl::UnavailableError(absl::StrCat(message, " (TLS)"));
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
      return absl::InvalidArgumentError(message);
    case CURLE_OUT_OF_MEMORY:
      return absl::ResourceExhaustedError(message);
    case CURLE_FILESIZE_EXCEEDED:
      return MarkMaybeSent(absl::ResourceExhaustedError(message));
    case CURLE_OPERATION_TIMEDOUT:
      if (!MayHaveSent(curl)) {
        return absl::UnavailableError(absl::StrCat(message, " (while connecting)"));
      }
      return MarkMaybeSent(absl::DeadlineExceededError(message));
    default:
      // Resets, empty replies, truncated bodies, send/receive errors: the
      // request may have reached the server.
      if (!MayHaveSent(curl)) return absl::UnavailableError(message);
      return MarkMaybeSent(absl::UnavailableError(message));
  }
}

const Clock& SystemClockInstance() {
  static const SystemClock* clock = new SystemClock();
  return *clock;
}

}  // namespace

struct CurlTransport::ShareLocks {
  std::mutex locks[CURL_LOCK_DATA_LAST];
};

namespace {

void ShareLock(CURL*, curl_lock_data data, curl_lock_access, void* user) {
  auto* locks = static_cast<std::mutex*>(user);
  locks[data].lock();
}

void ShareUnlock(CURL*, curl_lock_data data, void* user) {
  auto* locks = static_cast<std::mutex*>(user);
  locks[data].unlock();
}

struct SlistDeleter {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};

}  // namespace

std::string DefaultUserAgent() { return absl::StrCat("videotask/", VIDEOTASK_VERSION); }

absl::StatusOr<std::unique_ptr<CurlTransport>> CurlTransport::Create(CurlOptions options) {
  if (options.connect_timeout <= absl::ZeroDuration() ||
      options.total_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("HTTP connect and total timeouts must be positive");
  }
  if (options.max_request_bytes <= 0 || options.max_response_bytes <= 0) {
    return absl::InvalidArgumentError("HTTP size caps must be positive");
  }
  VT_RETURN_IF_ERROR(GlobalInit());
  if (options.user_agent.empty()) options.user_agent = DefaultUserAgent();
  auto transport = std::unique_ptr<CurlTransport>(new CurlTransport(std::move(options)));
  if (transport->share_ == nullptr) {
    return absl::InternalError("libcurl share handle could not be created");
  }
  return transport;
}

CurlTransport::CurlTransport(CurlOptions options)
    : options_(std::move(options)),
      clock_(options_.clock != nullptr ? *options_.clock : SystemClockInstance()), share_locks_(std::make_unique<ShareLocks>()) {
  CURLSH* share = curl_share_init();
  if (share != nullptr) {
    curl_share_setopt(share, CURLSHOPT_LOCKFUNC, ShareLock);
    curl_share_setopt(share, CURLSHOPT_UNLOCKFUNC, ShareUnlock);
    curl_share_setopt(share, CURLSHOPT_USERDATA, share_locks_->locks);
    curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
  }
  share_ = share;
}

CurlTransport::~CurlTransport() {
  absl::MutexLock lock(&mu_);
  for (void* handle : idle_) curl_easy_cleanup(static_cast<CURL*>(handle));
  idle_.clear();
  if (share_ != nullptr) curl_share_cleanup(static_cast<CURLSH*>(share_));
}

void* CurlTransport::AcquireHandle() {
  {
    absl::MutexLock lock(&mu_);
    if (!idle_.empty()) {
      void* handle = idle_.back();
      idle_.pop_back();
      return handle;
    }
  }
  return curl_easy_init();
}

void CurlTransport::ReleaseHandle(void* handle) {
  {
    absl::MutexLock lock(&mu_);
    if (static_cast<int>(idle_.size()) < options_.max_idle_handles) {
      idle_.push_back(handle);
      return;
    }
  }
  curl_easy_cleanup(static_cast<CURL*>(handle));
}

absl::StatusOr<HttpResponse> CurlTransport::Send(const HttpRequest& request) {
  return Perform(request, nullptr);
}

absl::StatusOr<HttpResponse> CurlTransport::SendStreaming(const HttpRequest& request,
                                                          const BodySink& sink) {
  return Perform(request, &sink);
}

namespace {

// The policy and size checks of a request before any handle is taken.
absl::Status CheckRequest(const HttpRequest& request, const CurlOptions& options,
                          const std::string& what) {
  if (options.url_check) {
    if (absl::Status allowed = options.url_check(request.url); !allowed.ok()) {
      return absl::Status(allowed.code(), absl::StrCat(what, ": ", allowed.message()));
    }
  } else if (options.enforce_url_policy) {
    if (absl::Status allowed = CheckUrlAllowed(request.url); !allowed.ok()) {
      return absl::Status(allowed.code(), absl::StrCat(what, ": ", allowed.message()));
    }
  }
  if (static_cast<int64_t>(request.body.size()) > options.max_request_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(what, ": request body of ",
                                                     request.body.size(),
                                                     " bytes is larger than the allowed ",
                                                     options.max_request_bytes));
  }
  return absl::OkStatus();
}

// The request's headers as a curl list, plus an empty "Expect:" unless the
// caller set one (no "Expect: 100-continue" round trip for large bodies).
using HeaderList = std::unique_ptr<curl_slist, SlistDeleter>;

absl::StatusOr<HeaderList> BuildHeaders(
    const HttpRequest& request) {
  HeaderList headers;
  bool has_expect = false;
  for (const auto& [name, value] : request.headers) {
    if (absl::EqualsIgnoreCase(name, "expect")) has_expect = true;
    std::string line = value.empty() ? absl::StrCat(name, ";") : absl::StrCat(name, ": ", value);
    curl_slist* appended = curl_slist_append(headers.get(), line.c_str());
    if (appended == nullptr) return absl::ResourceExhaustedError("out of memory building HTTP headers");
    headers.release();
    headers.reset(appended);
  }
  if (!has_expect) {
    curl_slist* appended = curl_slist_append(headers.get(), "Expect:");
    if (appended != nullptr) {
      headers.release();
      headers.reset(appended);
    }
  }
  return headers;
}

// Connection, TLS, timeout and size options of one transfer.
void SetTransferOptions(CURL* curl, const HttpRequest& request, const CurlOptions& options,
                        void* share) {
  const absl::Duration total =
      request.timeout > absl::ZeroDuration() ? request.timeout : options.total_timeout;
  curl_easy_setopt(curl, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_SHARE, static_cast<CURLSH*>(share));
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, ToMillis(options.connect_timeout));
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, ToMillis(total));
  if (options.low_speed_time > absl::ZeroDuration() && options.low_speed_bytes_per_second > 0) {
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT,
                     static_cast<long>(options.low_speed_bytes_per_second));
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME,
                     static_cast<long>(std::max<int64_t>(
                         1, absl::ToInt64Seconds(options.low_speed_time))));
  }
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
  if (!options.ca_bundle_path.empty()) {
    curl_easy_setopt(curl, CURLOPT_CAINFO, options.ca_bundle_path.c_str());
  }
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, options.user_agent.c_str());
}

// The method and body; a POST or PATCH never goes on a pooled connection
// (see the class comment).
void SetMethod(CURL* curl, const HttpRequest& request, const std::string& method) {
  const bool has_body = !request.body.empty() || method == "POST" || method == "PUT" ||
                        method == "PATCH";
  if (method == "GET") {
    curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
  } else if (method == "HEAD") {
    curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  } else if (method != "POST") {
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
  }
  if (has_body && method != "GET" && method != "HEAD") {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
                     static_cast<curl_off_t>(request.body.size()));
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, request.body.data());
  }
  if (method == "POST" || method == "PATCH") curl_easy_setopt(curl, CURLOPT_FRESH_CONNECT, 1L);
}

// CurlOptions::address_check at connect time, through libcurl's socket
// opening callback.
struct AddressGuard {
  const CurlOptions* options = nullptr;
  std::string host;
  std::string refused;  // the refused address, for the error
};

curl_socket_t OpenCheckedSocket(void* user, curlsocktype purpose, curl_sockaddr* address) {
  auto* guard = static_cast<AddressGuard*>(user);
  if (purpose != CURLSOCKTYPE_IPCXN ||
      !guard->options->address_check(guard->host, &address->addr)) {
    char text[INET6_ADDRSTRLEN] = "?";
    if (address->family == AF_INET) {
      inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&address->addr)->sin_addr, text,
                sizeof(text));
    } else if (address->family == AF_INET6) {
      inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(&address->addr)->sin6_addr, text,
                sizeof(text));
    }
    guard->refused = text;
    return CURL_SOCKET_BAD;
  }
  return socket(address->family, address->socktype, address->protocol);
}

void SetAddressGuard(CURL* curl, AddressGuard& guard, const HttpRequest& request,
                     const CurlOptions& options) {
  if (!options.address_check) return;
  guard.options = &options;
  guard.host = UrlHost(request.url);
  curl_easy_setopt(curl, CURLOPT_OPENSOCKETFUNCTION, OpenCheckedSocket);
  curl_easy_setopt(curl, CURLOPT_OPENSOCKETDATA, &guard);
  curl_easy_setopt(curl, CURLOPT_PROXY, "");
  curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
}

}  // namespace

absl::StatusOr<HttpResponse> CurlTransport::Perform(const HttpRequest& request,
                                                    const BodySink* sink) {
  const std::string what = absl::StrCat(request.method, " ", RedactUrl(request.url));
  VT_RETURN_IF_ERROR(CheckRequest(request, options_, what));
  const std::string method = absl::AsciiStrToUpper(request.method);
  VT_ASSIGN_OR_RETURN(HeaderList headers, BuildHeaders(request));

  CURL* curl = static_cast<CURL*>(AcquireHandle());
  if (curl == nullptr) return absl::ResourceExhaustedError("libcurl handle could not be created");
  curl_easy_reset(curl);

  Transfer transfer;
  transfer.sink = sink;
  transfer.max_bytes =
      request.max_response_bytes > 0 ? request.max_response_bytes : options_.max_response_bytes;
  char errbuf[CURL_ERROR_SIZE];
  errbuf[0] = '\0';
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
  SetTransferOptions(curl, request, options_, share_);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(curl, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(transfer.max_bytes));
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &transfer);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &transfer);
  SetMethod(curl, request, method);
  AddressGuard guard;
  SetAddressGuard(curl, guard, request, options_);

  const absl::Time start = clock_.Now();
  CURLcode code = curl_easy_perform(curl);
  absl::Status status;
  if (code != CURLE_OK) {
    if (!transfer.callback_error.ok() && (code == CURLE_WRITE_ERROR)) {
      // Our callback stopped the transfer: the request had been answered.
      status = MarkMaybeSent(absl::Status(transfer.callback_error.code(),
                                          absl::StrCat(what, ": ",
                                                       transfer.callback_error.message())));
    } else if (!guard.refused.empty()) {
      status = absl::UnavailableError(absl::StrCat(what, ": address ", guard.refused, " of host ",
                                                   guard.host, " is not allowed"));
    } else {
      status = ClassifyCurlError(curl, code, errbuf, what);
    }
  }
  long http_code = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &http_code);
  // Drop the header list from the handle before it is freed.
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, nullptr);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, nullptr);
  ReleaseHandle(curl);

  const int64_t elapsed_ms = absl::ToInt64Milliseconds(clock_.Now() - start);
  if (!status.ok()) {
    VT_LOG_DEBUG("http {} failed after {} ms: {}", what, elapsed_ms, status.ToString());
    return status;
  }
  if (http_code != 0) transfer.response.status = static_cast<int>(http_code);
  VT_LOG_DEBUG("http {} -> {} in {} ms", what, transfer.response.status, elapsed_ms);
  return std::move(transfer.response);
}

}  // namespace videotask::backends
