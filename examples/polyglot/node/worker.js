#!/usr/bin/env node
// A palm worker in Node.js: serves the function "foo" of a palm master.
//
// Usage: node worker.js [--cacert FILE] [NAME [ADDRESS]]
//        (defaults: worker1 127.0.0.1:5559, plaintext; with --cacert, TLS
//        verifying the master's certificate against the CA in FILE)
//
// It speaks palm.v1.DispatchService.Work (proto/palm/v1/dispatch.proto): one
// bidirectional gRPC stream per worker. The .proto files are read from the
// repository's proto/ directory when the worker starts; nothing is generated
// ahead of time. Node runs one thread, so the one thing that receives (the
// 'data' handler) is also the one thing that sends (call.write).
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { parseArgs } = require('node:util');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const PROTO_DIR = path.join(__dirname, '..', '..', '..', 'proto');
const CREDIT = 1; // how many tasks we hold at once; each finished task earns one back

const { values: flags, positionals } = parseArgs({
  options: { cacert: { type: 'string' } },
  allowPositionals: true,
});
const name = positionals[0] || 'worker1';
const address = positionals[1] || '127.0.0.1:5559';

// The protocol, as plain objects with the .proto's field names (keepCase).
// longs: String keeps the uint64 task ids exact; defaults fills absent fields
// (drain is false, tasks is [], a payload is an empty Buffer, welcome is null).
const definition = protoLoader.loadSync('palm/v1/dispatch.proto', {
  includeDirs: [PROTO_DIR],
  keepCase: true,
  longs: String,
  defaults: true,
});
const { DispatchService } = grpc.loadPackageDefinition(definition).palm.v1;

const credentials = flags.cacert
  ? grpc.credentials.createSsl(fs.readFileSync(flags.cacert))
  : grpc.credentials.createInsecure();
const client = new DispatchService(address, credentials);

// waitForReady: if the master is not up yet, wait for it rather than fail.
const call = client.Work(new grpc.Metadata({ waitForReady: true }));
let welcomed = false; // the master has answered our hello
let leaving = false; // we have half-closed, or are about to

// 1. Hello: our name, the functions we serve (without the "server." prefix,
//    so the master sends us only those) and the first credit.
call.write({ hello: { name, functions: ['foo'] }, credit: CREDIT });

call.on('data', (response) => {
  if (response.welcome) {
    welcomed = true;
    console.log(`${name}: working for ${response.welcome.master}`);
  }
  // 2-4. For each task: one result, then done, and one credit back, all in
  //      one WorkRequest. A result needs only its payload: the master puts
  //      back the task's routing fields.
  const tasks = response.tasks;
  if (tasks.length > 0 && !leaving) {
    call.write({
      results: tasks.map((task) => ({
        task_id: task.id,
        message: { payload: Buffer.concat([Buffer.from(`${name} processed `), task.message.payload]) },
      })),
      done: tasks.map((task) => ({ task_id: task.id })),
      credit: tasks.length,
    });
  }
  // 5. Drain: no new task will come. We hold none (we answer each task as it
  //    comes), so half-close at once; the master then ends the stream.
  if (response.drain) {
    console.log(`${name}: draining`);
    leave();
  }
});

// Half-closing is also how we leave on a signal: the master ends the stream
// and hands any task it sent us meanwhile to another worker. If it does not
// end the stream in time, or has not answered yet, cancel.
function leave() {
  if (leaving) return;
  leaving = true;
  if (!welcomed) {
    call.cancel();
    return;
  }
  call.end();
  setTimeout(() => call.cancel(), 5000).unref();
}
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    console.log(`${name}: ${signal}, leaving`);
    leave();
  });
}

// The stream's end: 'error' for any status but OK, then always 'status'.
call.on('error', (err) => {
  if (!(leaving && err.code === grpc.status.CANCELLED)) {
    console.error(`${name}: stream failed: ${grpc.status[err.code]}: ${err.details}`);
    process.exitCode = 1;
  }
});
call.on('status', () => {
  client.close();
  console.log(`${name}: stopped`);
});
