using Microsoft.Extensions.Logging;

namespace Kawa.Dataflow;

/// <summary>The pipeline's log messages.</summary>
internal static partial class Log
{
    [LoggerMessage(1, LogLevel.Information, "Pipeline {Pipeline} started (max {MaxInFlight} messages / {MaxInFlightBytes} bytes in flight; stages {Execution}).")]
    public static partial void Started(ILogger logger, string pipeline, int maxInFlight, long maxInFlightBytes, string execution);

    [LoggerMessage(2, LogLevel.Information, "Pipeline {Pipeline} draining: receiving stopped, finishing in-flight work (timeout {DrainTimeout}).")]
    public static partial void Draining(ILogger logger, string pipeline, TimeSpan drainTimeout);

    [LoggerMessage(3, LogLevel.Warning, "Pipeline {Pipeline} drain timed out after {DrainTimeout}: unfinished messages are negatively acked for redelivery.")]
    public static partial void DrainTimedOut(ILogger logger, string pipeline, TimeSpan drainTimeout);

    [LoggerMessage(4, LogLevel.Error, "Pipeline {Pipeline} stage {Stage} failed; stopping and negatively acking unfinished messages.")]
    public static partial void StageFailed(ILogger logger, string pipeline, string stage, Exception exception);

    [LoggerMessage(5, LogLevel.Warning, "Pipeline {Pipeline} stage {Stage} skipped a message after {Attempts} attempt(s) (key {Key}).")]
    public static partial void Skipped(ILogger logger, string pipeline, string stage, int attempts, string? key, Exception exception);

    [LoggerMessage(6, LogLevel.Warning, "Pipeline {Pipeline} stage {Stage} dead-lettering a message after {Attempts} attempt(s) (key {Key}).")]
    public static partial void DeadLettering(ILogger logger, string pipeline, string stage, int attempts, string? key, Exception exception);

    [LoggerMessage(7, LogLevel.Error, "Pipeline {Pipeline} stage {Stage} could not dead-letter a message; it is negatively acked.")]
    public static partial void DeadLetterFailed(ILogger logger, string pipeline, string stage, Exception exception);

    [LoggerMessage(8, LogLevel.Debug, "Pipeline {Pipeline} stage {Stage} retrying in {Delay} (retry {Retry} of {MaxRetries}).")]
    public static partial void Retrying(ILogger logger, string pipeline, string stage, TimeSpan delay, int retry, int maxRetries, Exception exception);

    [LoggerMessage(9, LogLevel.Warning, "Pipeline {Pipeline} stage {Stage} failed on a message; policy {Policy} settles it as {Outcome}.")]
    public static partial void PolicySettled(ILogger logger, string pipeline, string stage, string policy, AckKind outcome, Exception exception);

    [LoggerMessage(10, LogLevel.Warning, "Pipeline {Pipeline} stopped with {Count} message(s) still unsettled by a destination after its flush; the source redelivers them after its ack timeout.")]
    public static partial void LeftUnsettled(ILogger logger, string pipeline, long count);

    [LoggerMessage(13, LogLevel.Warning, "Pipeline {Pipeline} stage {Stage} failed on a message at its last delivery (key {Key}); a negative ack would lose it, so poison policy {Policy} settles it.")]
    public static partial void Poisoned(ILogger logger, string pipeline, string stage, string policy, string? key, Exception exception);

    [LoggerMessage(11, LogLevel.Information, "Pipeline {Pipeline} completed.")]
    public static partial void Completed(ILogger logger, string pipeline);

    [LoggerMessage(12, LogLevel.Debug, "Pipeline {Pipeline} source is idle with {InFlight} message(s) unsettled: destinations commit what they hold.")]
    public static partial void CommittingHeld(ILogger logger, string pipeline, long inFlight);

    [LoggerMessage(14, LogLevel.Debug, "Pipeline {Pipeline} reached its in-flight limit with all {InFlight} unsettled message(s) held by destinations: destinations commit what they hold.")]
    public static partial void CommittingHeldAtLimit(ILogger logger, string pipeline, long inFlight);
}
