// Synthetic PNG files of an exact size for load tests: a valid signature,
// IHDR and IEND, a small private "vtId" chunk that makes each copy unique,
// and a private "vtPd" padding chunk up to the requested size.
#ifndef VIDEOTASK_CLIENT_LOADGEN_PNG_H_
#define VIDEOTASK_CLIENT_LOADGEN_PNG_H_

#include <cstddef>
#include <cstdint>
#include <string>

namespace videotask::loadgen {

// The smallest image MakePng can produce.
inline constexpr size_t kMinPngBytes = 8 + 25 + 28 + 12 + 12;

// A PNG of exactly max(size, kMinPngBytes) bytes whose id chunk holds `id`.
std::string MakePng(size_t size, uint64_t id);

// Rewrites the id chunk of an image made by MakePng in place (a few bytes
// and one small CRC), so a new digest costs nothing like a new image.
void SetPngId(std::string& png, uint64_t id);

}  // namespace videotask::loadgen

#endif  // VIDEOTASK_CLIENT_LOADGEN_PNG_H_
