namespace Kawa.Dataflow.Nats.Pipeline;

/// <summary>Which messages a newly created JetStream consumer starts with.</summary>
public enum JetStreamDeliverPolicy
{
    /// <summary>Every message in the stream (the default).</summary>
    All,

    /// <summary>Only messages published after the consumer was created.</summary>
    New,

    /// <summary>The last message of the stream, then everything newer.</summary>
    Last,

    /// <summary>The last message of each subject, then everything newer; needs a filter subject (a wildcard such as
    /// <c>orders.&gt;</c> covers them all).</summary>
    LastPerSubject,

    /// <summary>From <see cref="NatsJetStreamSourceOptions.OptStartSequence"/> (a stream sequence) on.</summary>
    ByStartSequence,

    /// <summary>From the first message stored at or after <see cref="NatsJetStreamSourceOptions.OptStartTime"/> on.</summary>
    ByStartTime,
}

/// <summary>How a JetStream consumer expects acks.</summary>
public enum JetStreamAckPolicy
{
    /// <summary>Each message is acked on its own (the only policy <see cref="NatsJetStreamSource"/> accepts).</summary>
    Explicit,

    /// <summary>Acking one message acks every earlier one: rejected, see <see cref="NatsJetStreamSourceOptions.AckPolicy"/>.</summary>
    All,
}

/// <summary>Options of a <see cref="NatsJetStreamSource"/>: the durable pull consumer and how it is read.</summary>
/// <remarks>Validated once by <see cref="Validate"/>, which lists every problem with its property name.</remarks>
public sealed class NatsJetStreamSourceOptions
{
    /// <summary>The stream to consume (required).</summary>
    public string Stream { get; set; } = string.Empty;

    /// <summary>The durable consumer's name (required). Several processes using the same name share the work.</summary>
    public string Durable { get; set; } = string.Empty;

    /// <summary>Create the consumer if missing, or update it, from these options (default <see langword="true"/>);
    /// <see langword="false"/> binds to an existing consumer and uses its configuration as it is.</summary>
    public bool CreateOrUpdate { get; set; } = true;

    /// <summary>Subjects the consumer filters on; empty (the default) for the whole stream. More than one needs
    /// nats-server 2.10 or later: older servers are refused at start with an error saying so.</summary>
    public IList<string> FilterSubjects { get; } = [];

    /// <summary>Where a new consumer starts; default <see cref="JetStreamDeliverPolicy.All"/>. The server fixes it when the
    /// consumer is created: a durable that already exists keeps its position (and refuses a different policy).</summary>
    public JetStreamDeliverPolicy DeliverPolicy { get; set; } = JetStreamDeliverPolicy.All;

    /// <summary>The stream sequence a <see cref="JetStreamDeliverPolicy.ByStartSequence"/> consumer starts at (at least 1);
    /// required with that policy and refused with any other. Default none.</summary>
    public ulong? OptStartSequence { get; set; }

    /// <summary>The time a <see cref="JetStreamDeliverPolicy.ByStartTime"/> consumer starts at (the first message stored at
    /// or after it); required with that policy and refused with any other. Default none.</summary>
    public DateTimeOffset? OptStartTime { get; set; }

    /// <summary>Must be <see cref="JetStreamAckPolicy.Explicit"/> (the default). <c>AckAll</c> is refused: an ack for one
    /// message acks every earlier one, so when processes share a durable consumer (or a pipeline finishes messages out of
    /// order) one process's ack settles messages another still holds, and they are lost if it crashes.</summary>
    public JetStreamAckPolicy AckPolicy { get; set; } = JetStreamAckPolicy.Explicit;

    /// <summary>How long the server waits for an outcome before redelivering; default 30 s.</summary>
    public TimeSpan AckWait { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Deliveries per message at most, or -1 (the default) for no limit. A message delivered for the last
    /// allowed time carries <see cref="NatsAttributeKeys.LastDelivery"/> = <see langword="true"/>.</summary>
    public long MaxDeliver { get; set; } = -1;

    /// <summary>Messages delivered and not yet acked at most, across every process sharing the consumer; default 20,000:
    /// a pipeline with default limits holds up to 4,096 + 256 (the prefetch it gives the source), so four processes fit. Must be
    /// at least the pipeline's <c>MaxUnsettledMessages</c> plus <see cref="PrefetchMessages"/> (times the number of
    /// processes sharing the durable): see <see cref="NatsJetStreamSource.ValidateAgainst"/>.</summary>
    public long MaxAckPending { get; set; } = 20_000;

    /// <summary>Messages requested from the server ahead of the pipeline (the pull batch); unset by default: the window
    /// follows the pipeline.</summary>
    /// <remarks>
    /// <para>Unset, the source pulls up to 256 messages ahead on its own, and inside a pipeline the smaller of 256 and the
    /// pipeline's <see cref="PipelineOptions.MaxInFlightMessages"/>: the pipeline tells the source its limits when it is
    /// built (<see cref="PipelineDefinition.Build(PipelineOptions?)"/>, the last build wins), and the source sends no pull
    /// before that or its first read. A larger window only holds messages whose ack wait is already running.</para>
    /// <para>Set (at least 1), it is the window whatever the pipeline. The window in use is
    /// <see cref="NatsJetStreamSource.PrefetchMessages"/>; <see cref="NatsJetStreamSource.ValidateAgainst"/> counts it.</para>
    /// </remarks>
    public int? PrefetchMessages { get; set; }

    /// <summary>Byte budget per pull request (subject, reply subject, headers and payload of the messages it delivers);
    /// unset by default: the budget follows the pipeline.</summary>
    /// <remarks>
    /// <para>Unset, pulls have no byte budget on their own; inside a pipeline whose
    /// <see cref="PipelineOptions.MaxInFlightBytes"/> a full pull of the largest messages the server allows could pass,
    /// that limit is the budget, but never less than twice the server's <c>max_payload</c>, so any message fits a pull.
    /// Set, it is the budget whatever the pipeline; 0 means none. With a budget, one pull is open at a time.</para>
    /// <para>A pull ends when the next message does not fit what is left of its budget; the next pull goes out at once.
    /// A message larger than a whole budget can never be delivered: the source then fails (the pipeline stops with the
    /// error) instead of pulling in a loop.</para>
    /// </remarks>
    public long? PrefetchBytes { get; set; }

    /// <summary>How long a pull request stays open on the server; default 30 s.</summary>
    public TimeSpan PullExpires { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Automatic keep-alive: a message still without a final outcome after this fraction of
    /// <see cref="AckWait"/> gets <c>+WPI</c>, and again every such interval until its outcome; default 0.5, 0 disables.</summary>
    public double AutoInProgressFraction { get; set; } = 0.5;

    /// <summary>Drain mode for batch jobs (default <see langword="false"/>): read what the consumer has pending at start,
    /// then end the stream once every message handed out has its final outcome and the consumer has nothing pending or
    /// awaiting an ack (redeliveries after a nack delay included).</summary>
    public bool StopAtEnd { get; set; }

    /// <summary>In drain mode, how often the consumer's state is checked while waiting; default 200 ms.</summary>
    public TimeSpan DrainCheckInterval { get; set; } = TimeSpan.FromMilliseconds(200);

    /// <summary>What <see cref="NatsJetStreamSource{T}"/> does with a payload its codec cannot decode; default
    /// <see cref="NatsDecodeFailure.Terminate"/>. Ignored by the raw-bytes <see cref="NatsJetStreamSource"/>.</summary>
    public NatsDecodeFailure DecodeFailure { get; set; } = NatsDecodeFailure.Terminate;

    /// <summary>Every problem, each naming its property; empty when valid.</summary>
    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (!IsName(Stream))
        {
            errors.Add($"{nameof(Stream)}: required, without spaces, dots or wildcards (was '{Stream}').");
        }

        if (!IsName(Durable))
        {
            errors.Add($"{nameof(Durable)}: required, without spaces, dots or wildcards (was '{Durable}').");
        }

        if (DeliverPolicy == JetStreamDeliverPolicy.ByStartSequence ? OptStartSequence is null or 0 : OptStartSequence is not null)
        {
            errors.Add(DeliverPolicy == JetStreamDeliverPolicy.ByStartSequence
                ? $"{nameof(OptStartSequence)}: required, at least 1, with {nameof(DeliverPolicy)} {nameof(JetStreamDeliverPolicy.ByStartSequence)} (was {OptStartSequence?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "none"})."
                : $"{nameof(OptStartSequence)}: only applies with {nameof(DeliverPolicy)} {nameof(JetStreamDeliverPolicy.ByStartSequence)} (the policy is {DeliverPolicy}).");
        }

        if (DeliverPolicy == JetStreamDeliverPolicy.ByStartTime ? OptStartTime is null : OptStartTime is not null)
        {
            errors.Add(DeliverPolicy == JetStreamDeliverPolicy.ByStartTime
                ? $"{nameof(OptStartTime)}: required with {nameof(DeliverPolicy)} {nameof(JetStreamDeliverPolicy.ByStartTime)}."
                : $"{nameof(OptStartTime)}: only applies with {nameof(DeliverPolicy)} {nameof(JetStreamDeliverPolicy.ByStartTime)} (the policy is {DeliverPolicy}).");
        }

        if (DeliverPolicy == JetStreamDeliverPolicy.LastPerSubject && FilterSubjects.Count == 0)
        {
            errors.Add($"{nameof(FilterSubjects)}: {nameof(DeliverPolicy)} {nameof(JetStreamDeliverPolicy.LastPerSubject)} needs at least one (the server refuses it without; a wildcard such as 'orders.>' covers every subject).");
        }

        if (AckPolicy != JetStreamAckPolicy.Explicit)
        {
            errors.Add($"{nameof(AckPolicy)}: only Explicit is supported. AckAll settles every earlier message with one ack, so when processes share a durable consumer (or messages finish out of order) one process's ack settles messages another still holds, and a crash loses them.");
        }

        if (FilterSubjects.Any(string.IsNullOrWhiteSpace))
        {
            errors.Add($"{nameof(FilterSubjects)}: subjects must not be empty.");
        }

        if (AckWait < TimeSpan.FromMilliseconds(100))
        {
            errors.Add($"{nameof(AckWait)}: must be at least 100 ms (was {AckWait}).");
        }

        if (MaxDeliver is 0 or < -1)
        {
            errors.Add($"{nameof(MaxDeliver)}: must be -1 (no limit) or at least 1 (was {MaxDeliver}).");
        }

        if (MaxAckPending is 0 or < -1)
        {
            errors.Add($"{nameof(MaxAckPending)}: must be -1 (no limit) or at least 1 (was {MaxAckPending}).");
        }

        if (PrefetchMessages is < 1)
        {
            errors.Add($"{nameof(PrefetchMessages)}: must be at least 1 (was {PrefetchMessages}).");
        }

        if (PrefetchBytes is < 0)
        {
            errors.Add($"{nameof(PrefetchBytes)}: must not be negative.");
        }

        if (PullExpires < TimeSpan.FromSeconds(1))
        {
            errors.Add($"{nameof(PullExpires)}: must be at least 1 s (was {PullExpires}).");
        }

        if (AutoInProgressFraction is < 0 or >= 1 || double.IsNaN(AutoInProgressFraction))
        {
            errors.Add($"{nameof(AutoInProgressFraction)}: must be in [0, 1) (was {AutoInProgressFraction}).");
        }

        if (DrainCheckInterval <= TimeSpan.Zero)
        {
            errors.Add($"{nameof(DrainCheckInterval)}: must be positive.");
        }

        if (!Enum.IsDefined(DecodeFailure))
        {
            errors.Add($"{nameof(DecodeFailure)}: unknown value {(int)DecodeFailure}.");
        }

        return errors;
    }

    private static readonly System.Buffers.SearchValues<char> InvalidNameChars = System.Buffers.SearchValues.Create(" \t\r\n.*>");

    private static bool IsName(string? name) => !string.IsNullOrEmpty(name) && name.AsSpan().IndexOfAny(InvalidNameChars) < 0;
}

/// <summary>Attributes the NATS sources add besides <see cref="MessageAttributeKeys"/>.</summary>
public static class NatsAttributeKeys
{
    /// <summary>The JetStream consumer that delivered the message.</summary>
    public static readonly AttributeKey<string> Consumer = new("nats.consumer");

    /// <summary>The same key as <see cref="MessageAttributeKeys.LastDelivery"/>: <see langword="true"/> on the last
    /// delivery the consumer's <c>max_deliver</c> allows, where a nack will not bring the message back. Handler stages
    /// then apply their <see cref="StageOptions.PoisonPolicy"/> (terminate, or dead-letter and terminate).</summary>
    public static readonly AttributeKey<bool> LastDelivery = MessageAttributeKeys.LastDelivery;

    /// <summary>The core NATS reply subject, when the publisher set one.</summary>
    public static readonly AttributeKey<string> ReplyTo = new("nats.reply_to");
}
