using System.Diagnostics.Metrics;

namespace Kawa.Dataflow.Nats;

/// <summary>
/// The names under which the NATS client reports (named <c>NatsTelemetry</c> because the core already has
/// <see cref="Kawa.Dataflow.Telemetry"/> in a parent namespace).
/// </summary>
/// <remarks>Subscribe with OpenTelemetry (<c>AddMeter(NatsTelemetry.MeterName)</c>) or a <see cref="MeterListener"/>.
/// Connection state changes are also logged (category <c>Kawa.Dataflow.Nats.Client.NatsConnection</c>).</remarks>
public static class NatsTelemetry
{
    /// <summary>The meter's name.</summary>
    public const string MeterName = "Kawa.Dataflow.Nats";

    internal static readonly Meter Meter = new(MeterName, typeof(NatsTelemetry).Assembly.GetName().Version?.ToString());

    internal static readonly Counter<long> MessagesSent = Meter.CreateCounter<long>("nats.messages.sent", "{message}", "Messages published.");

    internal static readonly Counter<long> MessagesReceived = Meter.CreateCounter<long>("nats.messages.received", "{message}", "Messages received on subscriptions.");

    internal static readonly Counter<long> MessagesDropped = Meter.CreateCounter<long>("nats.messages.dropped", "{message}", "Messages dropped because a subscription's buffer was full (slow consumer).");

    internal static readonly Counter<long> Reconnects = Meter.CreateCounter<long>("nats.connection.reconnects", "{reconnect}", "Successful reconnects.");

    internal static readonly Counter<long> Disconnects = Meter.CreateCounter<long>("nats.connection.disconnects", "{disconnect}", "Connections lost.");

    internal static readonly Counter<long> PullRequests = Meter.CreateCounter<long>("nats.jetstream.pull_requests", "{request}", "JetStream pull requests issued.");

    internal static readonly Counter<long> MissedHeartbeats = Meter.CreateCounter<long>("nats.jetstream.missed_heartbeats", "{event}", "Pulls re-issued because heartbeats stopped.");
}
