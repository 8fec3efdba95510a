using Microsoft.Extensions.Logging;

namespace Kawa.Dataflow.Parquet.Lake;

internal static partial class LakeLog
{
    [LoggerMessage(EventId = 3001, Level = LogLevel.Information, Message = "Lake cleanup removed leftover {Leftover} (instance '{Owner}', ours '{InstanceId}', last written {LastWrite:o})")]
    public static partial void LeftoverRemoved(ILogger logger, string leftover, string? owner, string instanceId, DateTimeOffset lastWrite);

    [LoggerMessage(EventId = 3002, Level = LogLevel.Debug, Message = "Lake cleanup kept {Leftover}: it belongs to instance '{Owner}' and may still be written")]
    public static partial void LeftoverKept(ILogger logger, string leftover, string? owner);

    [LoggerMessage(EventId = 3003, Level = LogLevel.Warning, Message = "Lake cleanup could not remove leftover {Leftover}")]
    public static partial void LeftoverRemoveFailed(ILogger logger, string leftover, Exception exception);

    [LoggerMessage(EventId = 3004, Level = LogLevel.Warning, Message = "Could not remove the partial data of lake file {RelativePath} ({Temporary}); startup cleanup will retry")]
    public static partial void AbortFailed(ILogger logger, string relativePath, string temporary, Exception exception);

    [LoggerMessage(EventId = 3005, Level = LogLevel.Information, Message = "Lake cleanup for instance '{InstanceId}' finished: {Removed} removed, {Failed} failed, {Kept} kept")]
    public static partial void CleanupFinished(ILogger logger, string instanceId, int removed, int failed, int kept);

    [LoggerMessage(EventId = 3006, Level = LogLevel.Warning, Message = "Lake cleanup could not list pending uploads under '{Prefix}'; abort them with a bucket lifecycle rule instead")]
    public static partial void ListUploadsFailed(ILogger logger, string prefix, Exception exception);

    [LoggerMessage(EventId = 3008, Level = LogLevel.Information, Message = "Lake cleanup aborted pending upload {UploadId} of s3://{Bucket}/{Key} (instance '{Owner}', ours '{InstanceId}', started {Initiated:o})")]
    public static partial void UploadAborted(ILogger logger, string uploadId, string bucket, string key, string? owner, string instanceId, DateTimeOffset initiated);

    [LoggerMessage(EventId = 3009, Level = LogLevel.Warning, Message = "Could not abort pending upload {UploadId} of s3://{Bucket}/{Key}; a bucket lifecycle rule must remove it")]
    public static partial void UploadAbortFailed(ILogger logger, string uploadId, string bucket, string key, Exception exception);

    [LoggerMessage(EventId = 3007, Level = LogLevel.Error, Message = "Lake file {RelativePath} failed: {Failure}")]
    public static partial void WriteFailed(ILogger logger, string relativePath, LakeWriteFailure failure, Exception exception);
}
