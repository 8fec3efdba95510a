namespace Kawa.Dataflow;

/// <summary>What a handler stage does with a message whose handler threw.</summary>
/// <remarks>
/// <list type="bullet">
/// <item><see cref="Fatal"/> (the default): the pipeline stops; the message and everything unfinished is negatively acked.</item>
/// <item><see cref="Retry(int, TimeSpan?, TimeSpan?)"/>: calls the handler again after an exponential, jittered back-off,
/// in place: a key-ordered stage keeps that key busy meanwhile, and the source's token gets a keep-alive
/// (<see cref="AckToken.InProgress"/>) before each back-off. When retries run out, the fallback decides
/// (<see cref="RetryErrorPolicy.Then(ErrorPolicy)"/>, fatal unless set).</item>
/// <item><see cref="NegativeAck(TimeSpan)"/>: the source redelivers the message after a delay.</item>
/// <item><see cref="DeadLetter{T}(IDestination{DeadLetter{T}})"/>: writes a <see cref="DeadLetter{T}"/> record; the message is
/// acked only when the dead-letter destination acks that record, and negatively acked if it fails or does not ack.</item>
/// <item><see cref="Skip"/>: the message is acked without output, counted and logged.</item>
/// <item><see cref="Terminate"/>: poison; the source never redelivers it.</item>
/// </list>
/// <para>An <see cref="OperationCanceledException"/> thrown after the pipeline's stop token fired is not a failure:
/// the message is negatively acked whatever the policy.</para>
/// </remarks>
public abstract class ErrorPolicy
{
    private protected ErrorPolicy()
    {
    }

    /// <summary>Stop the pipeline (the default).</summary>
    public static ErrorPolicy Fatal { get; } = new SimplePolicy(ErrorPolicyKind.Fatal, TimeSpan.Zero);

    /// <summary>Ack the message without output; count it in <c>kawa.messages.skipped</c> and log it.</summary>
    public static ErrorPolicy Skip { get; } = new SimplePolicy(ErrorPolicyKind.Skip, TimeSpan.Zero);

    /// <summary>Terminate the message: the source never redelivers it.</summary>
    public static ErrorPolicy Terminate { get; } = new SimplePolicy(ErrorPolicyKind.Terminate, TimeSpan.Zero);

    internal abstract ErrorPolicyKind Kind { get; }

    /// <summary>Negatively ack the message so the source redelivers it after <paramref name="delay"/>.</summary>
    /// <param name="delay">The redelivery delay; zero for at once.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="delay"/> is negative.</exception>
    public static ErrorPolicy NegativeAck(TimeSpan delay = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(delay, TimeSpan.Zero);
        return new SimplePolicy(ErrorPolicyKind.NegativeAck, delay);
    }

    /// <summary>Write the message with its error to <paramref name="destination"/>.</summary>
    /// <typeparam name="T">The failing stage's input type (checked when the pipeline is built).</typeparam>
    /// <param name="destination">The dead-letter destination; it is flushed when the pipeline drains.</param>
    public static ErrorPolicy DeadLetter<T>(IDestination<DeadLetter<T>> destination)
    {
        ArgumentNullException.ThrowIfNull(destination);
        return new DeadLetterErrorPolicy(typeof(T), destination);
    }

    /// <summary>Retry the handler up to <paramref name="maxRetries"/> more times, then apply the fallback (fatal unless set with <see cref="RetryErrorPolicy.Then(ErrorPolicy)"/>).</summary>
    /// <param name="maxRetries">Retries after the first attempt; 0 or more.</param>
    /// <param name="baseDelay">The first back-off; it doubles each retry. Default 100 ms.</param>
    /// <param name="maxDelay">The largest back-off. Default 30 s. At most about 49.7 days (the longest a timer takes): a longer
    /// one is refused when the pipeline is built.</param>
    /// <remarks>Back-off n (1-based) is <c>min(maxDelay, baseDelay × 2^(n-1))</c>, of which a random half is jitter
    /// (the wait is between half and all of it), measured on the pipeline's <see cref="PipelineOptions.TimeProvider"/>.</remarks>
    public static RetryErrorPolicy Retry(int maxRetries, TimeSpan? baseDelay = null, TimeSpan? maxDelay = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxRetries);
        var first = baseDelay ?? TimeSpan.FromMilliseconds(100);
        var max = maxDelay ?? TimeSpan.FromSeconds(30);
        ArgumentOutOfRangeException.ThrowIfLessThan(first, TimeSpan.Zero, nameof(baseDelay));
        ArgumentOutOfRangeException.ThrowIfLessThan(max, first, nameof(maxDelay));
        return new RetryErrorPolicy(maxRetries, first, max, Fatal);
    }

    internal virtual void Validate(string path, Type inputType, List<string> errors)
    {
    }

    private sealed class SimplePolicy(ErrorPolicyKind kind, TimeSpan delay) : ErrorPolicy
    {
        internal override ErrorPolicyKind Kind => kind;

        internal TimeSpan Delay => delay;

        public override string ToString() => kind == ErrorPolicyKind.NegativeAck ? $"NegativeAck({delay})" : kind.ToString();
    }

    internal static TimeSpan NegativeAckDelay(ErrorPolicy policy) => policy is SimplePolicy simple ? simple.Delay : TimeSpan.Zero;
}

/// <summary>A retry policy; <see cref="Then(ErrorPolicy)"/> sets what happens when retries run out.</summary>
public sealed class RetryErrorPolicy : ErrorPolicy
{
    internal RetryErrorPolicy(int maxRetries, TimeSpan baseDelay, TimeSpan maxDelay, ErrorPolicy fallback)
    {
        MaxRetries = maxRetries;
        BaseDelay = baseDelay;
        MaxDelay = maxDelay;
        Fallback = fallback;
    }

    /// <summary>Retries after the first attempt.</summary>
    public int MaxRetries { get; }

    /// <summary>The first back-off.</summary>
    public TimeSpan BaseDelay { get; }

    /// <summary>The largest back-off.</summary>
    public TimeSpan MaxDelay { get; }

    /// <summary>What happens when retries run out.</summary>
    public ErrorPolicy Fallback { get; }

    internal override ErrorPolicyKind Kind => ErrorPolicyKind.Retry;

    /// <summary>The same retries, then <paramref name="fallback"/>.</summary>
    /// <param name="fallback">The policy applied after the last retry failed.</param>
    public RetryErrorPolicy Then(ErrorPolicy fallback)
    {
        ArgumentNullException.ThrowIfNull(fallback);
        return new RetryErrorPolicy(MaxRetries, BaseDelay, MaxDelay, fallback);
    }

    /// <summary>The back-off before retry <paramref name="retry"/> (1-based), jittered with <paramref name="jitter"/> in [0, 1).</summary>
    internal TimeSpan BackOff(int retry, double jitter)
    {
        var exponent = Math.Min(retry - 1, 30);
        var ceiling = Math.Min(MaxDelay.Ticks, BaseDelay.Ticks * (double)(1L << exponent));
        return TimeSpan.FromTicks((long)((ceiling / 2) + (ceiling / 2 * jitter)));
    }

    internal override void Validate(string path, Type inputType, List<string> errors)
    {
        // Checked here, not in Retry(...), so that a bad delay is reported when the pipeline is built, with every other
        // problem, rather than as a Task.Delay failure in the middle of a run.
        if (BaseDelay > TimerLimit.Longest)
        {
            errors.Add($"{path}.{nameof(BaseDelay)} must be at most {TimerLimit.Describe} (was {BaseDelay}).");
        }

        if (MaxDelay > TimerLimit.Longest)
        {
            errors.Add($"{path}.{nameof(MaxDelay)} must be at most {TimerLimit.Describe} (was {MaxDelay}).");
        }

        Fallback.Validate(path + ".Fallback", inputType, errors);
    }

    /// <inheritdoc/>
    public override string ToString() => $"Retry({MaxRetries}).Then({Fallback})";
}

internal sealed class DeadLetterErrorPolicy(Type payloadType, object destination) : ErrorPolicy
{
    internal override ErrorPolicyKind Kind => ErrorPolicyKind.DeadLetter;

    public Type PayloadType => payloadType;

    public object Destination => destination;

    internal override void Validate(string path, Type inputType, List<string> errors)
    {
        if (payloadType != inputType)
        {
            errors.Add($"{path}: the dead-letter destination takes DeadLetter<{payloadType.Name}> but the stage's input is {inputType.Name}.");
        }
    }

    public override string ToString() => "DeadLetter";
}

internal enum ErrorPolicyKind
{
    Fatal,
    Retry,
    NegativeAck,
    DeadLetter,
    Skip,
    Terminate,
}
