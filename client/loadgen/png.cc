#include "client/loadgen/png.h"

#include <zlib.h>

#include <algorithm>

namespace videotask::loadgen {
namespace {

constexpr size_t kIdChunkAt = 8 + 25;  // after the signature and IHDR
constexpr size_t kIdDataBytes = 16;

void PutBe32(std::string& out, size_t at, uint32_t v) {
  out[at] = static_cast<char>(v >> 24);
  out[at + 1] = static_cast<char>(v >> 16);
  out[at + 2] = static_cast<char>(v >> 8);
  out[at + 3] = static_cast<char>(v);
}

// Appends a chunk: length, type, data, CRC-32 of type and data.
void AppendChunk(std::string& out, const char type[4], const std::string& data) {
  size_t at = out.size();
  out.resize(at + 12 + data.size());
  PutBe32(out, at, static_cast<uint32_t>(data.size()));
  std::copy(type, type + 4, out.begin() + at + 4);
  std::copy(data.begin(), data.end(), out.begin() + at + 8);
  uLong crc = crc32(0L, reinterpret_cast<const Bytef*>(out.data() + at + 4), 4 + data.size());
  PutBe32(out, at + 8 + data.size(), static_cast<uint32_t>(crc));
}

}  // namespace

std::string MakePng(size_t size, uint64_t id) {
  size = std::max(size, kMinPngBytes);
  std::string out("\x89PNG\r\n\x1a\n", 8);
  std::string ihdr(13, '\0');
  PutBe32(ihdr, 0, 1280);  // width
  PutBe32(ihdr, 4, 720);   // height
  ihdr[8] = 8;             // bit depth
  ihdr[9] = 2;             // truecolour
  AppendChunk(out, "IHDR", ihdr);
  AppendChunk(out, "vtId", std::string(kIdDataBytes, '\0'));
  size_t padding = size - kMinPngBytes;
  std::string pad(padding, '\0');
  uint32_t x = 2463534242u;  // xorshift: incompressible filler
  for (char& c : pad) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    c = static_cast<char>(x);
  }
  AppendChunk(out, "vtPd", pad);
  AppendChunk(out, "IEND", "");
  SetPngId(out, id);
  return out;
}

void SetPngId(std::string& png, uint64_t id) {
  size_t data = kIdChunkAt + 8;
  for (int i = 0; i < 8; ++i) png[data + i] = static_cast<char>(id >> (56 - 8 * i));
  uLong crc = crc32(0L, reinterpret_cast<const Bytef*>(png.data() + kIdChunkAt + 4),
                    4 + kIdDataBytes);
  PutBe32(png, data + kIdDataBytes, static_cast<uint32_t>(crc));
}

}  // namespace videotask::loadgen
