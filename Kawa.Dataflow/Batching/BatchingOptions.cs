using System.Globalization;

namespace Kawa.Dataflow;

/// <summary>How a <see cref="BatchingDestination{T}"/> groups messages into batches and what it does when a flush fails.</summary>
/// <typeparam name="T">The payload type.</typeparam>
/// <remarks>
/// <para>A batch is flushed when the first of these happens: it holds <see cref="MaxBatchSize"/> messages; adding the
/// next message would take it over <see cref="MaxBatchBytes"/>; <see cref="MaxBatchAge"/> has passed since its
/// <em>first</em> message arrived; or the destination is drained.</para>
/// <para>Validated once, when the destination is built: every problem is reported at once (see <see cref="Validate"/>).</para>
/// </remarks>
public sealed class BatchingOptions<T>
{
    /// <summary>The most messages in one batch. Default 1000.</summary>
    public int MaxBatchSize { get; set; } = 1000;

    /// <summary>The most estimated bytes in one batch, or <see langword="null"/> for no byte limit (the default).
    /// A single message larger than this is flushed alone.</summary>
    public long? MaxBatchBytes { get; set; }

    /// <summary>Estimates a message's size for <see cref="MaxBatchBytes"/>. Default: the
    /// <see cref="MessageAttributeKeys.PayloadSize"/> attribute when present, else the length of a <c>byte[]</c>,
    /// <see cref="ReadOnlyMemory{T}"/> of bytes or UTF-8 string payload. Required when <see cref="MaxBatchBytes"/> is
    /// set and the payload is of another type. May be called from several threads at once.</summary>
    public Func<Message<T>, long>? SizeEstimator { get; set; }

    /// <summary>The longest a batch waits for more messages, counted from its first message. Default 1 second.
    /// <see cref="Timeout.InfiniteTimeSpan"/> flushes only on size or drain.</summary>
    public TimeSpan MaxBatchAge { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>How many batches may be flushed at once. Default 1 (batches are flushed in order).</summary>
    public int FlushParallelism { get; set; } = 1;

    /// <summary>Where each flush runs. Default <see cref="Dataflow.FlushExecution.Auto"/>: on the thread that closed the
    /// batch until the flusher first awaits, and on the thread pool once a flush held that thread for 50 ms or more.</summary>
    public FlushExecution FlushExecution { get; set; } = FlushExecution.Auto;

    /// <summary>How many full batches may wait for a free flush slot, beyond the batch being filled. Default 1.
    /// When they are all taken, <see cref="IDestination{T}.SendAsync"/> waits (backpressure).</summary>
    public int BufferedBatches { get; set; } = 1;

    /// <summary>How long one flush attempt may take before its cancellation token fires. Default 30 seconds;
    /// <see cref="Timeout.InfiniteTimeSpan"/> disables the watchdog.</summary>
    public TimeSpan FlushTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How long a flush attempt has, after its token fired at <see cref="FlushTimeout"/>, to return before the
    /// watchdog abandons it. Default 5 seconds. An abandoned flush (one that ignores cancellation) is not retried, since
    /// it may still be running: its batch is negatively acked and the flush counts as failed.</summary>
    public TimeSpan FlushCancellationGrace { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>How many times a failed flush is retried before <see cref="OnError"/> decides. Default 3 (so 4 attempts).</summary>
    public int MaxRetries { get; set; } = 3;

    /// <summary>The delay before the first retry; each next retry doubles it. Default 100 milliseconds.</summary>
    public TimeSpan RetryBaseDelay { get; set; } = TimeSpan.FromMilliseconds(100);

    /// <summary>The longest delay between retries. Default 10 seconds.</summary>
    public TimeSpan RetryMaxDelay { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Whether retry delays are randomized (between half and all of the computed delay), so that many sinks
    /// failing together do not retry in lockstep. Default <see langword="true"/>.</summary>
    public bool RetryJitter { get; set; } = true;

    /// <summary>Decides whether a flush failure is worth retrying. Default: every exception is. A
    /// <see langword="false"/> goes straight to <see cref="OnError"/>.</summary>
    public Func<Exception, bool>? IsRetryable { get; set; }

    /// <summary>What happens to a batch whose flush failed for good. Default <see cref="BatchErrorHandler{T}.Raise"/> (fatal, as in Kawa).</summary>
    public BatchErrorHandler<T> OnError { get; set; } = BatchErrorHandler<T>.Raise;

    /// <summary>The <c>kawa.stage</c> tag on this sink's metrics and the stage named in dead letters. Default <c>destination</c>.</summary>
    public string StageName { get; set; } = "destination";

    /// <summary>The <c>kawa.pipeline</c> tag on this sink's metrics. Default <see langword="null"/>: the name of the pipeline
    /// the sink is given to, directly or inside a destination built on it (the Parquet and JetStream destinations pass the
    /// name on); none while it is used on its own.</summary>
    public string? PipelineName { get; set; }

    /// <summary>A size estimator that reads the <see cref="MessageAttributeKeys.PayloadSize"/> attribute sources set
    /// (0 when absent): for payload types the default cannot measure.</summary>
    public static Func<Message<T>, long> PayloadSizeAttribute { get; } = static m => m.Attributes.GetOrDefault(MessageAttributeKeys.PayloadSize);

    /// <summary>Checks every setting and returns every problem found, each naming its property; empty when valid.</summary>
    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        void Check(bool ok, string property, string rule, object? value)
        {
            if (!ok)
            {
                errors.Add(string.Create(CultureInfo.InvariantCulture, $"BatchingOptions.{property} {rule} (was {value ?? "null"})."));
            }
        }

        // Timers take at most about 49 days; 24 leaves room for FlushTimeout plus FlushCancellationGrace.
        var longest = TimeSpan.FromDays(24);
        bool PositiveOrInfinite(TimeSpan t) => (t > TimeSpan.Zero && t <= longest) || t == Timeout.InfiniteTimeSpan;

        Check(MaxBatchSize >= 1, nameof(MaxBatchSize), "must be at least 1", MaxBatchSize);
        Check(MaxBatchBytes is null or >= 1, nameof(MaxBatchBytes), "must be at least 1 byte, or null for no limit", MaxBatchBytes);
        Check(
            MaxBatchBytes is null || SizeEstimator is not null || DefaultSizeEstimator<T>.CanEstimate,
            nameof(SizeEstimator),
            $"is required when MaxBatchBytes is set and the payload type is {typeof(T).Name}",
            SizeEstimator);
        Check(PositiveOrInfinite(MaxBatchAge), nameof(MaxBatchAge), "must be positive and at most 24 days, or Timeout.InfiniteTimeSpan", MaxBatchAge);
        Check(FlushParallelism >= 1, nameof(FlushParallelism), "must be at least 1", FlushParallelism);
        Check(Enum.IsDefined(FlushExecution), nameof(FlushExecution), "must be Auto or ThreadPool", FlushExecution);
        Check(BufferedBatches >= 0, nameof(BufferedBatches), "must not be negative", BufferedBatches);
        Check(PositiveOrInfinite(FlushTimeout), nameof(FlushTimeout), "must be positive and at most 24 days, or Timeout.InfiniteTimeSpan", FlushTimeout);
        Check(FlushCancellationGrace >= TimeSpan.Zero && FlushCancellationGrace <= longest, nameof(FlushCancellationGrace), "must be between zero and 24 days", FlushCancellationGrace);
        Check(MaxRetries >= 0, nameof(MaxRetries), "must not be negative", MaxRetries);
        Check(RetryBaseDelay >= TimeSpan.Zero, nameof(RetryBaseDelay), "must not be negative", RetryBaseDelay);
        Check(RetryMaxDelay >= RetryBaseDelay && RetryMaxDelay <= longest, nameof(RetryMaxDelay), "must be at least RetryBaseDelay and at most 24 days", RetryMaxDelay);
        Check(OnError is not null, nameof(OnError), "is required", OnError);
        Check(!string.IsNullOrWhiteSpace(StageName), nameof(StageName), "must not be empty", StageName);
        if ((long)MaxBatchSize * (1 + Math.Max(0, BufferedBatches)) > int.MaxValue)
        {
            errors.Add("BatchingOptions.BufferedBatches times MaxBatchSize must fit in an int (the buffer's capacity in messages).");
        }

        return errors;
    }
}

/// <summary>Where a <see cref="BatchingDestination{T}"/> runs each flush (<see cref="BatchingOptions{T}.FlushExecution"/>).</summary>
/// <remarks>
/// Either way, flushes start in batch order, at most <see cref="BatchingOptions{T}.FlushParallelism"/> at a time, and the
/// watchdog (<see cref="BatchingOptions{T}.FlushTimeout"/>) covers the whole flush: a flush that blocks its thread past
/// the timeout and the grace period is abandoned, its batch negatively acked and its slot freed, even though that
/// thread stays blocked until the flusher returns.
/// </remarks>
public enum FlushExecution
{
    /// <summary>
    /// A flush starts on the thread that closed its batch (inside a pipeline, the worker that sent the batch's last
    /// message; otherwise the caller of <see cref="IDestination{T}.SendAsync"/>, the batch-age timer or the drain) and
    /// runs there until its flusher first awaits something not yet complete; the rest runs wherever that completes. A
    /// flusher that completes at once (an in-memory collector, one that queues and acks later) then costs no thread hop,
    /// and its batch's memory is released at once. Once a flush has held that thread for
    /// <see cref="FlushExecutionLimits.MostHeldMilliseconds"/> ms or more (synchronous I/O, a lock), or past its watchdog,
    /// every later flush of that destination starts on the thread pool instead, and a warning is logged.
    /// </summary>
    Auto = 0,

    /// <summary>Every flush starts on the thread pool, never on a sender's thread: for flushers known to block.</summary>
    ThreadPool = 1,
}

/// <summary>The limit behind <see cref="FlushExecution.Auto"/>.</summary>
public static class FlushExecutionLimits
{
    /// <summary>How long, in milliseconds, a flush may hold the thread that started it before
    /// <see cref="FlushExecution.Auto"/> moves later flushes to the thread pool: 50.</summary>
    public const int MostHeldMilliseconds = 50;

    internal static readonly TimeSpan MostHeld = TimeSpan.FromMilliseconds(MostHeldMilliseconds);
}

/// <summary>The size estimate used when <see cref="BatchingOptions{T}.SizeEstimator"/> is not set.</summary>
internal static class DefaultSizeEstimator<T>
{
    public static bool CanEstimate { get; } =
        typeof(T) == typeof(byte[]) || typeof(T) == typeof(ReadOnlyMemory<byte>) || typeof(T) == typeof(string);

    public static long Estimate(Message<T> message)
    {
        if (message.Attributes.TryGet(MessageAttributeKeys.PayloadSize, out var size))
        {
            return size;
        }

        return message.Value switch
        {
            byte[] bytes => bytes.Length,
            ReadOnlyMemory<byte> memory => memory.Length,
            string text => System.Text.Encoding.UTF8.GetByteCount(text),
            _ => 0,
        };
    }
}
