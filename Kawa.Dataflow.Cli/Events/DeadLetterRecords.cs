namespace Kawa.Dataflow.Cli.Events;

/// <summary>
/// Turns a <see cref="DeadLetter{T}"/> into an ordinary message, so the dead-letter destination can be any daemon
/// destination (Parquet, JetStream, stdout).
/// </summary>
/// <remarks>
/// The message keeps the original's raw payload, key, topic and attributes (subject, sequence, received-at), and gets
/// the fields <c>dead_letter.stage</c>, <c>dead_letter.error_type</c>, <c>dead_letter.reason</c>,
/// <c>dead_letter.attempts</c>, <c>dead_letter.failed_at</c>, followed by the fields the original had when it failed
/// (none if it failed to parse). Replaying means publishing the raw payload again.
/// </remarks>
internal static class DeadLetterRecords
{
    /// <summary>The failing stage.</summary>
    public const string Stage = "dead_letter.stage";

    /// <summary>The exception type.</summary>
    public const string ErrorType = "dead_letter.error_type";

    /// <summary>The exception message.</summary>
    public const string Reason = "dead_letter.reason";

    /// <summary>How many attempts were made.</summary>
    public const string Attempts = "dead_letter.attempts";

    /// <summary>When the stage gave up (UTC).</summary>
    public const string FailedAt = "dead_letter.failed_at";

    /// <summary>The dead-letter columns, in order, for a Parquet dead-letter destination without <c>columns</c>: name, type, source.</summary>
    public static readonly IReadOnlyList<(string Name, string Type, string Source)> DefaultColumns =
    [
        ("received_at", "timestamp", MessageProperties.ReceivedAt),
        ("subject", "string", MessageProperties.Subject),
        ("sequence", "long", MessageProperties.Sequence),
        ("key", "string", MessageProperties.Key),
        ("stage", "string", Stage),
        ("error_type", "string", ErrorType),
        ("reason", "string", Reason),
        ("attempts", "long", Attempts),
        ("failed_at", "timestamp", FailedAt),
        ("payload", "binary", MessageProperties.Raw),
    ];

    /// <summary>The dead letter as a message for a dead-letter destination.</summary>
    public static Message<EventRecord> ToMessage(DeadLetter<EventRecord> deadLetter)
    {
        ArgumentNullException.ThrowIfNull(deadLetter);
        var original = deadLetter.Original.Value;
        var record = new EventRecord(original.Raw, original.Count + 5)
            .Set(Stage, deadLetter.Stage)
            .Set(ErrorType, deadLetter.ErrorType)
            .Set(Reason, deadLetter.Reason)
            .Set(Attempts, (long)deadLetter.Attempts)
            .Set(FailedAt, deadLetter.FailedAt.ToUniversalTime());
        foreach (var (name, value) in original.Fields)
        {
            if (!record.Contains(name))
            {
                record.Set(name, value);
            }
        }

        return deadLetter.Original.With(record);
    }
}
