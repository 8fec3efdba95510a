// Perf peer: the official NATS JS client running the same workloads as perf/Nats/NatsPerfScenarios.cs.
// usage: node nats-perf.mjs <nats-pubsub|jetstream-publish|jetstream-consume> <url> <messages> <size>
// Runs one round per line read from stdin (so the process is as warm as ours in later rounds), printing one JSON
// line per round: {"client":"nats.js","scenario":...,"messages":...,"seconds":...,"msgsPerSec":...}; exits at EOF.
// The client runs with its documented defaults: consume() without options, publishes awaited in windows of 1,000.
import { createInterface } from "node:readline";
import { connect } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";

const [scenario, url, countText, sizeText] = process.argv.slice(2);
const count = Number(countText);
const payload = new Uint8Array(Number(sizeText));
const nc = await connect({ servers: url });
const jsm = await jetstreamManager(nc);
const js = jetstream(nc);
const rounds = { "nats-pubsub": pubsub, "jetstream-publish": publish, "jetstream-consume": consume };
if (!rounds[scenario]) {
  console.error("unknown scenario " + scenario);
  process.exit(2);
}

let round = 0;
for await (const _ of createInterface({ input: process.stdin })) {
  console.log(JSON.stringify({ client: "nats.js", scenario, messages: count, ...(await rounds[scenario](round++)) }));
}

await nc.close();

async function pubsub(r) {
  const subject = "perf.js." + r;
  const sub = nc.subscribe(subject);
  const done = (async () => { let n = 0; for await (const _ of sub) { if (++n === count) break; } })();
  await nc.flush();
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < count; i++) nc.publish(subject, payload);
  await done;
  return rate(elapsed(t0), cpu0);
}

async function publish(r) {
  const stream = "PERFJSPUB" + r;
  await jsm.streams.add({ name: stream, subjects: [stream + ".>"] });
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await publishWindowed(stream + ".x");
  const result = rate(elapsed(t0), cpu0);
  await jsm.streams.delete(stream);
  return result;
}

async function consume(r) {
  const stream = "PERFJSCON" + r;
  await jsm.streams.add({ name: stream, subjects: [stream + ".>"] });
  await jsm.consumers.add(stream, { durable_name: "c", ack_policy: "explicit" });
  await publishWindowed(stream + ".x");
  const consumer = await js.consumers.get(stream, "c");
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const messages = await consumer.consume();
  let n = 0;
  for await (const m of messages) { m.ack(); if (++n === count) break; }
  const seconds = elapsed(t0);
  const cpu = process.cpuUsage(cpu0);
  // Not timed: every ack reached the server (bounded wait).
  await nc.flush();
  let info = await jsm.consumers.info(stream, "c");
  for (let i = 0; i < 500 && (info.num_ack_pending > 0 || info.num_pending > 0); i++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    info = await jsm.consumers.info(stream, "c");
  }

  await messages.close();
  await jsm.streams.delete(stream);
  return { ...rate(seconds), cpuMicrosPerMsg: (cpu.user + cpu.system) / count, ackPending: info.num_ack_pending, pending: info.num_pending };
}

async function publishWindowed(subject) {
  const window = [];
  for (let i = 0; i < count; i++) {
    window.push(js.publish(subject, payload));
    if (window.length >= 1000) { await Promise.all(window); window.length = 0; }
  }
  await Promise.all(window);
}

function elapsed(t0) {
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

// CPU time (user + system) of this process per message, when cpu0 (process.cpuUsage() at the start) is given.
function rate(seconds, cpu0) {
  const result = { seconds, msgsPerSec: Math.round(count / seconds) };
  if (cpu0) {
    const cpu = process.cpuUsage(cpu0);
    result.cpuMicrosPerMsg = (cpu.user + cpu.system) / count;
  }
  return result;
}
