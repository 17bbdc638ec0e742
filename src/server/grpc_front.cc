// The gRPC front of the scoring server (src/server/grpc_front.h), on grpc++'s
// synchronous server.
#include "server/grpc_front.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <chrono>
#include <cstdio>
#include <utility>

#include <fmt/core.h>

#include "grpc_predict_v2.grpc.pb.h"
#include "pyfunc/version.h"
#include "server/grpc_codec.h"
#include "server/grpc_errors.h"

namespace pyfunc::server {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

class Service final : public inference::GRPCInferenceService::Service {
 public:
  Service(const GrpcFrontOptions& options, GrpcBackend* backend) : options_(options), backend_(backend) {}

  grpc::Status ServerLive(grpc::ServerContext* ctx, const inference::ServerLiveRequest*,
                          inference::ServerLiveResponse* res) override {
    const Clock::time_point start = Clock::now();
    res->set_live(true);
    return Done(ctx, "ServerLive", start, Status::OK());
  }

  grpc::Status ServerReady(grpc::ServerContext* ctx, const inference::ServerReadyRequest*,
                           inference::ServerReadyResponse* res) override {
    const Clock::time_point start = Clock::now();
    res->set_ready(backend_->Ready());
    return Done(ctx, "ServerReady", start, Status::OK());
  }

  grpc::Status ModelReady(grpc::ServerContext* ctx, const inference::ModelReadyRequest* req,
                          inference::ModelReadyResponse* res) override {
    const Clock::time_point start = Clock::now();
    if (Status st = CheckName(req->name()); !st.ok()) return Done(ctx, "ModelReady", start, st);
    res->set_ready(backend_->Ready());
    return Done(ctx, "ModelReady", start, Status::OK());
  }

  grpc::Status ServerMetadata(grpc::ServerContext* ctx, const inference::ServerMetadataRequest*,
                              inference::ServerMetadataResponse* res) override {
    const Clock::time_point start = Clock::now();
    res->set_name("pyfunc");
    res->set_version(PYFUNC_VERSION);
    return Done(ctx, "ServerMetadata", start, Status::OK());
  }

  grpc::Status ModelMetadata(grpc::ServerContext* ctx, const inference::ModelMetadataRequest* req,
                             inference::ModelMetadataResponse* res) override {
    const Clock::time_point start = Clock::now();
    if (Status st = CheckName(req->name()); !st.ok()) return Done(ctx, "ModelMetadata", start, st);
    res->set_name(backend_->ModelName());
    res->set_platform("mlflow-pyfunc");
    for (const OipTensorMetadata& t : backend_->ModelInputs()) {
      inference::ModelMetadataResponse::TensorMetadata* m = res->add_inputs();
      m->set_name(t.name);
      m->set_datatype(t.datatype);
      for (int64_t d : t.shape) m->add_shape(d);
    }
    return Done(ctx, "ModelMetadata", start, Status::OK());
  }

  grpc::Status ModelInfer(grpc::ServerContext* ctx, const inference::ModelInferRequest* req,
                          inference::ModelInferResponse* res) override {
    const Clock::time_point start = Clock::now();
    // Our timeout, or the client's deadline when it is sooner (its answer would be lost).
    Clock::time_point deadline = start + options_.timeout;
    const std::chrono::system_clock::time_point client = ctx->deadline();
    if (client != std::chrono::system_clock::time_point::max()) {
      deadline = std::min(
          deadline, start + std::chrono::duration_cast<Clock::duration>(client - std::chrono::system_clock::now()));
    }
    if (Status st = CheckName(req->model_name()); !st.ok()) return Done(ctx, "ModelInfer", start, st);
    Metrics& metrics = backend_->ServerMetrics();
    Result<OipRequest> parsed = ParseGrpcInferRequest(*req);
    if (!parsed.ok()) return Done(ctx, "ModelInfer", start, parsed.status());
    metrics.ObserveStage(Stage::kParse, Seconds(Clock::now() - start));
    const std::string id = parsed->id.value_or("");
    Result<Prediction> p = backend_->Infer(std::move(parsed).value(), deadline);
    if (!p.ok()) return Done(ctx, "ModelInfer", start, p.status());
    const Clock::time_point ser_start = Clock::now();
    WriteGrpcInferResponse(backend_->ModelName(), id, *p, res);
    if (!req->model_version().empty()) res->set_model_version(req->model_version());
    metrics.ObserveStage(Stage::kSerialize, Seconds(Clock::now() - ser_start));
    metrics.ObserveStage(Stage::kTotal, Seconds(Clock::now() - start));
    return Done(ctx, "ModelInfer", start, Status::OK());
  }

 private:
  // The one model answers to its name and any version.
  Status CheckName(const std::string& name) {
    if (name == backend_->ModelName()) return Status::OK();
    return Status::NotFound("Model " + name + " not found");
  }

  // Counts the call, logs it, and gives gRPC the status of `st` (grpc_errors.h).
  grpc::Status Done(grpc::ServerContext* ctx, const char* rpc, Clock::time_point start, const Status& st) {
    GrpcError e;
    if (!st.ok()) e = GrpcErrorFromStatus(st);
    const int code = st.ok() ? 0 : static_cast<int>(e.code);
    backend_->ServerMetrics().CountRpc(rpc, GrpcCodeName(code));
    if (options_.access_log) {
      fmt::print(stderr, "{} \"gRPC {}\" {} {:.3f}ms\n", ctx->peer(), rpc, GrpcCodeName(code),
                 Seconds(Clock::now() - start) * 1e3);
    }
    if (st.ok()) return grpc::Status::OK;
    return grpc::Status(static_cast<grpc::StatusCode>(code), e.message);
  }

  GrpcFrontOptions options_;
  GrpcBackend* backend_;
};

class Front final : public GrpcFront {
 public:
  Front(const GrpcFrontOptions& options, GrpcBackend* backend) : service_(options, backend) {}
  ~Front() override { Shutdown(std::chrono::system_clock::now()); }

  Status Start(const GrpcFrontOptions& options) {
    grpc::EnableDefaultHealthCheckService(true);
    grpc::ServerBuilder builder;
    // IPv6 literals are bracketed in gRPC's addresses.
    const std::string host = options.host.find(':') != std::string::npos ? "[" + options.host + "]" : options.host;
    const std::string address = fmt::format("{}:{}", host, options.port);
    builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &port_);
    // gRPC sets SO_REUSEPORT by default: a second server on a taken port would then
    // share it silently instead of failing to bind.
    builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
    builder.SetMaxReceiveMessageSize(static_cast<int>(std::min<size_t>(options.max_message_size, INT32_MAX)));
    builder.SetMaxSendMessageSize(-1);
    grpc::ResourceQuota quota("pyfunc-grpc");
    quota.SetMaxThreads(std::max(2, options.threads));
    builder.SetResourceQuota(quota);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    if (server_ == nullptr || port_ == 0) {
      server_.reset();
      return Status::IOError(fmt::format("gRPC: cannot listen on {}", address));
    }
    SetServing(false);
    return Status::OK();
  }

  int port() const override { return port_; }

  void SetServing(bool serving) override {
    if (server_ != nullptr && server_->GetHealthCheckService() != nullptr)
      server_->GetHealthCheckService()->SetServingStatus(serving);
  }

  void Shutdown(std::chrono::system_clock::time_point deadline) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (server_ == nullptr || shut_down_) return;
    shut_down_ = true;
    SetServing(false);
    server_->Shutdown(deadline);
    server_->Wait();
  }

 private:
  Service service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::mutex mu_;
  bool shut_down_ = false;  // guarded by mu_
};

}  // namespace

bool GrpcFrontAvailable() { return true; }

Result<std::unique_ptr<GrpcFront>> StartGrpcFront(const GrpcFrontOptions& options, GrpcBackend* backend) {
  auto front = std::make_unique<Front>(options, backend);
  PYFUNC_RETURN_IF_ERROR(front->Start(options));
  return std::unique_ptr<GrpcFront>(std::move(front));
}

}  // namespace pyfunc::server
