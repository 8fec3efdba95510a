using Kawa.Dataflow.Parquet.Lake;
using Kawa.Dataflow.Parquet.Reading;

namespace Kawa.Dataflow.Parquet.Source;

/// <summary>Settings of a <see cref="ParquetSource{T}"/>.</summary>
public sealed class ParquetSourceOptions
{
    /// <summary>A Parquet file, or a directory whose <c>*.parquet</c> files (recursively) are replayed in ordinal order of
    /// their relative paths. Hidden files and directories (starting with <c>.</c> or <c>_</c>) are skipped, as readers of a
    /// lake do. Required.</summary>
    public string Path { get; set; } = "";

    /// <summary>Which files to replay, from their Hive partition values (<c>key=value</c> directories, unescaped).
    /// Default <see langword="null"/>: all.</summary>
    public Func<IReadOnlyDictionary<string, string?>, bool>? PartitionFilter { get; set; }

    /// <summary>Checks every setting; empty when valid.</summary>
    public IReadOnlyList<string> Validate()
    {
        var problems = new List<string>();
        if (string.IsNullOrWhiteSpace(Path))
        {
            problems.Add("ParquetSourceOptions.Path is required.");
        }
        else if (!File.Exists(Path) && !Directory.Exists(Path))
        {
            problems.Add($"ParquetSourceOptions.Path '{Path}' is neither a file nor a directory.");
        }

        return problems;
    }
}

/// <summary>
/// Replays Parquet files from a lake, row by row: a finite source for backfills, reprocessing and tests.
/// </summary>
/// <typeparam name="T">The row type (a class or record whose properties match the columns).</typeparam>
/// <remarks>
/// <list type="bullet">
/// <item>Each row becomes a message with <see cref="MessageAttributeKeys.Stream"/> = the file's path and
/// <see cref="MessageAttributeKeys.StreamSequence"/> = the row's index in the file (from 0); the message's topic is the
/// file's path relative to <see cref="ParquetSourceOptions.Path"/>.</item>
/// <item>Acks change no file (nothing is moved or deleted); outcomes are counted (<see cref="Acked"/>,
/// <see cref="NegativelyAcked"/>, <see cref="Terminated"/>).</item>
/// <item><b>At-least-once within the run:</b> a negatively acked row is delivered again after its delay (with
/// <see cref="MessageAttributeKeys.DeliveryCount"/> one higher); a terminated row is dropped for good.</item>
/// <item><see cref="Delivery{T}.EndOfStream"/> comes once the last row of the last file is read <em>and</em> every row
/// has its final outcome, so a drain never loses a negatively acked row; then on every later call too. While it waits
/// only for outcomes it returns <see cref="Delivery{T}.Idle"/> once, so a sink holding rows (an open Parquet file)
/// commits them at once.</item>
/// <item>Files are listed when the first message is received. A file that cannot be read fails the receive with
/// <see cref="InvalidDataException"/> naming it (fatal for the pipeline).</item>
/// </list>
/// </remarks>
public sealed class ParquetSource<T> : ISource<T>, IAsyncDisposable
{
    private readonly ParquetSourceOptions _options;
    private readonly TimeProvider _time;
    private readonly Lock _gate = new();
    private readonly PriorityQueue<Row, (DateTimeOffset Due, long Order)> _redeliveries = new();
    private Queue<string>? _files;
    private ParquetReader? _reader;
    private IAsyncEnumerator<T>? _rows;
    private string _current = "";
    private ulong _index;
    private bool _exhausted;
    private bool _idleSignalled;
    private int _outstanding;
    private long _nackOrder;
    private TaskCompletionSource _outcomeArrived = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _acked;
    private int _nacked;
    private int _terminated;

    /// <summary>Creates the source.</summary>
    /// <param name="options">What to replay.</param>
    /// <param name="timeProvider">The clock for redelivery delays; <see cref="TimeProvider.System"/> by default.</param>
    /// <exception cref="ArgumentException"><paramref name="options"/> is invalid.</exception>
    public ParquetSource(ParquetSourceOptions options, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        var problems = options.Validate();
        if (problems.Count > 0)
        {
            throw new ArgumentException("Invalid Parquet source options: " + string.Join(" ", problems), nameof(options));
        }

        _options = options;
        _time = timeProvider ?? TimeProvider.System;
    }

    /// <summary>How many delivered messages were acked.</summary>
    public int Acked => Volatile.Read(ref _acked);

    /// <summary>How many delivered messages were negatively acked.</summary>
    public int NegativelyAcked => Volatile.Read(ref _nacked);

    /// <summary>How many delivered messages were terminated.</summary>
    public int Terminated => Volatile.Read(ref _terminated);

    /// <summary>The files to replay, in order (relative to <see cref="ParquetSourceOptions.Path"/>, <c>/</c>-separated).</summary>
    public IReadOnlyList<string> ListFiles()
    {
        var root = _options.Path;
        if (File.Exists(root))
        {
            return [System.IO.Path.GetFileName(root)];
        }

        return Directory.EnumerateFiles(root, "*.parquet", SearchOption.AllDirectories)
            .Select(f => System.IO.Path.GetRelativePath(root, f).Replace('\\', '/'))
            .Where(rel => rel.Split('/').All(s => !s.StartsWith('.') && !s.StartsWith('_')))
            .Where(rel => _options.PartitionFilter is null || _options.PartitionFilter(PartitionsOf(rel)))
            .Order(StringComparer.Ordinal)
            .ToList();
    }

    /// <summary>The negatively acked rows waiting to be delivered again, by file (relative path) and row index, with when
    /// each is due (for tests and diagnostics).</summary>
    internal IReadOnlyList<(string File, ulong Index, DateTimeOffset Due)> ScheduledRedeliveries
    {
        get
        {
            lock (_gate)
            {
                return [.. _redeliveries.UnorderedItems.OrderBy(r => r.Priority).Select(r => (r.Element.File, r.Element.Index, r.Priority.Due))];
            }
        }
    }

    /// <inheritdoc/>
    public async ValueTask<Delivery<T>> ReceiveAsync(CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        _files ??= new Queue<string>(ListFiles());
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            TimeSpan? wait = null;
            Task outcomeArrived;
            lock (_gate)
            {
                if (_redeliveries.TryPeek(out var due, out var when))
                {
                    var now = _time.GetUtcNow();
                    if (when.Due <= now)
                    {
                        _redeliveries.Dequeue();
                        return Deliver(due with { DeliveryCount = due.DeliveryCount + 1 });
                    }

                    wait = when.Due - now;
                }

                if (_exhausted && _outstanding == 0 && _redeliveries.Count == 0)
                {
                    return Delivery<T>.EndOfStream;
                }

                outcomeArrived = _outcomeArrived.Task;
            }

            if (!_exhausted)
            {
                if (await NextRowAsync(cancellationToken).ConfigureAwait(false) is { } row)
                {
                    lock (_gate)
                    {
                        return Deliver(row);
                    }
                }

                continue;
            }

            if (!_idleSignalled)
            {
                // Only outcomes are awaited now: say so once, so a sink holding rows commits them instead of waiting for
                // its age limit.
                _idleSignalled = true;
                return Delivery<T>.Idle;
            }

            // Every row is read, with tokens in flight or a redelivery not yet due: wait for an outcome or the due time.
            await OutcomeWait.ForOutcomeOrDueAsync(outcomeArrived.WaitAsync, wait, _time, cancellationToken).ConfigureAwait(false);
        }
    }

    // The next row of the files, or null (and _exhausted) after the last row of the last file.
    private async ValueTask<Row?> NextRowAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            if (_rows is not null)
            {
                bool more;
                try
                {
                    more = await _rows.MoveNextAsync().ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    throw new InvalidDataException($"Parquet file '{_current}' could not be read: {ex.Message}", ex);
                }

                if (more)
                {
                    return new Row(_rows.Current, _current, _index++, 1);
                }

                await CloseAsync().ConfigureAwait(false);
            }

            if (!_files!.TryDequeue(out var next))
            {
                _exhausted = true;
                return null;
            }

            _current = next;
            _index = 0;
            try
            {
                _reader = await ParquetReader.OpenAsync(FullPath(next), cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                throw new InvalidDataException($"Parquet file '{next}' could not be opened: {ex.Message}", ex);
            }

            _rows = _reader.ReadAsync<T>(CancellationToken.None).GetAsyncEnumerator(CancellationToken.None);
        }
    }

    // Called under _gate.
    private Delivery<T> Deliver(Row row)
    {
        _outstanding++;
        _idleSignalled = false;
        var attributes = MessageAttributes.CreateBuilder(3)
            .Set(MessageAttributeKeys.Stream, FullPath(row.File))
            .Set(MessageAttributeKeys.StreamSequence, row.Index)
            .Set(MessageAttributeKeys.DeliveryCount, (long)row.DeliveryCount)
            .Build();
        return new Delivery<T>(new Message<T>(row.Value, Topic: row.File, Attributes: attributes), AckToken.Create(outcome => OnOutcome(row, outcome)));
    }

    /// <summary>Closes the file being read.</summary>
    public ValueTask DisposeAsync() => CloseAsync();

    private string FullPath(string relative) => File.Exists(_options.Path) ? _options.Path : System.IO.Path.Combine(_options.Path, relative);

    private async ValueTask CloseAsync()
    {
        if (_rows is not null)
        {
            await _rows.DisposeAsync().ConfigureAwait(false);
            _rows = null;
        }

        if (_reader is not null)
        {
            await _reader.DisposeAsync().ConfigureAwait(false);
            _reader = null;
        }
    }

    private void OnOutcome(Row row, AckOutcome outcome)
    {
        TaskCompletionSource arrived;
        lock (_gate)
        {
            _outstanding--;
            switch (outcome.Kind)
            {
                case AckKind.Ack:
                    _acked++;
                    break;
                case AckKind.Terminate:
                    _terminated++;
                    break;
                default:
                    _nacked++;
                    _redeliveries.Enqueue(row, (_time.GetUtcNow() + outcome.Delay, _nackOrder++));
                    break;
            }

            arrived = _outcomeArrived;
            _outcomeArrived = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        arrived.TrySetResult();
    }

    private sealed record Row(T Value, string File, ulong Index, int DeliveryCount);

    private static Dictionary<string, string?> PartitionsOf(string relativePath)
    {
        var partitions = new Dictionary<string, string?>(StringComparer.Ordinal);
        var segments = relativePath.Split('/');
        foreach (var segment in segments[..^1])
        {
            var eq = segment.IndexOf('=', StringComparison.Ordinal);
            if (eq > 0)
            {
                partitions[PartitionValue.Unescape(segment[..eq]) ?? segment[..eq]] = PartitionValue.Unescape(segment[(eq + 1)..]);
            }
        }

        return partitions;
    }
}
