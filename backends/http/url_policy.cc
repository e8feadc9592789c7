#include "backends/http/url_policy.h"

#include <curl/curl.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/net.h"

namespace videotask::backends {
namespace {

struct UrlDeleter {
  void operator()(CURLU* url) const { curl_url_cleanup(url); }
};

struct CurlStringDeleter {
  void operator()(char* s) const { curl_free(s); }
};

struct ParsedUrl {
  std::string scheme;  // lower case
  std::string host;    // IPv6 in brackets
  std::string port;    // "" when not given
  std::string path;
};

std::optional<std::string> Part(CURLU* url, CURLUPart part) {
  char* value = nullptr;
  if (curl_url_get(url, part, &value, 0) != CURLUE_OK || value == nullptr) return std::nullopt;
  std::unique_ptr<char, CurlStringDeleter> owned(value);
  return std::string(value);
}

std::optional<ParsedUrl> Parse(absl::string_view text) {
  std::unique_ptr<CURLU, UrlDeleter> url(curl_url());
  if (url == nullptr) return std::nullopt;
  std::string copy(text);
  if (copy.find('\0') != std::string::npos) return std::nullopt;
  if (curl_url_set(url.get(), CURLUPART_URL, copy.c_str(), 0) != CURLUE_OK) return std::nullopt;
  ParsedUrl parsed;
  std::optional<std::string> scheme = Part(url.get(), CURLUPART_SCHEME);
  std::optional<std::string> host = Part(url.get(), CURLUPART_HOST);
  if (!scheme.has_value() || !host.has_value() || host->empty()) return std::nullopt;
  parsed.scheme = absl::AsciiStrToLower(*scheme);
  parsed.host = absl::AsciiStrToLower(*host);
  parsed.port = Part(url.get(), CURLUPART_PORT).value_or("");
  parsed.path = Part(url.get(), CURLUPART_PATH).value_or("/");
  return parsed;
}

std::string StripBrackets(std::string host) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    return host.substr(1, host.size() - 2);
  }
  return host;
}

}  // namespace

bool IsLoopbackUrl(absl::string_view url) {
  std::optional<ParsedUrl> parsed = Parse(url);
  return parsed.has_value() && IsLoopbackHost(parsed->host);
}

absl::Status CheckUrlAllowed(absl::string_view url) {
  std::optional<ParsedUrl> parsed = Parse(url);
  if (!parsed.has_value()) {
    return absl::InvalidArgumentError("URL does not parse as scheme://host/...");
  }
  if (parsed->scheme == "https") return absl::OkStatus();
  if (parsed->scheme == "http") {
    if (IsLoopbackHost(parsed->host)) return absl::OkStatus();
    return absl::InvalidArgumentError(
        absl::StrCat("plain http:// is allowed only to loopback hosts (127.0.0.0/8, ::1, "
                     "localhost); use https:// for host ",
                     parsed->host));
  }
  return absl::InvalidArgumentError(absl::StrCat("URL scheme \"", parsed->scheme,
                                                 "\" is not allowed; allowed: https (http for "
                                                 "loopback hosts)"));
}

std::string UrlHost(absl::string_view url) {
  std::optional<ParsedUrl> parsed = Parse(url);
  if (!parsed.has_value()) return "";
  return StripBrackets(parsed->host);
}

absl::StatusOr<HostAllowList> HostAllowList::Parse(absl::string_view list) {
  HostAllowList out;
  for (absl::string_view piece : absl::StrSplit(list, ',')) {
    std::string host = StripBrackets(absl::AsciiStrToLower(absl::StripAsciiWhitespace(piece)));
    if (host.empty()) continue;
    const bool ok = std::all_of(host.begin(), host.end(), [](char c) {
      return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' ||
             c == ':' || c == '_';
    });
    if (!ok) {
      return absl::InvalidArgumentError(absl::StrCat(
          "\"", piece, "\" is not a host name or address (give hosts only, no scheme or port)"));
    }
    out.hosts_.push_back(std::move(host));
  }
  return out;
}

bool HostAllowList::Contains(absl::string_view host) const {
  const std::string wanted = StripBrackets(absl::AsciiStrToLower(host));
  return std::find(hosts_.begin(), hosts_.end(), wanted) != hosts_.end();
}

absl::Status CheckOutboundUrl(absl::string_view url, const HostAllowList& allow) {
  std::optional<ParsedUrl> parsed = Parse(url);
  if (!parsed.has_value()) {
    return absl::InvalidArgumentError("URL does not parse as https://host/...");
  }
  const std::string host = StripBrackets(parsed->host);
  if (parsed->scheme != "https" && parsed->scheme != "http") {
    return absl::InvalidArgumentError(absl::StrCat(
        "URL scheme \"", parsed->scheme, "\" is not allowed; allowed: https (http only to a "
        "host of --webhook_allow_hosts)"));
  }
  if (allow.Contains(host)) return absl::OkStatus();
  if (parsed->scheme == "http") {
    return absl::InvalidArgumentError(absl::StrCat(
        "plain http:// is allowed only to the hosts of --webhook_allow_hosts; use https:// for "
        "host ", host));
  }
  std::optional<bool> public_address = IsPublicAddressText(host);
  if (host == "localhost" || absl::EndsWith(host, ".localhost") ||
      (public_address.has_value() && !*public_address)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "host ", host, " is a private, loopback or link-local address; allowed only for the "
        "hosts of --webhook_allow_hosts"));
  }
  return absl::OkStatus();
}

bool OutboundAddressAllowed(absl::string_view host, const struct sockaddr* address,
                            const HostAllowList& allow) {
  return IsPublicAddress(address) || allow.Contains(host);
}

std::string RedactUrl(absl::string_view url) {
  std::optional<ParsedUrl> parsed = Parse(url);
  if (!parsed.has_value()) return "<invalid url>";
  std::string out = absl::StrCat(parsed->scheme, "://", parsed->host);
  if (!parsed->port.empty()) absl::StrAppend(&out, ":", parsed->port);
  absl::StrAppend(&out, parsed->path);
  return out;
}

}  // namespace videotask::backends
