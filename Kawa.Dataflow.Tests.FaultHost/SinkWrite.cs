using Kawa.Dataflow.Parquet.Lake;
using Kawa.Dataflow.Parquet.Sink;

namespace Kawa.Dataflow.Tests.FaultHost;

/// <summary>A row of the <c>sink-write</c> command.</summary>
public sealed class SinkRow
{
    /// <summary>The row's number.</summary>
    public long Id { get; set; }
}

internal static partial class Program
{
    /// <summary>
    /// <c>sink-write &lt;root&gt; &lt;instanceId&gt; &lt;ackLog&gt;</c>: runs the startup cleanup, then sends rows 0-4 to partition
    /// <c>p=open</c> and rows 5-24 to <c>p=done</c> through a <see cref="ParquetDestination{T}"/> (files of 10 rows), appending
    /// the id of every acked row to <c>ackLog</c>. With <c>KAWA_FAULT=sink-open</c> it blocks (READY) once rows 5-24 are acked,
    /// while <c>p=open</c>'s file is still open; otherwise it drains and reports.
    /// </summary>
    private static async Task<int> SinkWriteAsync(string root, string instance, string ackLog, string? fault)
    {
        var storage = new LocalLakeStorage(new LocalLakeStorageOptions { RootPath = root, InstanceId = instance });
        var cleanup = await storage.CleanupAsync().ConfigureAwait(false);
        var acked = 0;
        var twentyAcked = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var gate = new Lock();
        await using var destination = new ParquetDestination<SinkRow>(new ParquetDestinationOptions<SinkRow>
        {
            Storage = storage,
            Partitioning = PartitionPath<SinkRow>.Parse("p={key}"),
            FileMaxRows = 10,
            // Far beyond the test (which kills the process) and below the storage's MaxFileAge (1 hour).
            FileMaxAge = TimeSpan.FromMinutes(30),
            // Cleaned above, so the report below counts what this start removed.
            CleanupAtStart = false,
            KeepAliveInterval = Timeout.InfiniteTimeSpan,
            Batching = new BatchingOptions<SinkRow> { MaxBatchSize = 5, MaxBatchAge = Timeout.InfiniteTimeSpan },
        });
        for (var i = 0; i < 25; i++)
        {
            var id = i;
            var token = AckToken.Create(outcome =>
            {
                if (outcome.Kind != AckKind.Ack)
                {
                    return;
                }

                lock (gate)
                {
                    File.AppendAllText(ackLog, id + "\n");
                    if (++acked == 20)
                    {
                        twentyAcked.TrySetResult();
                    }
                }
            });
            await destination.SendAsync(token, new Message<SinkRow>(new SinkRow { Id = id }, Key: id < 5 ? "open" : "done")).ConfigureAwait(false);
        }

        if (fault == "sink-open")
        {
            // Flushes run in order, so once rows 5-24 are acked the batch of rows 0-4 sits in an open file.
            await twentyAcked.Task.ConfigureAwait(false);
            Block(fault, root);
        }

        await destination.FlushAsync().ConfigureAwait(false);
        Emit(new { ok = true, remaining = Remaining(root), cleanup });
        return 0;
    }
}
