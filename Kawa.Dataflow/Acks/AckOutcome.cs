namespace Kawa.Dataflow;

/// <summary>The kinds of final outcome a message can have.</summary>
public enum AckKind
{
    /// <summary>Durable: the source may forget the message.</summary>
    Ack = 1,

    /// <summary>Not processed: the source redelivers it, after <see cref="AckOutcome.Delay"/>.</summary>
    Nack = 2,

    /// <summary>Poison: the source never redelivers it.</summary>
    Terminate = 3,
}

/// <summary>A final outcome: its kind and, for a negative ack, the redelivery delay.</summary>
/// <param name="Kind">What became of the message.</param>
/// <param name="Delay">For <see cref="AckKind.Nack"/>, how long the source should wait before redelivering.</param>
public readonly record struct AckOutcome(AckKind Kind, TimeSpan Delay)
{
    /// <summary>The message's outputs are durable.</summary>
    public static AckOutcome Acked => new(AckKind.Ack, TimeSpan.Zero);

    /// <summary>The message must never be redelivered.</summary>
    public static AckOutcome Terminated => new(AckKind.Terminate, TimeSpan.Zero);

    /// <summary>Redeliver after <paramref name="delay"/>.</summary>
    public static AckOutcome Negative(TimeSpan delay = default) => new(AckKind.Nack, delay);
}
