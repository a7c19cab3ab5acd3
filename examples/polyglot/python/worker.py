#!/usr/bin/env python3
"""A palm worker in Python: serves the function "foo" of a palm master.

Usage: worker.py [--cacert FILE] [NAME [ADDRESS]]   (defaults: worker1 127.0.0.1:5559)

With --cacert, it dials the master over TLS and verifies its certificate
with the CA certificates in FILE.

It speaks palm.v1.DispatchService.Work (proto/palm/v1/dispatch.proto): one
bidirectional gRPC stream per worker. To port it to another language, keep
its shape: one thing sends on the stream (here gRPC's own thread, reading
requests()), one thing receives (the loop in main), and a queue between them.
"""
import argparse
import os
import queue
import sys

import grpc

# The modules generate.sh made: from PYTHONPATH, else from ./gen.
sys.path.append(os.path.join(os.path.dirname(os.path.abspath(__file__)), "gen"))
from palm.v1 import dispatch_pb2, dispatch_pb2_grpc  # noqa: E402

CREDIT = 1  # how many tasks we hold at once; each finished task earns one back


def main(name, address, cacert=None):
    outbox = queue.Queue()  # every WorkRequest we send; None half-closes

    def requests():  # gRPC's sending thread iterates this; it half-closes at None
        while (request := outbox.get()) is not None:
            yield request

    # 1. Hello: our name, the functions we serve (without the "server."
    #    prefix, so the master sends us only those) and the first credit.
    hello = dispatch_pb2.Hello(name=name, functions=["foo"])
    outbox.put(dispatch_pb2.WorkRequest(hello=hello, credit=CREDIT))
    if cacert:
        with open(cacert, "rb") as f:
            channel = grpc.secure_channel(address, grpc.ssl_channel_credentials(root_certificates=f.read()))
    else:
        channel = grpc.insecure_channel(address)
    with channel:
        # wait_for_ready: if the master is not up yet, wait for it rather than fail.
        call = dispatch_pb2_grpc.DispatchServiceStub(channel).Work(requests(), wait_for_ready=True)
        try:
            for response in call:  # ends when the master ends the stream
                if response.HasField("welcome"):
                    print(f"{name}: working for {response.welcome.master}", flush=True)
                # 2-4. For each task: one result (the task's message, new
                # payload, everything else unchanged), then done, and one
                # credit back. All three may share one WorkRequest.
                reply = dispatch_pb2.WorkRequest()
                for task in response.tasks:
                    result = reply.results.add(task_id=task.id, message=task.message)
                    result.message.payload = name.encode("utf-8") + b" processed " + task.message.payload
                    reply.done.add(task_id=task.id)
                    reply.credit += 1
                if response.tasks:
                    outbox.put(reply)
                # 5. Drain: no new task will come. We hold none now (we
                # answer each task as it comes), so half-close at once; the
                # master then ends the stream and the loop above ends.
                if response.drain:
                    print(f"{name}: draining", flush=True)
                    outbox.put(None)
        except KeyboardInterrupt:
            call.cancel()  # Ctrl-C: the master gives the tasks we held to others
        except grpc.RpcError as e:
            print(f"{name}: stream failed: {e.code().name}: {e.details()}", file=sys.stderr)
            return 1
        finally:
            outbox.put(None)  # let requests() return
    print(f"{name}: stopped", flush=True)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="A palm worker serving foo.")
    parser.add_argument("name", nargs="?", default="worker1")
    parser.add_argument("address", nargs="?", default="127.0.0.1:5559")
    parser.add_argument("--cacert", help="CA certificates that verify the master (TLS)")
    args = parser.parse_args()
    try:
        sys.exit(main(args.name, args.address, args.cacert))
    except KeyboardInterrupt:  # Ctrl-C before the stream started
        sys.exit(0)
