// make_video SERVER IMAGE PROMPT OUTPUT.mp4: one video from one image.
#include <fstream>
#include <iostream>
#include <sstream>

#include "make_video.h"

int main(int argc, char** argv) {
  if (argc != 5) {
    std::cerr << "usage: make_video HOST:PORT IMAGE PROMPT OUTPUT.mp4\n";
    return 2;
  }
  std::ifstream in(argv[2], std::ios::binary);
  std::stringstream image;
  image << in.rdbuf();
  if (!in) {
    std::cerr << "cannot read " << argv[2] << "\n";
    return 2;
  }
  videotask::ClientOptions options;
  options.target = argv[1];
  std::string error;
  auto client = videotask::Client::Create(options, &error);
  if (client == nullptr) {
    std::cerr << error << "\n";
    return 2;
  }
  std::string video;
  videotask::v1::Task task;
  std::string name = argv[2];
  name = name.substr(name.find_last_of('/') + 1);
  grpc::Status status =
      MakeVideo(*client, image.str(), name, argv[3], std::chrono::minutes(10), &video, &task);
  if (!status.ok()) {
    std::cerr << "task " << task.id() << ": " << status.error_message() << "\n";
    return 1;
  }
  std::ofstream(argv[4], std::ios::binary) << video;
  std::cout << "task " << task.id() << ": " << video.size() << " bytes -> " << argv[4] << "\n";
  return 0;
}
