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
/// <item>Acks change nothing (files are not moved or deleted); outcomes are only counted
/// (<see cref="Acked"/>, <see cref="NegativelyAcked"/>, <see cref="Terminated"/>).</item>
/// <item>After the last row of the last file, <see cref="Delivery{T}.EndOfStream"/>, on every later call too.</item>
/// <item>Files are listed when the first message is received. A file that cannot be read fails the receive with
/// <see cref="InvalidDataException"/> naming it (fatal for the pipeline).</item>
/// </list>
/// </remarks>
public sealed class ParquetSource<T> : ISource<T>, IAsyncDisposable
{
    private readonly ParquetSourceOptions _options;
    private Queue<string>? _files;
    private ParquetReader? _reader;
    private IAsyncEnumerator<T>? _rows;
    private string _current = "";
    private ulong _index;
    private int _acked;
    private int _nacked;
    private int _terminated;

    /// <summary>Creates the source.</summary>
    /// <param name="options">What to replay.</param>
    /// <exception cref="ArgumentException"><paramref name="options"/> is invalid.</exception>
    public ParquetSource(ParquetSourceOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var problems = options.Validate();
        if (problems.Count > 0)
        {
            throw new ArgumentException("Invalid Parquet source options: " + string.Join(" ", problems), nameof(options));
        }

        _options = options;
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

    /// <inheritdoc/>
    public async ValueTask<Delivery<T>> ReceiveAsync(CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        _files ??= new Queue<string>(ListFiles());
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
                    var attributes = MessageAttributes.CreateBuilder(2)
                        .Set(MessageAttributeKeys.Stream, FullPath(_current))
                        .Set(MessageAttributeKeys.StreamSequence, _index++)
                        .Build();
                    var token = AckToken.Create(Record);
                    return new Delivery<T>(new Message<T>(_rows.Current, Topic: _current, Attributes: attributes), token);
                }

                await CloseAsync().ConfigureAwait(false);
            }

            if (!_files.TryDequeue(out var next))
            {
                return Delivery<T>.EndOfStream;
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

    private void Record(AckOutcome outcome)
    {
        switch (outcome.Kind)
        {
            case AckKind.Ack: Interlocked.Increment(ref _acked); break;
            case AckKind.Terminate: Interlocked.Increment(ref _terminated); break;
            default: Interlocked.Increment(ref _nacked); break;
        }
    }

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
