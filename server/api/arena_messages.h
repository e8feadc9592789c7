// A call's request and reply on one protobuf arena, freed with the call.
//
// A reply that lists many tasks is hundreds of small allocations (strings,
// maps, timestamps) when each lives on the heap, and as many frees when
// the call ends. On an arena they are bump allocations in a few blocks.
// Replies must then be built in place (TaskToProto into the reply): moving
// a heap message into an arena message copies it.
#ifndef VIDEOTASK_SERVER_API_ARENA_MESSAGES_H_
#define VIDEOTASK_SERVER_API_ARENA_MESSAGES_H_

#include <cstddef>

#include <google/protobuf/arena.h>
#include <grpcpp/support/message_allocator.h>

namespace videotask::api {

// Arena blocks: the first fits a small reply; later ones grow to a size
// that holds a page of tasks in a few blocks.
inline constexpr size_t kArenaStartBlockBytes = 4 * 1024;
inline constexpr size_t kArenaMaxBlockBytes = 64 * 1024;

template <typename Request, typename Response>
class ArenaMessageAllocator final : public grpc::MessageAllocator<Request, Response> {
 public:
  grpc::MessageHolder<Request, Response>* AllocateMessages() override { return new Holder(); }

 private:
  class Holder final : public grpc::MessageHolder<Request, Response> {
   public:
    Holder() : arena_(Options()) {
      this->set_request(google::protobuf::Arena::CreateMessage<Request>(&arena_));
      this->set_response(google::protobuf::Arena::CreateMessage<Response>(&arena_));
    }
    void Release() override { delete this; }

   private:
    static google::protobuf::ArenaOptions Options() {
      google::protobuf::ArenaOptions options;
      options.start_block_size = kArenaStartBlockBytes;
      options.max_block_size = kArenaMaxBlockBytes;
      return options;
    }

    google::protobuf::Arena arena_;
  };
};

}  // namespace videotask::api

#endif  // VIDEOTASK_SERVER_API_ARENA_MESSAGES_H_
