#include "server/heap.h"

#include <malloc.h>

#include <cstdint>
#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"

#ifdef VT_TCMALLOC
#include <gperftools/malloc_extension.h>
#endif

namespace videotask {
namespace {

bool EnvSet(const char* name) { return std::getenv(name) != nullptr; }

#ifdef VT_TCMALLOC
// All threads' caches together. tcmalloc's default (32 MiB) holds up to
// 15 MB more at the memory goal's load (100,000 queued, 1,000 watchers);
// 2 MiB keeps most of the CPU saved.
constexpr int64_t kThreadCacheBytes = int64_t{2} << 20;

size_t Property(const char* name) {
  size_t value = 0;
  MallocExtension::instance()->GetNumericProperty(name, &value);
  return value;
}
#endif

}  // namespace

void SetUpHeap() {
#ifdef VT_TCMALLOC
  MallocExtension* heap = MallocExtension::instance();
  if (!EnvSet("TCMALLOC_MAX_TOTAL_THREAD_CACHE_BYTES")) {
    heap->SetNumericProperty("tcmalloc.max_total_thread_cache_bytes", kThreadCacheBytes);
  }
  // Free spans go back to the system when freed, not at tcmalloc's slow
  // release rate: a burst (a thousand watchers opening) does not stay
  // resident.
  if (!EnvSet("TCMALLOC_AGGRESSIVE_DECOMMIT")) {
    heap->SetNumericProperty("tcmalloc.aggressive_memory_decommit", 1);
  }
#else
  // Many threads, small allocations: keep glibc's heap compact.
  if (!EnvSet("MALLOC_ARENA_MAX")) mallopt(M_ARENA_MAX, 2);
#endif
}

std::string HeapDescription() {
#ifdef VT_TCMALLOC
  return absl::StrCat("tcmalloc, thread caches ",
                      Property("tcmalloc.max_total_thread_cache_bytes") >> 10,
                      " KiB in all, freed pages returned ",
                      Property("tcmalloc.aggressive_memory_decommit") != 0 ? "at once" : "gradually");
#else
  return EnvSet("MALLOC_ARENA_MAX") ? "the system malloc, MALLOC_ARENA_MAX from the environment"
                                    : "the system malloc, 2 arenas";
#endif
}

}  // namespace videotask
