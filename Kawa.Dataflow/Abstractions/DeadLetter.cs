namespace Kawa.Dataflow;

/// <summary>
/// A message that could not be processed, with why: what a dead-letter destination receives.
/// </summary>
/// <typeparam name="T">The payload type of the original message (for a payload that did not parse, the raw bytes).</typeparam>
/// <remarks>
/// The original message is kept whole, attributes included, so it can be inspected and replayed. The original is
/// acked only after the dead-letter destination made this record durable; if that write fails, the original is not
/// acked (it is negatively acked and comes back).
/// </remarks>
/// <param name="Original">The message as the failing stage received it.</param>
/// <param name="Stage">The stage that failed (<c>handler:&lt;name&gt;</c>, <c>destination</c>).</param>
/// <param name="ErrorType">The exception's full type name (for example <c>Kawa.Dataflow.PayloadFormatException</c>), whichever stage wrote the record.</param>
/// <param name="Reason">The exception's message.</param>
/// <param name="Attempts">How many times the stage tried (retries included).</param>
/// <param name="FailedAt">When the stage gave up (UTC).</param>
public sealed record DeadLetter<T>(Message<T> Original, string Stage, string ErrorType, string Reason, int Attempts, DateTimeOffset FailedAt);
