// The dashboard's static files (web/), embedded in the binary at build time
// by embed_assets: nothing is read from disk or fetched at run time.
#ifndef VIDEOTASK_SERVER_DASHBOARD_ASSETS_H_
#define VIDEOTASK_SERVER_DASHBOARD_ASSETS_H_

#include <cstddef>

namespace videotask::dashboard {

struct Asset {
  const char* path;          // URL path, e.g. "/app.js"
  const char* content_type;  // e.g. "text/javascript; charset=utf-8"
  const unsigned char* data;
  size_t size;
};

// Every embedded file; the array ends with an entry whose path is null.
const Asset* EmbeddedAssets();

}  // namespace videotask::dashboard

#endif  // VIDEOTASK_SERVER_DASHBOARD_ASSETS_H_
