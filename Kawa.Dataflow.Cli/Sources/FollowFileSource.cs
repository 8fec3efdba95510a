using System.Security.Cryptography;
using System.Text.Json;
using Kawa.Dataflow.Cli.Events;

namespace Kawa.Dataflow.Cli.Sources;

/// <summary>
/// The <c>file</c> source in <c>follow</c> mode: reads a growing file like <c>tail -F</c> and saves the position up to
/// which every line has its final outcome in an offset file, so a restart resumes there.
/// </summary>
/// <remarks>
/// <list type="bullet">
/// <item><b>At-least-once across restarts:</b> the saved offset is the end of the longest prefix of lines that are all
/// acked or terminated. Lines after the first unsettled one are read again after a restart, even if they were acked.</item>
/// <item><b>Within a run</b> a negatively acked line is delivered again after its delay; the offset does not pass it.</item>
/// <item><b>File identity</b> is a fingerprint of the file's first bytes (up to 256), saved with the offset: a restart
/// against a different file (rotated while stopped) starts that file from the beginning.</item>
/// <item><b>Rotation while running</b> (the path now holds another file) and <b>truncation</b> (shorter than the read
/// position) are noticed at end of file; reading restarts at the beginning of what the path now holds. Lines of the old
/// file not yet read when it was replaced are lost: the same limit as <c>tail -F</c>.</item>
/// <item>The offset file is written atomically (temporary file, flush to disk, rename) from the receive loop at most
/// once per <c>commitInterval</c>, and at dispose; outcome callbacks never do I/O.</item>
/// <item>Never ends on its own: at end of file it polls every <c>pollInterval</c> until cancelled.</item>
/// </list>
/// </remarks>
internal sealed class FollowFileSource : ISource<EventRecord>, IAsyncDisposable
{
    private const int FingerprintMax = 256;

    private readonly string _path;
    private readonly string _offsetFile;
    private readonly TimeProvider _time;
    private readonly TimeSpan _pollInterval;
    private readonly TimeSpan _commitInterval;
    private readonly int _maxLineBytes;
    private readonly Lock _gate = new();
    private readonly LinkedList<Pending> _pending = new(); // in file order, current generation only
    private readonly Queue<(Pending Line, DateTimeOffset Due)> _redeliveries = new();

    private FileStream? _stream;
    private byte[] _buffer = new byte[64 * 1024];
    private int _bufferStart;
    private int _bufferEnd;
    private long _position;      // file offset of _buffer[_bufferStart]
    private long _lineNumber;
    private int _generation;
    private byte[] _fingerprint = [];
    private long _committed;     // offset every earlier line has its final outcome up to
    private long _saved = -1;
    private DateTimeOffset _lastSave;
    private long _acked;
    private long _terminated;

    /// <summary>Creates the source; nothing is opened until the first receive.</summary>
    /// <param name="path">The file to follow (it may not exist yet).</param>
    /// <param name="offsetFile">Where the position is saved.</param>
    /// <param name="timeProvider">The clock for polling, received-at and redelivery delays.</param>
    /// <param name="pollInterval">How often to look for new data at end of file. Default 250 ms.</param>
    /// <param name="commitInterval">How often at most to save the offset. Default 1 s.</param>
    /// <param name="maxLineBytes">The longest line accepted. Default 1 MiB.</param>
    public FollowFileSource(string path, string offsetFile, TimeProvider? timeProvider = null, TimeSpan? pollInterval = null, TimeSpan? commitInterval = null, int maxLineBytes = 1024 * 1024)
    {
        _path = path;
        _offsetFile = offsetFile;
        _time = timeProvider ?? TimeProvider.System;
        _pollInterval = pollInterval ?? TimeSpan.FromMilliseconds(250);
        _commitInterval = commitInterval ?? TimeSpan.FromSeconds(1);
        _maxLineBytes = maxLineBytes;
    }

    /// <summary>The offset up to which every line has its final outcome (what a restart resumes from).</summary>
    public long CommittedOffset
    {
        get
        {
            lock (_gate)
            {
                return _committed;
            }
        }
    }

    /// <summary>Lines acked (for tests and diagnostics).</summary>
    internal long Acked
    {
        get
        {
            lock (_gate)
            {
                return _acked;
            }
        }
    }

    /// <summary>Lines terminated (for tests and diagnostics).</summary>
    internal long Terminated
    {
        get
        {
            lock (_gate)
            {
                return _terminated;
            }
        }
    }

    /// <summary>The negatively acked lines waiting for redelivery, by line number, with when each is due (for tests and
    /// diagnostics).</summary>
    internal IReadOnlyList<(long LineNumber, DateTimeOffset Due)> ScheduledRedeliveries
    {
        get
        {
            lock (_gate)
            {
                return [.. _redeliveries.Select(r => (r.Line.LineNumber, r.Due))];
            }
        }
    }

    /// <inheritdoc/>
    public async ValueTask<Delivery<EventRecord>> ReceiveAsync(CancellationToken cancellationToken = default)
    {
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            SaveOffsetIfDue(force: false);
            lock (_gate)
            {
                if (_redeliveries.TryPeek(out var next) && next.Due <= _time.GetUtcNow())
                {
                    _redeliveries.Dequeue();
                    next.Line.DeliveryCount++;
                    return Deliver(next.Line);
                }
            }

            if (_stream is null && !TryOpen())
            {
                await Task.Delay(_pollInterval, _time, cancellationToken).ConfigureAwait(false);
                continue;
            }

            if (await TryReadLineAsync(cancellationToken).ConfigureAwait(false) is { } line)
            {
                lock (_gate)
                {
                    _pending.AddLast(line);
                    return Deliver(line);
                }
            }

            // End of file: has the path been rotated or truncated?
            if (Replaced())
            {
                Reopen(resumeAt: 0);
                continue;
            }

            await Task.Delay(_pollInterval, _time, cancellationToken).ConfigureAwait(false);
        }
    }

    private Delivery<EventRecord> Deliver(Pending line)
    {
        var message = LineMessage.Create(_path, line.Raw, line.LineNumber, line.DeliveryCount, _time.GetUtcNow());
        return new Delivery<EventRecord>(message, AckToken.Create(outcome => OnOutcome(line, outcome)));
    }

    private void OnOutcome(Pending line, AckOutcome outcome)
    {
        lock (_gate)
        {
            if (outcome.Kind == AckKind.Nack)
            {
                _redeliveries.Enqueue((line, _time.GetUtcNow() + outcome.Delay));
                return;
            }

            if (outcome.Kind == AckKind.Ack)
            {
                _acked++;
            }
            else
            {
                _terminated++;
            }

            line.Done = true;
            if (line.Generation != _generation)
            {
                return;
            }

            while (_pending.First is { } first && first.Value.Done)
            {
                _committed = first.Value.End;
                _pending.RemoveFirst();
            }
        }
    }

    private bool TryOpen()
    {
        if (!File.Exists(_path))
        {
            return false;
        }

        var saved = ReadOffsetFile();
        var stream = Open();
        var fingerprint = Fingerprint(stream, FingerprintMax);
        long resume = 0;
        if (saved is { } s && s.Offset <= stream.Length && fingerprint.AsSpan().StartsWith(s.Fingerprint) && s.Fingerprint.Length > 0)
        {
            resume = s.Offset;
        }

        stream.Dispose();
        Reopen(resume);
        return true;
    }

    private void Reopen(long resumeAt)
    {
        _stream?.Dispose();
        _stream = Open();
        _stream.Position = resumeAt;
        _position = resumeAt;
        _bufferStart = _bufferEnd = 0;
        _lineNumber = 0;
        _fingerprint = Fingerprint(_stream, FingerprintMax);
        _stream.Position = resumeAt;
        lock (_gate)
        {
            _generation++;
            _pending.Clear();
            _committed = resumeAt;
            _saved = -1; // A new file (or generation) must be saved even if the offset number repeats.
        }
    }

    // Whether the path now holds a different file, or ours was truncated below the read position.
    private bool Replaced()
    {
        try
        {
            if (!File.Exists(_path))
            {
                return false; // Removed, not yet recreated: keep the old handle until a new file appears.
            }

            using var current = Open();
            if (current.Length < _position + (_bufferEnd - _bufferStart))
            {
                return true;
            }

            var fingerprint = Fingerprint(current, _fingerprint.Length);
            return !fingerprint.AsSpan().SequenceEqual(_fingerprint);
        }
        catch (IOException)
        {
            return false; // Mid-rotation; look again next poll.
        }
    }

    private async ValueTask<Pending?> TryReadLineAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            var newline = Array.IndexOf(_buffer, (byte)'\n', _bufferStart, _bufferEnd - _bufferStart);
            if (newline >= 0)
            {
                var start = _position;
                var length = newline - _bufferStart;
                var lineLength = length > 0 && _buffer[newline - 1] == (byte)'\r' ? length - 1 : length;
                var raw = _buffer.AsSpan(_bufferStart, lineLength).ToArray();
                _position += length + 1;
                _bufferStart = newline + 1;
                _lineNumber++;
                if (_fingerprint.Length < FingerprintMax && _position > _fingerprint.Length)
                {
                    RefreshFingerprint();
                }

                if (raw.Length == 0)
                {
                    // An empty line is settled at once so the offset can move past it.
                    var empty = new Pending(raw, start, _position, _lineNumber, _generation) { Done = true };
                    lock (_gate)
                    {
                        _pending.AddLast(empty);
                        if (_pending.First == _pending.Last)
                        {
                            _committed = empty.End;
                            _pending.RemoveFirst();
                        }
                    }

                    continue;
                }

                return new Pending(raw, start, _position, _lineNumber, _generation);
            }

            // No complete line buffered: compact and read more. A partial last line waits for its newline.
            if (_bufferEnd - _bufferStart > _maxLineBytes)
            {
                throw new InvalidDataException($"{_path}: line {_lineNumber + 1} is longer than {_maxLineBytes} bytes");
            }

            if (_bufferStart > 0)
            {
                Buffer.BlockCopy(_buffer, _bufferStart, _buffer, 0, _bufferEnd - _bufferStart);
                _bufferEnd -= _bufferStart;
                _bufferStart = 0;
            }

            if (_bufferEnd == _buffer.Length)
            {
                Array.Resize(ref _buffer, _buffer.Length * 2);
            }

            var read = await _stream!.ReadAsync(_buffer.AsMemory(_bufferEnd), cancellationToken).ConfigureAwait(false);
            if (read == 0)
            {
                return null;
            }

            _bufferEnd += read;
        }
    }

    private void RefreshFingerprint()
    {
        var fileOffset = _stream!.Position;
        _fingerprint = Fingerprint(_stream, FingerprintMax);
        _stream.Position = fileOffset;
    }

    private FileStream Open() => new(_path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 4096, useAsync: false);

    private static byte[] Fingerprint(FileStream stream, int length)
    {
        var n = (int)Math.Min(length, stream.Length);
        var bytes = new byte[n];
        stream.Position = 0;
        stream.ReadExactly(bytes);
        return bytes;
    }

    private void SaveOffsetIfDue(bool force)
    {
        long committed;
        lock (_gate)
        {
            committed = _committed;
        }

        if (_stream is null || committed == _saved || (!force && _time.GetUtcNow() - _lastSave < _commitInterval))
        {
            return;
        }

        var state = new OffsetState { Path = Path.GetFullPath(_path), Offset = committed, Fingerprint = Convert.ToBase64String(_fingerprint) };
        var temp = _offsetFile + ".tmp";
        using (var file = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            JsonSerializer.Serialize(file, state, OffsetJson.Default.OffsetState);
            file.Flush(flushToDisk: true);
        }

        File.Move(temp, _offsetFile, overwrite: true);
        _saved = committed;
        _lastSave = _time.GetUtcNow();
    }

    private (long Offset, byte[] Fingerprint)? ReadOffsetFile()
    {
        if (!File.Exists(_offsetFile))
        {
            return null;
        }

        try
        {
            using var file = File.OpenRead(_offsetFile);
            var state = JsonSerializer.Deserialize(file, OffsetJson.Default.OffsetState);
            return state is null ? null : (state.Offset, Convert.FromBase64String(state.Fingerprint ?? string.Empty));
        }
        catch (Exception ex) when (ex is JsonException or FormatException)
        {
            throw new InvalidDataException($"offset file '{_offsetFile}' is corrupt ({ex.Message}); delete it to read '{_path}' from the beginning", ex);
        }
    }

    /// <summary>Saves the final offset and closes the file.</summary>
    public ValueTask DisposeAsync()
    {
        SaveOffsetIfDue(force: true);
        _stream?.Dispose();
        return default;
    }

    private sealed class Pending(byte[] raw, long start, long end, long lineNumber, int generation)
    {
        public byte[] Raw { get; } = raw;

        public long Start { get; } = start;

        public long End { get; } = end;

        public long LineNumber { get; } = lineNumber;

        public int Generation { get; } = generation;

        public int DeliveryCount { get; set; } = 1;

        public bool Done { get; set; }
    }
}

/// <summary>The offset file's content.</summary>
internal sealed class OffsetState
{
    /// <summary>The followed file (for people reading the offset file).</summary>
    public string? Path { get; set; }

    /// <summary>Byte offset every earlier line has its final outcome up to.</summary>
    public long Offset { get; set; }

    /// <summary>Base64 of the file's first bytes (up to 256): its identity.</summary>
    public string? Fingerprint { get; set; }
}

[System.Text.Json.Serialization.JsonSerializable(typeof(OffsetState))]
[System.Text.Json.Serialization.JsonSourceGenerationOptions(PropertyNamingPolicy = System.Text.Json.Serialization.JsonKnownNamingPolicy.CamelCase, WriteIndented = true)]
internal sealed partial class OffsetJson : System.Text.Json.Serialization.JsonSerializerContext;
