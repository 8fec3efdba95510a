// Perf peer: the official NATS JS client running the same workloads as perf/Nats/NatsPerfScenarios.cs.
// usage: node nats-perf.mjs <nats-pubsub|jetstream-publish|jetstream-consume> <url> <messages> <size>
// Prints one JSON line: {"client":"nats.js","scenario":...,"messages":...,"seconds":...}
import { connect } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";

const [scenario, url, countText, sizeText] = process.argv.slice(2);
const count = Number(countText);
const payload = new Uint8Array(Number(sizeText));
const nc = await connect({ servers: url });
const started = process.hrtime.bigint();
const stream = "PERFJS" + Math.floor(Math.random() * 1e9);

if (scenario === "nats-pubsub") {
  const sub = nc.subscribe("perf.js");
  const done = (async () => { let n = 0; for await (const _ of sub) { if (++n === count) break; } })();
  await nc.flush();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < count; i++) nc.publish("perf.js", payload);
  await done;
  report(t0);
} else if (scenario === "jetstream-publish") {
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: stream, subjects: [stream + ".>"] });
  const js = jetstream(nc);
  const t0 = process.hrtime.bigint();
  const window = [];
  for (let i = 0; i < count; i++) {
    window.push(js.publish(stream + ".x", payload));
    if (window.length >= 256) { await Promise.all(window); window.length = 0; }
  }
  await Promise.all(window);
  report(t0);
  await jsm.streams.delete(stream);
} else if (scenario === "jetstream-consume") {
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: stream, subjects: [stream + ".>"] });
  await jsm.consumers.add(stream, { durable_name: "c", ack_policy: "explicit" });
  const js = jetstream(nc);
  const window = [];
  for (let i = 0; i < count; i++) {
    window.push(js.publish(stream + ".x", payload));
    if (window.length >= 256) { await Promise.all(window); window.length = 0; }
  }
  await Promise.all(window);
  const consumer = await js.consumers.get(stream, "c");
  const t0 = process.hrtime.bigint();
  const messages = await consumer.consume({ max_messages: 500 });
  let n = 0;
  for await (const m of messages) { m.ack(); if (++n === count) break; }
  report(t0);
  await jsm.streams.delete(stream);
} else {
  console.error("unknown scenario " + scenario);
  process.exit(2);
}
await nc.close();

function report(t0) {
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log(JSON.stringify({ client: "nats.js", scenario, messages: count, seconds, msgsPerSec: Math.round(count / seconds) }));
}
void started;
