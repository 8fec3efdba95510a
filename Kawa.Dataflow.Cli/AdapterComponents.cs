using Kawa.Dataflow.Cli.Adapters;
using Kawa.Dataflow.Cli.Configuration;
using Kawa.Dataflow.Cli.Events;
using Kawa.Dataflow.Cli.Templates;
using Kawa.Dataflow.Nats.Pipeline;
using AdapterSourceOptions = Kawa.Dataflow.Nats.Pipeline.NatsJetStreamSourceOptions;

namespace Kawa.Dataflow.Cli;

/// <summary>
/// The seam where the NATS and Parquet adapters plug into the daemon: one method per component type that needs an
/// adapter package. <see cref="DaemonComponents"/> calls these; each one that is not wired yet throws
/// <see cref="NotSupportedException"/>, which <c>kawa run</c> reports as "not available in this build" (exit 6).
/// </summary>
/// <remarks>
/// To plug an adapter in: reference its project from Kawa.Dataflow.Cli.csproj and replace the body of the matching
/// method with the adapter's construction from the validated options (connecting here is fine: a connection failure
/// thrown from these methods is reported as exit 4). Components that need disposing should implement
/// <see cref="IAsyncDisposable"/>; the runner disposes them after the run.
/// </remarks>
internal static class AdapterComponents
{
    /// <summary>The <c>nats-jetstream</c> source (a durable pull consumer); <paramref name="drain"/>: end once caught up (<c>kawa run --drain</c>).</summary>
    public static async Task<ISource<EventRecord>> CreateJetStreamSourceAsync(Configuration.NatsJetStreamSourceOptions options, bool drain, TimeProvider timeProvider, CancellationToken cancellationToken)
    {
        var consumer = new AdapterSourceOptions
        {
            Stream = options.Stream!,
            Durable = options.Durable!,
            DeliverPolicy = DeliverPolicyOf(options.DeliverPolicy),
            OptStartSequence = options.OptStartSeq,
            OptStartTime = options.OptStartTime,
            AckWait = options.AckWait,
            MaxAckPending = options.MaxAckPending,
            PrefetchMessages = options.Prefetch,
            StopAtEnd = drain,
        };
        foreach (var subject in options.FilterSubjects)
        {
            consumer.FilterSubjects.Add(subject);
        }

        var connection = NatsConnectionMapping.From(options, "kawa-" + options.Durable);
        var source = await NatsJetStreamSource.StartAsync(connection, consumer, timeProvider: timeProvider, cancellationToken: cancellationToken).ConfigureAwait(false);
        return new JetStreamEventSource(source);
    }

    /// <summary>The core <c>nats</c> source: a subscription (with an optional queue group), at-most-once; live when this returns.</summary>
    public static async Task<ISource<EventRecord>> CreateNatsSourceAsync(Configuration.NatsSourceOptions options, TimeProvider timeProvider, CancellationToken cancellationToken)
    {
        var subscription = new Kawa.Dataflow.Nats.Pipeline.NatsSourceOptions { Subject = options.Subject!, QueueGroup = options.QueueGroup };
        var connection = NatsConnectionMapping.From(options, "kawa-subscriber");
        var source = await NatsSource.StartAsync(connection, subscription, timeProvider: timeProvider, cancellationToken: cancellationToken).ConfigureAwait(false);
        return new CoreNatsEventSource(source);
    }

    /// <summary>The <c>parquet</c> destination (local directory or S3), acking at each file commit.</summary>
    public static Task<IDestination<EventRecord>> CreateParquetDestinationAsync(ParquetDestinationOptions options, bool deadLetter, TimeProvider timeProvider, Microsoft.Extensions.Logging.ILoggerFactory loggerFactory, CancellationToken cancellationToken)
        => ParquetEventDestination.CreateAsync(options, deadLetter, timeProvider, loggerFactory, cancellationToken);

    /// <summary>The <c>nats-jetstream</c> destination, acking after the stream's publish ack.</summary>
    /// <param name="options">Validated destination options.</param>
    /// <param name="sourceIsJetStream">Whether the pipeline reads a JetStream stream. Only then does a message's stream
    /// and sequence name one stored message for good, so only then is <c>Nats-Msg-Id</c> set (from them) for the target
    /// stream to drop redelivered copies. A file's or stdin's "stream" is its path and its sequence a line number, which
    /// the next run over new input (or a rotated file) reuses: those ids made the target drop new lines as duplicates.</param>
    /// <param name="cancellationToken">Cancels connecting.</param>
    public static async Task<IDestination<EventRecord>> CreateJetStreamDestinationAsync(Configuration.NatsJetStreamDestinationOptions options, bool sourceIsJetStream, CancellationToken cancellationToken)
    {
        var template = FieldTemplate.Parse(options.SubjectTemplate!);
        var destination = new NatsJetStreamDestinationOptions<EventRecord>
        {
            SubjectSelector = SubjectOf(template),
            Serializer = Payload,
            MsgId = sourceIsJetStream ? NatsMsgIdMode.SourceSequence : NatsMsgIdMode.None,
        };
        var connection = NatsConnectionMapping.From(options, "kawa-publisher");
        return await NatsJetStreamDestination<EventRecord>.ConnectAsync(connection, destination, cancellationToken: cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The subject of each record: its <c>subjectTemplate</c> rendered from its fields and, for <c>{$name}</c>, its message properties.</summary>
    internal static Func<Message<EventRecord>, string> SubjectOf(FieldTemplate template)
        => m => template.Render(m.Value, name => MessageProperties.Get(m, name));

    /// <summary>
    /// What the JetStream destination publishes: the record's fields as one JSON object (so parse, filter and field
    /// handlers show downstream), or the raw payload unchanged when no handler produced fields.
    /// </summary>
    internal static ReadOnlyMemory<byte> Payload(EventRecord record)
    {
        if (record.Count == 0)
        {
            return record.Raw;
        }

        var buffer = new System.Buffers.ArrayBufferWriter<byte>(256);
        using (var writer = new System.Text.Json.Utf8JsonWriter(buffer))
        {
            EventRecordJson.Write(writer, record);
        }

        return buffer.WrittenMemory;
    }

    private static JetStreamDeliverPolicy DeliverPolicyOf(string policy) => policy switch
    {
        "all" => JetStreamDeliverPolicy.All,
        "last" => JetStreamDeliverPolicy.Last,
        "new" => JetStreamDeliverPolicy.New,
        "lastPerSubject" => JetStreamDeliverPolicy.LastPerSubject,
        "byStartSequence" => JetStreamDeliverPolicy.ByStartSequence,
        "byStartTime" => JetStreamDeliverPolicy.ByStartTime,
        _ => throw new ArgumentException($"deliverPolicy '{policy}' is unknown (validation lets only all, last, new, lastPerSubject, byStartSequence and byStartTime through)", nameof(policy)),
    };
}
