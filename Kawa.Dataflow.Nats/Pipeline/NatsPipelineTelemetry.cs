using System.Diagnostics.Metrics;

namespace Kawa.Dataflow.Nats.Pipeline;

/// <summary>Counters of the pipeline adapters, on the <see cref="NatsTelemetry.MeterName"/> meter.</summary>
internal static class NatsPipelineTelemetry
{
    internal static readonly Counter<long> Published = NatsTelemetry.Meter.CreateCounter<long>("nats.jetstream.published", "{message}", "Messages stored by a JetStream destination (PubAck received).");

    internal static readonly Counter<long> Duplicates = NatsTelemetry.Meter.CreateCounter<long>("nats.jetstream.duplicates", "{message}", "PubAcks marked duplicate: the stream already held a message with that Nats-Msg-Id.");

    internal static readonly Counter<long> KeepAlives = NatsTelemetry.Meter.CreateCounter<long>("nats.jetstream.keepalives", "{message}", "Automatic +WPI sent for messages outliving part of the ack wait.");
}
