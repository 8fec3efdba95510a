using System.Globalization;
using System.Text.Json;
using Kawa.Dataflow.Cli;
using Kawa.Dataflow.Nats;
using Kawa.Dataflow.Nats.Client;
using Kawa.Dataflow.Nats.JetStream;
using Kawa.Dataflow.Tests.Cli.Commands;
using Kawa.Dataflow.Tests.Nats.Infrastructure;

namespace Kawa.Dataflow.Tests.Cli.EndToEnd;

/// <summary>
/// The main job as the end-to-end tests run it: access-log lines published with <c>kawa publish</c> to a JetStream
/// stream, consumed by <c>kawa run</c> (the config built here) into a Parquet lake, with dead letters in a second lake.
/// </summary>
internal static class LakeJob
{
    /// <summary>The subject the lines are published on.</summary>
    public const string Subject = "access.log";

    /// <summary><c>kawa publish --create-stream</c>: every line of <paramref name="file"/> with a PubAck.</summary>
    public static async Task PublishAsync(string workDirectory, NatsServerProcess server, string stream, string file, string subject = Subject)
    {
        var publish = await KawaProcess.RunAsync(TimeSpan.FromSeconds(120), workDirectory, null,
            "publish", "--url", server.Url, "--subject", subject, "--create-stream", stream, file);
        Assert.That(publish.ExitCode, Is.EqualTo(ExitCodes.Ok), publish.Stderr);
    }

    /// <summary>The durable consumer's state as the server reports it (JetStream API <c>CONSUMER.INFO</c>).</summary>
    public static async Task<ConsumerInfo> ConsumerAsync(NatsServerProcess server, string stream, string durable)
    {
        await using var connection = new NatsConnection(new NatsConnectionOptions { Servers = [server.Url] });
        await connection.ConnectAsync();
        return await new JetStreamContext(connection).GetConsumerAsync(stream, durable);
    }

    /// <summary>Writes the config file for <paramref name="settings"/> into <paramref name="directory"/>; returns its path.</summary>
    public static string WriteConfig(string directory, LakeJobSettings settings, string name = "config.json")
    {
        var path = Path.Combine(directory, name);
        File.WriteAllText(path, Config(settings));
        return path;
    }

    /// <summary>JetStream → parse combined (dead letters to Parquet) → Parquet lake partitioned by UTC day and hour.</summary>
    public static string Config(LakeJobSettings s)
    {
        static string J(string value) => JsonSerializer.Serialize(value);
        static string T(TimeSpan value) => J(value.ToString("c", CultureInfo.InvariantCulture));
        var instance = s.InstanceId is null ? "" : $", \"instanceId\": {J(s.InstanceId)}";
        var rowGroups = s.RowGroupRows is null ? "" : $", \"rowGroupRows\": {s.RowGroupRows}";
        return $$"""
            {
              "pipeline": {
                "name": "e2e-lake",
                "source": {
                  "type": "nats-jetstream", "servers": [ {{J(s.ServerUrl)}} ], "stream": {{J(s.Stream)}}, "durable": {{J(s.Durable)}},
                  "ackWait": {{T(s.AckWait)}}, "maxAckPending": {{s.MaxAckPending}}, "prefetch": {{s.Prefetch}}
                },
                "handlers": [
                  { "type": "parse", "name": "parse-combined", "format": "combined", "parallelism": 2, "errorPolicy": { "type": "deadLetter" } }
                ],
                "destination": {
                  "type": "parquet", "path": {{J(s.LakePath)}}, "partitionBy": "dt={ts:yyyy-MM-dd}/hour={ts:HH}",
                  "columns": [
                    { "name": "ts", "type": "timestamp", "nullable": false },
                    { "name": "host" }, { "name": "method" }, { "name": "path" },
                    { "name": "status", "type": "long", "nullable": false }, { "name": "bytes", "type": "long" },
                    { "name": "referrer" }, { "name": "agent" },
                    { "name": "seq", "type": "long", "source": "$sequence" }
                  ],
                  "extraColumn": "_extra", "rollRows": {{s.RollRows}}, "rollAge": {{T(s.RollAge)}}{{instance}}{{rowGroups}}
                },
                "deadLetter": { "type": "parquet", "path": {{J(s.DeadLetterPath)}}, "rollAge": {{T(s.RollAge)}}{{instance}} },
                "limits": { "maxInFlightMessages": {{s.MaxInFlightMessages}}, "drainTimeout": "00:00:30" }
              },
              "metrics": { "port": 0 }
            }
            """;
    }
}

/// <summary>The knobs of <see cref="LakeJob.Config"/>.</summary>
internal sealed record LakeJobSettings(string ServerUrl, string LakePath, string DeadLetterPath)
{
    public string Stream { get; init; } = "ACCESS";

    public string Durable { get; init; } = "e2e-lake";

    // Known limitation while this was written: `kawa run --drain` into Parquet ends only once the last open file
    // reaches its roll age, so the tests use a short one to finish quickly. It must stay below ackWait (validated).
    public TimeSpan RollAge { get; init; } = TimeSpan.FromSeconds(2);

    public TimeSpan AckWait { get; init; } = TimeSpan.FromSeconds(30);

    // At least MaxInFlightMessages + Prefetch: kawa refuses a config where the pipeline could hold more unacked.
    public int MaxAckPending { get; init; } = 30_000;

    public int Prefetch { get; init; } = 256;

    public int MaxInFlightMessages { get; init; } = 20_000;

    public long RollRows { get; init; } = 10_000;

    public string? InstanceId { get; init; }

    public int? RowGroupRows { get; init; }

    /// <summary>
    /// The most messages one process can hold delivered but unacked: the server never lets the consumer have more than
    /// maxAckPending outstanding, and the pipeline never admits more than maxInFlightMessages, with up to prefetch more
    /// requested ahead. Only those can be delivered again after a crash, so each crash adds at most this many duplicate rows.
    /// </summary>
    public int InFlightWindow => Math.Min(MaxAckPending, MaxInFlightMessages + Prefetch);
}
