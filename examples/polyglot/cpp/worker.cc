// A palm worker in C++: serves the function "foo" of a palm master.
//
// Usage: worker NAME ADDRESS [--cacert FILE]
//
// It speaks palm.v1.DispatchService.Work (proto/palm/v1/dispatch.proto) on
// one bidirectional gRPC stream, with gRPC's synchronous API: the main
// thread reads a response, answers its tasks and writes one request, so one
// thread reads and writes. A second thread only waits for SIGTERM or SIGINT
// and then cancels the stream. With --cacert it speaks TLS and trusts the
// CA certificates in FILE; without, it speaks plaintext.
#include <pthread.h>
#include <signal.h>

#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>

#include <grpcpp/grpcpp.h>

#include "palm/v1/dispatch.grpc.pb.h"

using palm::v1::DispatchService;
using palm::v1::WorkRequest;
using palm::v1::WorkResponse;

// How many tasks we hold at once; each finished task earns one back.
constexpr unsigned kCredit = 1;

// The signals that stop the worker. main blocks them before gRPC starts
// any thread (threads inherit the mask), and a Stopper takes them with
// sigwait, so no signal handler runs: a handler may not call into gRPC.
sigset_t BlockStopSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  return signals;
}

// Stopper cancels a call when the process gets one of the signals, from a
// thread of its own that waits for them.
class Stopper {
 public:
  Stopper(sigset_t signals, grpc::ClientContext* call) : signals_(signals), call_(call) {
    thread_ = std::thread([this] {
      int sig;
      sigwait(&signals_, &sig);
      std::lock_guard<std::mutex> lock(mu_);
      if (call_ != nullptr) {  // the call still runs: stop it
        stopped_ = true;
        call_->TryCancel();
      }
    });
  }

  // Once the call has ended: wake the thread if no signal came, and join it.
  ~Stopper() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      call_ = nullptr;
    }
    pthread_kill(thread_.native_handle(), SIGTERM);  // blocked, so sigwait takes it
    thread_.join();
  }

  // Whether a signal cancelled the call.
  bool stopped() {
    std::lock_guard<std::mutex> lock(mu_);
    return stopped_;
  }

 private:
  sigset_t signals_;
  std::mutex mu_;
  grpc::ClientContext* call_;
  bool stopped_ = false;
  std::thread thread_;
};

int main(int argc, char** argv) {
  sigset_t stop_signals = BlockStopSignals();
  if (argc != 3 && !(argc == 5 && std::strcmp(argv[3], "--cacert") == 0)) {
    std::cerr << "usage: worker NAME ADDRESS [--cacert FILE]" << std::endl;
    return 2;
  }
  const std::string name = argv[1], address = argv[2];

  // Plaintext, or TLS trusting the CA certificates of --cacert. The server's
  // certificate must be valid for the host of ADDRESS.
  std::shared_ptr<grpc::ChannelCredentials> creds = grpc::InsecureChannelCredentials();
  if (argc == 5) {
    std::ifstream file(argv[4]);
    std::stringstream pem;
    pem << file.rdbuf();
    if (!file || pem.str().empty()) {
      std::cerr << name << ": cannot read the CA certificates in " << argv[4] << std::endl;
      return 2;
    }
    grpc::SslCredentialsOptions tls;
    tls.pem_root_certs = pem.str();
    creds = grpc::SslCredentials(tls);
  }

  grpc::ClientContext call;
  call.set_wait_for_ready(true);  // if the master is not up yet, wait for it
  Stopper stopper(stop_signals, &call);
  auto channel = grpc::CreateChannel(address, creds);
  auto stub = DispatchService::NewStub(channel);
  auto stream = stub->Work(&call);

  // 1. Hello: our name, the functions we serve (without the "server."
  //    prefix, so the master sends us only those), and the first credit.
  WorkRequest hello;
  hello.mutable_hello()->set_name(name);
  hello.mutable_hello()->add_functions("foo");
  hello.set_credit(kCredit);
  stream->Write(hello);  // if it fails, so does the Read below

  bool half_closed = false;
  WorkResponse response;
  while (stream->Read(&response)) {  // false once the master ends the stream
    if (response.has_welcome()) {
      std::cout << name << ": working for " << response.welcome().master() << std::endl;
    }
    // 2-4. For each task: one result, then done, and one credit back, all
    // in one WorkRequest. The result needs only its payload: the master
    // takes the routing fields from the task.
    WorkRequest reply;
    for (const auto& task : response.tasks()) {
      auto* result = reply.add_results();
      result->set_task_id(task.id());
      result->mutable_message()->set_payload(name + " processed " + task.message().payload());
      reply.add_done()->set_task_id(task.id());
      reply.set_credit(reply.credit() + 1);
    }
    if (response.tasks_size() > 0 && !half_closed) {  // once half-closed, we can send nothing
      stream->Write(reply);
    }
    // 5. Drain: no new task will come. We hold none now (we answer each
    //    task as it comes), so half-close at once; the master then ends
    //    the stream and Read returns false.
    if (response.drain() && !half_closed) {
      std::cout << name << ": draining" << std::endl;
      stream->WritesDone();
      half_closed = true;
    }
  }
  grpc::Status status = stream->Finish();
  if (!status.ok() && !stopper.stopped()) {
    std::cerr << name << ": stream failed: code " << status.error_code() << ": "
              << status.error_message() << std::endl;
    return 1;
  }
  // Drained (the master ended the stream), or stopped by a signal (we
  // cancelled it, and the master gives the tasks we held to other workers).
  std::cout << name << ": stopped" << std::endl;
  return 0;
}
