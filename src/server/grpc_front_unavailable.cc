// The gRPC front in a build without gRPC (CMake found no grpc++ and protobuf, or
// PYFUNC_WITH_GRPC=OFF): starting it says so.
#include "server/grpc_front.h"

namespace pyfunc::server {

bool GrpcFrontAvailable() { return false; }

Result<std::unique_ptr<GrpcFront>> StartGrpcFront(const GrpcFrontOptions&, GrpcBackend*) {
  return Status::InvalidArgument(
      "--grpc-port: this build of pyfunc has no gRPC (it was built without grpc++ and protobuf; build it where "
      "libgrpc++-dev, libprotobuf-dev, protobuf-compiler and protobuf-compiler-grpc are installed)");
}

}  // namespace pyfunc::server
