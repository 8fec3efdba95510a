using System.Buffers;
using System.IO.Pipelines;
using Kawa.Dataflow.Cli.Events;

namespace Kawa.Dataflow.Cli.Sources;

/// <summary>
/// A finite source of lines: a file read once (<c>file</c> source, <c>mode: read</c>) or standard input (<c>stdin</c>).
/// Each non-empty line is one message whose <see cref="EventRecord.Raw"/> is the line without its <c>\n</c> or <c>\r\n</c>.
/// </summary>
/// <remarks>
/// <list type="bullet">
/// <item>Attributes: subject and stream are the source's name (the path, or <c>stdin</c>); the stream sequence is the
/// 1-based line number (empty lines count but are not delivered); delivery count; received-at from the
/// <see cref="TimeProvider"/>; payload size.</item>
/// <item>At-least-once within the run: a line that is negatively acked is delivered again (delivery count + 1) after
/// its delay; a terminated line is dropped for good. End of stream comes only once the input is exhausted <em>and</em>
/// every token has its final outcome, so a drain never loses a nacked line. While it waits for those outcomes it returns
/// <see cref="Delivery{T}.Idle"/> once, so a sink holding lines (an open Parquet file) commits them at once.</item>
/// <item>A line longer than the limit (default 1 MiB) is fatal: <see cref="InvalidDataException"/> naming the line.</item>
/// </list>
/// </remarks>
internal sealed class LineSource : ISource<EventRecord>, IAsyncDisposable, IDisposable
{
    private readonly PipeReader _reader;
    private readonly string _name;
    private readonly TimeProvider _time;
    private readonly int _maxLineBytes;
    private readonly Lock _gate = new();
    private readonly Queue<(Entry Entry, DateTimeOffset Due)> _redeliveries = new();
    private readonly SemaphoreSlim _outcomes = new(0);
    private Task<ReadResult>? _pendingRead;
    private long _lineNumber;
    private bool _exhausted;
    private int _outstanding;
    private bool _idleSignalled;

    /// <summary>Creates a source over <paramref name="stream"/>, which it owns and disposes.</summary>
    /// <param name="stream">The input.</param>
    /// <param name="name">Its name in attributes (a path, <c>stdin</c>).</param>
    /// <param name="timeProvider">The clock for received-at and redelivery delays; default the system clock.</param>
    /// <param name="maxLineBytes">The longest line accepted. Default 1 MiB.</param>
    public LineSource(Stream stream, string name, TimeProvider? timeProvider = null, int maxLineBytes = 1024 * 1024)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxLineBytes, 1);
        _reader = PipeReader.Create(stream, new StreamPipeReaderOptions(leaveOpen: false));
        _name = name;
        _time = timeProvider ?? TimeProvider.System;
        _maxLineBytes = maxLineBytes;
    }

    /// <summary>Opens a file for reading once.</summary>
    public static LineSource OpenFile(string path, TimeProvider? timeProvider = null)
        => new(new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 64 * 1024, useAsync: true), path, timeProvider);

    /// <summary>Lines acked.</summary>
    public long Acked { get; private set; }

    /// <summary>Lines terminated (dropped as poison).</summary>
    public long Terminated { get; private set; }

    /// <summary>Redeliveries made after a negative ack.</summary>
    public long Redelivered { get; private set; }

    /// <summary>The negatively acked lines waiting for redelivery, by line number, with when each is due (for tests and
    /// diagnostics).</summary>
    internal IReadOnlyList<(long LineNumber, DateTimeOffset Due)> ScheduledRedeliveries
    {
        get
        {
            lock (_gate)
            {
                return [.. _redeliveries.Select(r => (r.Entry.LineNumber, r.Due))];
            }
        }
    }

    /// <inheritdoc/>
    public async ValueTask<Delivery<EventRecord>> ReceiveAsync(CancellationToken cancellationToken = default)
    {
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            TimeSpan? wait = null;
            lock (_gate)
            {
                if (_redeliveries.TryPeek(out var next))
                {
                    var now = _time.GetUtcNow();
                    if (next.Due <= now)
                    {
                        _redeliveries.Dequeue();
                        Redelivered++;
                        return Deliver(next.Entry with { DeliveryCount = next.Entry.DeliveryCount + 1 });
                    }

                    wait = next.Due - now;
                }

                if (_exhausted && _outstanding == 0 && _redeliveries.Count == 0)
                {
                    return Delivery<EventRecord>.EndOfStream;
                }
            }

            if (!_exhausted)
            {
                var line = await ReadLineAsync(cancellationToken).ConfigureAwait(false);
                if (line is not null)
                {
                    lock (_gate)
                    {
                        return Deliver(line);
                    }
                }

                continue;
            }

            if (!_idleSignalled)
            {
                // Only outcomes are awaited now: say so once, so a sink holding lines (an open Parquet file) commits
                // them instead of waiting for its age limit.
                _idleSignalled = true;
                return Delivery<EventRecord>.Idle;
            }

            // Exhausted, with tokens still in flight or a redelivery not yet due: wait for an outcome or the due time.
            await OutcomeWait.ForOutcomeOrDueAsync(_outcomes.WaitAsync, wait, _time, cancellationToken).ConfigureAwait(false);
        }
    }

    private Delivery<EventRecord> Deliver(Entry entry)
    {
        _outstanding++;
        _idleSignalled = false;
        var message = LineMessage.Create(_name, entry.Raw, entry.LineNumber, entry.DeliveryCount, _time.GetUtcNow());
        return new Delivery<EventRecord>(message, AckToken.Create(outcome => OnOutcome(entry, outcome)));
    }

    private void OnOutcome(Entry entry, AckOutcome outcome)
    {
        lock (_gate)
        {
            _outstanding--;
            switch (outcome.Kind)
            {
                case AckKind.Ack:
                    Acked++;
                    break;
                case AckKind.Terminate:
                    Terminated++;
                    break;
                case AckKind.Nack:
                    _redeliveries.Enqueue((entry, _time.GetUtcNow() + outcome.Delay));
                    break;
            }
        }

        try
        {
            _outcomes.Release();
        }
        catch (ObjectDisposedException)
        {
            // A token settled after the source was disposed: nobody is waiting any more.
        }
    }

    // The next non-empty line, or null at the end of the input.
    private async ValueTask<Entry?> ReadLineAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            ReadResult result;
            var read = _pendingRead is null ? _reader.ReadAsync(cancellationToken) : default;
            if (_pendingRead is null && read.IsCompletedSuccessfully)
            {
                result = read.Result;
            }
            else
            {
                // Standard input ignores cancellation while it blocks in read(2): stop waiting for it instead, and keep
                // the read for the next call (a drain must not hang on a pipe that stays open).
                _pendingRead ??= read.AsTask();
                result = await _pendingRead.WaitAsync(cancellationToken).ConfigureAwait(false);
                _pendingRead = null;
            }

            var buffer = result.Buffer;
            var newline = buffer.PositionOf((byte)'\n');
            if (newline is null && !result.IsCompleted)
            {
                if (buffer.Length > _maxLineBytes)
                {
                    throw new InvalidDataException($"{_name}: line {_lineNumber + 1} is longer than {_maxLineBytes} bytes");
                }

                _reader.AdvanceTo(buffer.Start, buffer.End);
                continue;
            }

            if (newline is null && buffer.IsEmpty)
            {
                _reader.AdvanceTo(buffer.End);
                _exhausted = true;
                await _reader.CompleteAsync().ConfigureAwait(false);
                return null;
            }

            var lineBuffer = newline is { } nl ? buffer.Slice(0, nl) : buffer;
            var consumed = newline is { } n2 ? buffer.GetPosition(1, n2) : buffer.End;
            if (lineBuffer.Length > _maxLineBytes)
            {
                throw new InvalidDataException($"{_name}: line {_lineNumber + 1} is longer than {_maxLineBytes} bytes");
            }

            var bytes = lineBuffer.ToArray();
            _reader.AdvanceTo(consumed);
            _lineNumber++;
            var length = bytes.Length > 0 && bytes[^1] == (byte)'\r' ? bytes.Length - 1 : bytes.Length;
            if (length == 0)
            {
                continue;
            }

            return new Entry(length == bytes.Length ? bytes : bytes.AsMemory(0, length), _lineNumber, 1);
        }
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        await _reader.CompleteAsync().ConfigureAwait(false);
        _outcomes.Dispose();
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        _reader.Complete();
        _outcomes.Dispose();
    }

    private sealed record Entry(ReadOnlyMemory<byte> Raw, long LineNumber, int DeliveryCount);
}
