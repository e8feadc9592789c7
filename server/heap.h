// The process's heap: which allocator videotaskd runs on and how it is set
// up. The server links tcmalloc (gperftools) unless it is built without it
// (a sanitizer build, cmake -DVT_TCMALLOC=OFF): end to end on the mock it
// costs about a fifth less CPU per task than glibc's malloc, whose arena
// locks and consolidation the server's many threads contend on
// (bench/README.md, "The heap").
#ifndef VIDEOTASK_SERVER_HEAP_H_
#define VIDEOTASK_SERVER_HEAP_H_

#include <string>

namespace videotask {

// Sets the allocator up before the server's threads start: a small cache
// per thread and freed pages handed back to the system at once, so peak
// memory stays near glibc's. The allocator's own environment variables
// (TCMALLOC_MAX_TOTAL_THREAD_CACHE_BYTES, TCMALLOC_AGGRESSIVE_DECOMMIT;
// without tcmalloc, MALLOC_ARENA_MAX) choose instead when set.
void SetUpHeap();

// The allocator and its settings, for the startup log ("tcmalloc, thread
// caches 2 MiB in all, ...").
std::string HeapDescription();

}  // namespace videotask

#endif  // VIDEOTASK_SERVER_HEAP_H_
