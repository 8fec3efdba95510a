using Microsoft.Extensions.Logging;

namespace Kawa.Dataflow;

internal static partial class BatchingLog
{
    [LoggerMessage(EventId = 3001, Level = LogLevel.Warning, Message = "Stage {Stage}: flush of {Count} message(s) failed on attempt {Attempt}; retrying in {Delay}")]
    public static partial void FlushRetrying(ILogger logger, string stage, int count, int attempt, TimeSpan delay, Exception exception);

    [LoggerMessage(EventId = 3002, Level = LogLevel.Error, Message = "Stage {Stage}: flush of {Count} message(s) failed after {Attempts} attempt(s); error handler {Action}")]
    public static partial void FlushFailed(ILogger logger, string stage, int count, int attempts, BatchErrorAction action, Exception exception);

    [LoggerMessage(EventId = 3003, Level = LogLevel.Error, Message = "Stage {Stage}: flush of {Count} message(s) ignored cancellation {Grace} after its {Timeout} timeout; abandoned and negatively acked")]
    public static partial void FlushAbandoned(ILogger logger, string stage, int count, TimeSpan timeout, TimeSpan grace);

    [LoggerMessage(EventId = 3004, Level = LogLevel.Warning, Message = "Stage {Stage}: discarded {Count} message(s) whose flush failed; they were acked without being written")]
    public static partial void BatchDiscarded(ILogger logger, string stage, int count);

    [LoggerMessage(EventId = 3005, Level = LogLevel.Error, Message = "Stage {Stage}: the dead-letter destination failed; {Count} original message(s) negatively acked")]
    public static partial void DeadLetterFailed(ILogger logger, string stage, int count, Exception exception);

    [LoggerMessage(EventId = 3006, Level = LogLevel.Warning, Message = "Stage {Stage}: drain timed out; {Count} unsettled send(s) negatively acked")]
    public static partial void DrainTimedOut(ILogger logger, string stage, int count);

    [LoggerMessage(EventId = 3007, Level = LogLevel.Warning, Message = "Stage {Stage}: {Count} send(s) were still unsettled after the drain (deferred acks never settled?); negatively acked")]
    public static partial void UnsettledAfterDrain(ILogger logger, string stage, int count);

    [LoggerMessage(EventId = 3009, Level = LogLevel.Warning, Message = "Stage {Stage}: a flush held the thread that started it for {Held}; from now on flushes start on the thread pool")]
    public static partial void FlushesOffloaded(ILogger logger, string stage, TimeSpan held);

    [LoggerMessage(EventId = 3008, Level = LogLevel.Error, Message = "Stage {Stage}: completing the flusher during the drain failed")]
    public static partial void CompleteFailed(ILogger logger, string stage, Exception exception);
}
