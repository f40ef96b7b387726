// A real Connect client from another ecosystem (connect-es on Node.js) calling
// ledgerd, driven by tests/connect_node.rs, which asserts what this prints.
//
// Usage: node client.mjs DESCRIPTORS BASE_URL TOKEN PROGRAM
// DESCRIPTORS is the encoded FileDescriptorSet of ledger.v1 and google.rpc: the
// services and messages come from it at run time (createFileRegistry), with no
// generated code, as a client in any language could get them by reflection.

import { readFileSync } from "node:fs";
import { createFileRegistry, fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";

const [descriptors, baseUrl, token, program] = process.argv.slice(2);
const registry = createFileRegistry(fromBinary(FileDescriptorSetSchema, readFileSync(descriptors)));
const bearer = (next) => async (request) => {
  request.header.set("authorization", `Bearer ${token}`);
  return next(request);
};

// The unary calls over HTTP/1.1, in JSON as curl would send them (a Connect
// client's default is protobuf).
const http1 = createConnectTransport({ baseUrl, httpVersion: "1.1", useBinaryFormat: false, interceptors: [bearer] });
const points = createClient(registry.getService("ledger.v1.PointsService"), http1);

const receipt = await points.addPoints({ programId: program, memberId: "node", points: 100n, remark: "from node" });
console.log(`added points=${receipt.points} balance=${receipt.balance}`);

try {
  await points.usePoints({ programId: program, memberId: "node", points: 5000n, remark: "too much" });
  console.log("overspend accepted");
} catch (caught) {
  const error = ConnectError.from(caught);
  const errorInfo = registry.getMessage("google.rpc.ErrorInfo");
  const reasons = error.findDetails(errorInfo).map((info) => info.reason);
  console.log(`refused code=${Code[error.code]} reason=${reasons.join(",")}`);
}

// The server stream over HTTP/2, in JSON: the two events so far, then stop reading.
const http2 = createConnectTransport({ baseUrl, httpVersion: "2", useBinaryFormat: false, interceptors: [bearer] });
const audit = createClient(registry.getService("ledger.v1.AuditService"), http2);
const controller = new AbortController();
const kinds = [];
for await (const event of audit.streamEvents({ fromSequence: 1n, programId: program }, { signal: controller.signal })) {
  kinds.push(`${event.sequence}:${event.memberId || "-"}`);
  if (kinds.length === 2) {
    controller.abort();
    break;
  }
}
console.log(`streamed ${kinds.join(" ")}`);
