using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json;
using Kawa.Dataflow.Parquet.Lake;
using Kawa.Dataflow.Parquet.Writing;
using Microsoft.Extensions.Logging;

namespace Kawa.Dataflow.Parquet.Sink;

/// <summary>
/// The batching sink's flusher behind <see cref="ParquetDestination{T}"/>: appends each flushed batch to the row-group
/// buffer of its partition's open file, writes row groups out, commits files on their limits, and settles the
/// batches' deferred acks when every file holding their rows has committed.
/// </summary>
/// <remarks>All file state is guarded by one lock: flushes (one at a time), age timers and the drain take it.</remarks>
internal sealed partial class ParquetFileFlusher<T> : IBatchFlusher<T>, IAsyncDisposable
{
    /// <summary>Footer key of the schema fingerprint (<see cref="SchemaFingerprint"/>).</summary>
    internal const string FingerprintKey = "kawa.schema.fingerprint";

    /// <summary>Footer key of the lineage: a JSON array of {stream, first, last, rows}.</summary>
    internal const string LineageKey = "kawa.lineage";

    private readonly ParquetDestinationOptions<T> _options;
    private readonly ILakeStorage _storage;
    private readonly PartitionPath<T> _partitioning;
    private readonly IRowFormat<T> _format;
    private readonly LakeFileNamer _namer;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly string _codec;
    private readonly SemaphoreSlim _lock = new(1, 1);
    private readonly Dictionary<string, OpenFile> _open = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<PendingAcks, byte> _held = new();
    private readonly CancellationTokenSource _disposed = new();
    private readonly ITimer? _keepAlive;
    private long _useClock;
    private bool _cleanedUp;
    private long _peakBuffered;
    private readonly Dictionary<string, double> _bytesPerRow = new(StringComparer.Ordinal);

    public ParquetFileFlusher(ParquetDestinationOptions<T> options, IRowFormat<T> format, TimeProvider time, ILoggerFactory loggerFactory)
    {
        _options = options;
        _storage = options.Storage!;
        _partitioning = options.Partitioning;
        _format = format;
        _time = time;
        _logger = loggerFactory.CreateLogger<ParquetDestination<T>>();
        _namer = new LakeFileNamer(_storage.InstanceId, _storage.MaxFileAge, time);
        _codec = options.Compression.ToString().ToLowerInvariant();
        var keepAlive = options.EffectiveKeepAlive;
        if (keepAlive != Timeout.InfiniteTimeSpan)
        {
            _keepAlive = time.CreateTimer(static state => ((ParquetFileFlusher<T>)state!).KeepAlive(), this, keepAlive, keepAlive);
        }
    }

    /// <summary>Bytes held across all open files now: row-group buffers plus what the storage holds for them.</summary>
    public long BufferedBytes
    {
        get
        {
            _lock.Wait();
            try
            {
                return TotalBuffered();
            }
            finally
            {
                _lock.Release();
            }
        }
    }

    /// <summary>The most bytes held across all open files (row-group buffers plus storage buffers) at any point
    /// measured: after each append of a flush's rows and after the budget was enforced.</summary>
    public long PeakBufferedBytes => Interlocked.Read(ref _peakBuffered);

    /// <summary>Open (uncommitted) files now.</summary>
    public int OpenFileCount
    {
        get
        {
            _lock.Wait();
            try
            {
                return _open.Count;
            }
            finally
            {
                _lock.Release();
            }
        }
    }

    public async ValueTask FlushAsync(Batch<T> batch, CancellationToken cancellationToken)
    {
        await _lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        PendingAcks? pending = null;
        try
        {
            pending = new PendingAcks(batch.DeferAcks(), _held);

            // Group by file (partition and schema), keeping first-seen order so files fill in arrival order.
            var groups = new Dictionary<(string Partition, string Fingerprint), Group>();
            var order = new List<Group>();
            Group? last = null;
            foreach (var message in batch.Messages)
            {
                var partition = _partitioning.Evaluate(message);
                var fingerprint = _format.Fingerprint(message, out var prepared);

                // Consecutive messages mostly share their file, and the partition and fingerprint strings are then the
                // same instances (both are cached): no key is built or hashed for them.
                var group = last is not null && ReferenceEquals(last.Partition, partition) && ReferenceEquals(last.Fingerprint, fingerprint)
                    ? last
                    : groups.GetValueOrDefault((partition, fingerprint));
                if (group is null)
                {
                    // Most batches fall in one file: the first group is sized for the whole batch, the rest grow.
                    group = new Group(partition + "\n" + fingerprint, partition, fingerprint, order.Count == 0 ? batch.Messages.Count : 0);
                    groups.Add((partition, fingerprint), group);
                    order.Add(group);
                }

                last = group;
                group.Messages.Add(message);
                group.Prepared.Add(prepared);
            }

            foreach (var whole in order)
            {
                for (var start = 0; start < whole.Messages.Count;)
                {
                    var file = await GetOrOpenAsync(whole, cancellationToken).ConfigureAwait(false);

                    // A file takes rows up to FileMaxRows: a batch larger than the room left is split over files.
                    var group = whole.Slice(start, RowsFor(file, whole.Messages.Count - start));
                    start += group.Messages.Count;

                    // Make room before accepting the rows: the buffers plus this group's estimated size must fit the budget
                    // (the file about to take them is not committed for it).
                    await EnforceBudgetAsync(EstimateBytes(file, group), file, cancellationToken).ConfigureAwait(false);
                    int rowsBefore = file.Writer.BufferedRows;
                    long bytesBefore = file.Writer.BufferedBytes;
                    var written = file.Writer.EstimatedSize - file.Writer.BufferedBytes;
                    try
                    {
                        await file.Writer.WriteAsync(group.Messages, group.Prepared, cancellationToken).ConfigureAwait(false);
                        Learn(group, file, rowsBefore, bytesBefore);
                        RecordPeak(TotalBuffered());
                    }
                    catch (ParquetWriteException ex)
                    {
                        // Bad data: the writer rolled the batch back and the file stays usable; the batch fails.
                        throw new ParquetWriteException($"Rows for lake file '{file.Path}' could not be written: {ex.Message}", ex);
                    }
                    catch (Exception ex)
                    {
                        // A failed or cancelled write may leave the file torn: it is discarded and its batches nacked.
                        var error = await FailFileAsync(file, ex, "written").ConfigureAwait(false);
                        if (ex is OperationCanceledException)
                        {
                            throw;
                        }

                        throw error;
                    }

                    file.Hold(pending!);
                    file.Track(group.Messages);
                    file.LastUsed = ++_useClock;
                    if (_options.FaultPointReached is { } fault)
                    {
                        fault(ParquetFaultPoints.MidBatch);
                        if (file.Writer.EstimatedSize - file.Writer.BufferedBytes > written)
                        {
                            fault(ParquetFaultPoints.AfterRowGroup);
                        }
                    }

                    if (file.Writer.RowCount >= _options.FileMaxRows || file.Writer.EstimatedSize >= _options.FileMaxBytes)
                    {
                        await CommitAsync(file, cancellationToken).ConfigureAwait(false);
                    }
                }
            }

            await EnforceBudgetAsync(0, null, cancellationToken).ConfigureAwait(false);
            pending.Seal();
        }
        catch
        {
            // The sink takes this batch's acks back (retry, then its error handler).
            pending?.Abandon();
            throw;
        }
        finally
        {
            _lock.Release();
        }
    }

    public async ValueTask CompleteAsync(CancellationToken cancellationToken)
    {
        await _lock.WaitAsync(CancellationToken.None).ConfigureAwait(false);
        try
        {
            Exception? first = null;
            foreach (var file in _open.Values.OrderBy(f => f.Opened).ToList())
            {
                if (cancellationToken.IsCancellationRequested)
                {
                    await AbandonAsync(file, "the drain timed out").ConfigureAwait(false);
                    continue;
                }

                try
                {
                    await CommitAsync(file, cancellationToken).ConfigureAwait(false);
                }
                catch (Exception ex)
                {
                    first ??= ex;
                }
            }

            if (first is not null && !cancellationToken.IsCancellationRequested)
            {
                throw first;
            }
        }
        finally
        {
            _lock.Release();
        }
    }

    /// <summary>The source is idle: commit every open file now (their age and size limits notwithstanding), so the
    /// deferred acks settle. A file that fails is removed and its messages negatively acked; the first failure is
    /// thrown after every other file was tried.</summary>
    public async ValueTask CommitHeldAsync(CancellationToken cancellationToken)
    {
        await _lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            Exception? first = null;
            foreach (var file in _open.Values.OrderBy(f => f.Opened).ToList())
            {
                try
                {
                    await CommitAsync(file, cancellationToken).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    first ??= ex;
                }
            }

            if (first is not null)
            {
                throw first;
            }
        }
        finally
        {
            _lock.Release();
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed.IsCancellationRequested)
        {
            return;
        }

        await _disposed.CancelAsync().ConfigureAwait(false);
        if (_keepAlive is not null)
        {
            await _keepAlive.DisposeAsync().ConfigureAwait(false);
        }

        await _lock.WaitAsync().ConfigureAwait(false);
        try
        {
            foreach (var file in _open.Values.ToList())
            {
                await AbandonAsync(file, "the destination was disposed").ConfigureAwait(false);
            }
        }
        finally
        {
            _lock.Release();
        }
    }

    private long TotalBuffered()
    {
        long total = 0;
        foreach (var file in _open.Values)
        {
            total += file.Writer.BufferedBytes + file.StorageBytes;
        }

        return total;
    }

    /// <summary>Runs the storage's startup cleanup once, before the first file (see <see cref="ParquetDestinationOptions{T}.CleanupAtStart"/>).</summary>
    private async ValueTask CleanupOnceAsync(CancellationToken cancellationToken)
    {
        if (_cleanedUp || !_options.CleanupAtStart)
        {
            return;
        }

        try
        {
            var result = await _storage.CleanupAsync(cancellationToken).ConfigureAwait(false);
            LogCleanedUp(_logger, _storage.InstanceId, result.Removed, result.Kept, result.Failed);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // Housekeeping only: leftovers are invisible to readers, and the next start tries again.
            LogCleanupFailed(_logger, ex, _storage.InstanceId);
        }

        _cleanedUp = true;
    }

    private async ValueTask<OpenFile> GetOrOpenAsync(Group group, CancellationToken cancellationToken)
    {
        if (_open.TryGetValue(group.Key, out var existing))
        {
            return existing;
        }

        // A new schema in a partition ends the file of the old schema there.
        foreach (var other in _open.Values.Where(f => f.Partition == group.Partition).ToList())
        {
            LogSchemaChanged(_logger, other.Path);
            await CommitAsync(other, cancellationToken).ConfigureAwait(false);
        }

        while (_open.Count >= _options.MaxOpenFiles)
        {
            var leastRecent = _open.Values.MinBy(f => f.LastUsed)!;
            await CommitAsync(leastRecent, cancellationToken).ConfigureAwait(false);
        }

        await CleanupOnceAsync(cancellationToken).ConfigureAwait(false);
        var first = group.Messages[0];
        var path = _partitioning.PathFor(first, _namer.Next(_codec));
        var lake = await _storage.CreateAsync(path, cancellationToken).ConfigureAwait(false);
        IRowFileWriter<T> writer;
        var writerOptions = _options.WriterOptions();
        writerOptions.KeyValueMetadata[FingerprintKey] = group.Fingerprint;
        try
        {
            writer = _format.Open(lake.Stream, group.Fingerprint, first, writerOptions);
        }
        catch
        {
            await lake.AbortAsync().ConfigureAwait(false);
            throw;
        }

        var file = new OpenFile(group.Key, group.Partition, lake, writer, writerOptions, _time.GetTimestamp());
        if (_options.FileMaxAge != Timeout.InfiniteTimeSpan)
        {
            file.AgeTimer = _time.CreateTimer(static state => { var (self, f) = ((ParquetFileFlusher<T>, OpenFile))state!; _ = self.RollAgedAsync(f); }, (this, file), _options.FileMaxAge, Timeout.InfiniteTimeSpan);
        }

        _open.Add(group.Key, file);
        LogFileOpened(_logger, path);
        return file;
    }

    private async Task RollAgedAsync(OpenFile file)
    {
        try
        {
            await _lock.WaitAsync(_disposed.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return;
        }

        try
        {
            if (_open.TryGetValue(file.Key, out var current) && ReferenceEquals(current, file))
            {
                await CommitAsync(file, _disposed.Token).ConfigureAwait(false);
            }
        }
        catch (Exception ex)
        {
            // The file's messages were negatively acked by CommitAsync; nothing else to do on a timer thread.
            LogAgeRollFailed(_logger, ex, file.Path);
        }
        finally
        {
            _lock.Release();
        }
    }

    /// <summary>How many of <paramref name="wanted"/> rows go into <paramref name="file"/>: what FileMaxRows leaves.</summary>
    private int RowsFor(OpenFile file, int wanted)
    {
        var room = _options.FileMaxRows - file.Writer.RowCount;
        return room > 0 && room < wanted ? (int)room : wanted;
    }

    /// <summary>
    /// The buffered bytes <paramref name="group"/>'s rows will add to <paramref name="file"/>: its row count times the
    /// larger of the file's own bytes per row and what the last append of this schema measured. Zero when nothing
    /// of the schema has been seen yet (the first append is checked afterwards).
    /// </summary>
    private long EstimateBytes(OpenFile file, Group group)
    {
        double perRow = _bytesPerRow.GetValueOrDefault(group.Fingerprint);
        var writer = file.Writer;
        if (writer.BufferedRows > 0)
        {
            perRow = Math.Max(perRow, (double)writer.BufferedBytes / writer.BufferedRows);
        }

        return (long)Math.Ceiling(perRow * group.Messages.Count);
    }

    private void Learn(Group group, OpenFile file, int rowsBefore, long bytesBefore)
    {
        // Only a plain append measures the rows' size (the writer may have cut a row group of its own meanwhile).
        var writer = file.Writer;
        if (writer.BufferedRows == rowsBefore + group.Messages.Count && writer.BufferedBytes > bytesBefore)
        {
            _bytesPerRow[group.Fingerprint] = (double)(writer.BufferedBytes - bytesBefore) / group.Messages.Count;
        }
    }

    /// <summary>
    /// Until the buffers plus <paramref name="reserve"/> bytes fit the budget: writes out the largest buffered row group;
    /// once writing a row group out freed nothing (its bytes only moved into the storage's buffer, an S3 part), or no row
    /// group is left, commits the file (other than <paramref name="keep"/>) holding the most whose storage holds bytes.
    /// Every step empties a row-group buffer or closes a file, so it ends.
    /// </summary>
    private async ValueTask EnforceBudgetAsync(long reserve, OpenFile? keep, CancellationToken cancellationToken)
    {
        var total = TotalBuffered();
        var commitFirst = false;
        while (total + reserve > _options.MemoryBudgetBytes)
        {
            var largest = _open.Values.Where(f => f.Writer.BufferedRows > 0).MaxBy(f => f.Writer.BufferedBytes);
            if (largest is null || commitFirst)
            {
                // Committing a file uploads and frees its part (and its row-group buffer).
                var holder = _open.Values.Where(f => f != keep && f.StorageBytes > 0).MaxBy(f => f.StorageBytes + f.Writer.BufferedBytes);
                if (holder is not null)
                {
                    LogBudgetCommit(_logger, holder.Path, holder.StorageBytes);
                    await CommitAsync(holder, cancellationToken).ConfigureAwait(false);
                    total = TotalBuffered();
                    continue;
                }

                if (largest is null)
                {
                    break;
                }

                commitFirst = false;
            }

            try
            {
                await largest.Writer.FlushRowGroupAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                var error = await FailFileAsync(largest, ex, "written").ConfigureAwait(false);
                if (ex is OperationCanceledException)
                {
                    throw;
                }

                throw error;
            }

            var after = TotalBuffered();
            commitFirst = after >= total;
            total = after;
        }

        RecordPeak(total);
    }

    private void RecordPeak(long total) => HighWaterMark.Raise(ref _peakBuffered, total);

    /// <summary>Writes the footer and commits; then acks what only waited for this file. On failure the file is
    /// removed, its messages are negatively acked, and the error (naming the file) is thrown.</summary>
    private async ValueTask CommitAsync(OpenFile file, CancellationToken cancellationToken)
    {
        _open.Remove(file.Key);
        file.AgeTimer?.Dispose();
        try
        {
            file.WriterOptions.KeyValueMetadata[LineageKey] = file.LineageJson();
            await file.Writer.CompleteAsync(cancellationToken).ConfigureAwait(false);
            _options.FaultPointReached?.Invoke(ParquetFaultPoints.BeforeRename);
            await file.Lake.CommitAsync(cancellationToken).ConfigureAwait(false);
            _options.FaultPointReached?.Invoke(ParquetFaultPoints.AfterRename);
        }
        catch (Exception ex)
        {
            await AbortQuietlyAsync(file).ConfigureAwait(false);
            var held = file.HeldCount;
            file.NackAll();
            if (ex is OperationCanceledException)
            {
                throw;
            }

            var error = ex as LakeWriteException ?? new LakeWriteException(file.Path, LakeWriteFailure.Other, $"Lake file '{file.Path}' could not be committed: {ex.Message}", ex);
            LogFileFailed(_logger, error, file.Path, held);
            throw error;
        }

        await file.Lake.DisposeAsync().ConfigureAwait(false);
        LogFileCommitted(_logger, file.Path, file.Writer.RowCount, file.Lake.BytesWritten);
        file.CommitAll();
    }

    private async ValueTask<Exception> FailFileAsync(OpenFile file, Exception error, string operation)
    {
        _open.Remove(file.Key);
        file.AgeTimer?.Dispose();
        await AbortQuietlyAsync(file).ConfigureAwait(false);
        var held = file.HeldCount;
        file.NackAll();
        var wrapped = error as LakeWriteException ?? new LakeWriteException(file.Path, LakeWriteFailure.Other, $"Lake file '{file.Path}' could not be {operation}: {error.Message}", error);
        LogFileFailed(_logger, wrapped, file.Path, held);
        return wrapped;
    }

    private async ValueTask AbandonAsync(OpenFile file, string reason)
    {
        _open.Remove(file.Key);
        file.AgeTimer?.Dispose();
        await AbortQuietlyAsync(file).ConfigureAwait(false);
        LogFileAbandoned(_logger, file.Path, reason, file.HeldCount);
        file.NackAll();
    }

    private async ValueTask AbortQuietlyAsync(OpenFile file)
    {
        try
        {
            await file.Lake.AbortAsync().ConfigureAwait(false);
            await file.Lake.DisposeAsync().ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            LogAbortFailed(_logger, ex, file.Path);
        }
    }

    private void KeepAlive()
    {
        foreach (var pending in _held.Keys)
        {
            pending.Acks.InProgress();
        }
    }

    [LoggerMessage(EventId = 3101, Level = LogLevel.Debug, Message = "Parquet sink opened {RelativePath}")]
    private static partial void LogFileOpened(ILogger logger, string relativePath);

    [LoggerMessage(EventId = 3102, Level = LogLevel.Information, Message = "Parquet sink committed {RelativePath}: {Rows} rows, {Bytes} bytes")]
    private static partial void LogFileCommitted(ILogger logger, string relativePath, long rows, long bytes);

    [LoggerMessage(EventId = 3103, Level = LogLevel.Error, Message = "Parquet sink file {RelativePath} failed; {Batches} batches negatively acked")]
    private static partial void LogFileFailed(ILogger logger, Exception error, string relativePath, int batches);

    [LoggerMessage(EventId = 3104, Level = LogLevel.Warning, Message = "Parquet sink aborted {RelativePath} ({Reason}); {Batches} batches negatively acked")]
    private static partial void LogFileAbandoned(ILogger logger, string relativePath, string reason, int batches);

    [LoggerMessage(EventId = 3105, Level = LogLevel.Warning, Message = "Parquet sink could not abort {RelativePath}")]
    private static partial void LogAbortFailed(ILogger logger, Exception error, string relativePath);

    [LoggerMessage(EventId = 3106, Level = LogLevel.Error, Message = "Parquet sink could not commit {RelativePath} at its age limit")]
    private static partial void LogAgeRollFailed(ILogger logger, Exception error, string relativePath);

    [LoggerMessage(EventId = 3107, Level = LogLevel.Debug, Message = "Parquet sink schema changed; committing {RelativePath}")]
    private static partial void LogSchemaChanged(ILogger logger, string relativePath);

    [LoggerMessage(EventId = 3108, Level = LogLevel.Debug, Message = "Parquet sink over its memory budget; committing {RelativePath}, whose storage holds {Bytes} bytes")]
    private static partial void LogBudgetCommit(ILogger logger, string relativePath, long bytes);

    [LoggerMessage(EventId = 3109, Level = LogLevel.Information, Message = "Parquet sink startup cleanup of instance '{InstanceId}': {Removed} leftovers removed, {Kept} kept, {Failed} failed")]
    private static partial void LogCleanedUp(ILogger logger, string instanceId, int removed, int kept, int failed);

    [LoggerMessage(EventId = 3110, Level = LogLevel.Warning, Message = "Parquet sink startup cleanup of instance '{InstanceId}' failed; writing goes on")]
    private static partial void LogCleanupFailed(ILogger logger, Exception error, string instanceId);

    private sealed class Group(string key, string partition, string fingerprint, int capacity)
    {
        public string Key { get; } = key;

        public string Partition { get; } = partition;

        public string Fingerprint { get; } = fingerprint;

        public List<Message<T>> Messages { get; } = new(capacity);

        /// <summary>Per message, what the format prepared while finding its fingerprint (so rows are mapped once).</summary>
        public List<object?> Prepared { get; } = new(capacity);

        /// <summary>This group, or (only when a file cannot take all of it) a copy of <paramref name="count"/> rows from <paramref name="start"/>.</summary>
        public Group Slice(int start, int count)
        {
            if (start == 0 && count == Messages.Count)
            {
                return this;
            }

            var slice = new Group(Key, Partition, Fingerprint, count);
            slice.Messages.AddRange(Messages.GetRange(start, count));
            slice.Prepared.AddRange(Prepared.GetRange(start, count));
            return slice;
        }
    }

    /// <summary>One open file: its lake handle, its format writer, the batches waiting for it, its lineage.</summary>
    private sealed class OpenFile(string key, string partition, ILakeFile lake, IRowFileWriter<T> writer, ParquetWriterOptions writerOptions, long opened)
    {
        private readonly HashSet<PendingAcks> _held = [];
        private readonly Dictionary<string, (ulong First, ulong Last, long Rows)> _lineage = new(StringComparer.Ordinal);

        public string Key { get; } = key;

        public string Partition { get; } = partition;

        public ILakeFile Lake { get; } = lake;

        public string Path => Lake.RelativePath;

        public IRowFileWriter<T> Writer { get; } = writer;

        /// <summary>Bytes the storage holds in memory for this file (an S3 part not yet uploaded); 0 for storages that do not report it.</summary>
        public long StorageBytes => Lake is IBufferingLakeFile buffering ? buffering.BufferedBytes : 0;

        public ParquetWriterOptions WriterOptions { get; } = writerOptions;

        public long Opened { get; } = opened;

        public long LastUsed { get; set; }

        public ITimer? AgeTimer { get; set; }

        public int HeldCount => _held.Count;

        public void Hold(PendingAcks pending)
        {
            if (_held.Add(pending))
            {
                pending.AddFile();
            }
        }

        public void Track(List<Message<T>> messages)
        {
            foreach (var message in messages)
            {
                if (message.Attributes.TryGet(MessageAttributeKeys.Stream, out var stream) && message.Attributes.TryGet(MessageAttributeKeys.StreamSequence, out var sequence))
                {
                    _lineage[stream] = _lineage.TryGetValue(stream, out var range)
                        ? (Math.Min(range.First, sequence), Math.Max(range.Last, sequence), range.Rows + 1)
                        : (sequence, sequence, 1);
                }
            }
        }

        public string LineageJson()
        {
            var buffer = new System.Buffers.ArrayBufferWriter<byte>();
            using (var json = new Utf8JsonWriter(buffer))
            {
                json.WriteStartArray();
                foreach (var (stream, range) in _lineage.OrderBy(kv => kv.Key, StringComparer.Ordinal))
                {
                    json.WriteStartObject();
                    json.WriteString("stream", stream);
                    json.WriteNumber("first", range.First);
                    json.WriteNumber("last", range.Last);
                    json.WriteNumber("rows", range.Rows);
                    json.WriteEndObject();
                }

                json.WriteEndArray();
            }

            return System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan);
        }

        public void CommitAll()
        {
            foreach (var pending in _held)
            {
                pending.FileCommitted();
            }

            _held.Clear();
        }

        public void NackAll()
        {
            foreach (var pending in _held)
            {
                pending.FileFailed();
            }

            _held.Clear();
        }

        public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Path} ({Writer.RowCount} rows)");
    }

    /// <summary>One batch's deferred acks and the files holding its rows: acked when the last of them commits, negatively
    /// acked as soon as one of them fails.</summary>
    private sealed class PendingAcks
    {
        private readonly ConcurrentDictionary<PendingAcks, byte> _registry;
        private int _files;
        private bool _sealed;
        private bool _failed;

        public PendingAcks(DeferredAcks acks, ConcurrentDictionary<PendingAcks, byte> registry)
        {
            Acks = acks;
            _registry = registry;
            registry.TryAdd(this, 0);
        }

        public DeferredAcks Acks { get; }

        // All calls happen under the flusher's lock.
        public void AddFile() => _files++;

        public void Seal()
        {
            _sealed = true;
            TryFinish();
        }

        public void FileCommitted()
        {
            _files--;
            TryFinish();
        }

        public void FileFailed()
        {
            _files--;
            if (!_sealed)
            {
                // Its own flush is still running and is about to throw: the sink takes the acks back and retries.
                _failed = true;
                return;
            }

            if (!_failed)
            {
                _failed = true;
                Acks.Nack();
                _registry.TryRemove(this, out _);
            }
        }

        public void Abandon()
        {
            _failed = true;
            _registry.TryRemove(this, out _);
        }

        private void TryFinish()
        {
            if (_sealed && _files == 0 && !_failed)
            {
                Acks.Ack();
                _registry.TryRemove(this, out _);
            }
        }
    }
}
