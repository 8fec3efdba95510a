using System.Buffers;
using System.IO.Pipelines;
using System.Text;

namespace Kawa.Dataflow;

/// <summary>Options for <see cref="DelimitedStreamSource{T}"/>.</summary>
public sealed class DelimitedStreamOptions
{
    /// <summary>The byte that ends a record. Default <c>'\n'</c>.</summary>
    public byte Delimiter { get; set; } = (byte)'\n';

    /// <summary>Whether a <c>'\r'</c> just before a <c>'\n'</c> delimiter is dropped, so CRLF files read like LF ones. Default <see langword="true"/>.</summary>
    public bool TrimCarriageReturn { get; set; } = true;

    /// <summary>The longest record accepted, in bytes, delimiter excluded. Default 1 MiB. A longer record stops the
    /// source with <see cref="RecordTooLongException"/> (fatal: skipping it silently would lose data).</summary>
    public int MaxRecordLength { get; set; } = 1024 * 1024;

    /// <summary>Whether empty records (blank lines) are skipped. Default <see langword="false"/>. Line numbers still count them.</summary>
    public bool SkipEmptyRecords { get; set; }

    /// <summary>The stream's name, set as the <see cref="MessageAttributeKeys.Stream"/> and <see cref="MessageAttributeKeys.Subject"/>
    /// attributes and the message topic (a file path, <c>stdin</c>). Default <c>stream</c>.</summary>
    public string Name { get; set; } = "stream";

    /// <summary>Whether the stream stays open when the source is disposed. Default <see langword="false"/>.</summary>
    public bool LeaveOpen { get; set; }

    /// <summary>The encoding of string records. Default UTF-8.</summary>
    public Encoding Encoding { get; set; } = Encoding.UTF8;

    internal void Validate()
    {
        var errors = new List<string>();
        if (MaxRecordLength < 1)
        {
            errors.Add($"DelimitedStreamOptions.MaxRecordLength must be at least 1 (was {MaxRecordLength}).");
        }

        if (string.IsNullOrEmpty(Name))
        {
            errors.Add("DelimitedStreamOptions.Name must not be empty.");
        }

        if (Encoding is null)
        {
            errors.Add("DelimitedStreamOptions.Encoding is required.");
        }

        if (errors.Count > 0)
        {
            throw new ArgumentException("Invalid delimited stream options: " + string.Join(" ", errors), "options");
        }
    }
}

/// <summary>A record in a delimited stream is longer than <see cref="DelimitedStreamOptions.MaxRecordLength"/>.</summary>
public sealed class RecordTooLongException : IOException
{
    /// <summary>Creates the exception.</summary>
    public RecordTooLongException()
        : base("A record is longer than the maximum record length.")
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public RecordTooLongException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and a cause.</summary>
    public RecordTooLongException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    internal RecordTooLongException(string stream, ulong recordNumber, int maxRecordLength)
        : base($"Record {recordNumber} of '{stream}' is longer than the maximum record length of {maxRecordLength} bytes (no delimiter within {maxRecordLength} bytes). Raise DelimitedStreamOptions.MaxRecordLength or check the delimiter.")
    {
        Stream = stream;
        RecordNumber = recordNumber;
        MaxRecordLength = maxRecordLength;
    }

    /// <summary>The stream's name.</summary>
    public string? Stream { get; }

    /// <summary>The 1-based number of the record that was too long.</summary>
    public ulong RecordNumber { get; }

    /// <summary>The limit it broke.</summary>
    public int MaxRecordLength { get; }
}

/// <summary>Creates <see cref="DelimitedStreamSource{T}"/>s (Kawa's scanner).</summary>
public static class DelimitedStreamSource
{
    /// <summary>Records as raw bytes.</summary>
    /// <param name="stream">The stream to read; read to its end.</param>
    /// <param name="options">The options; <see langword="null"/> for the defaults.</param>
    /// <param name="onOutcome">Told each record's number and final outcome (a stream cannot redeliver).</param>
    public static DelimitedStreamSource<byte[]> ForBytes(Stream stream, DelimitedStreamOptions? options = null, Action<ulong, AckOutcome>? onOutcome = null)
        => new(stream, options ?? new(), static (record, _) => record.ToArray(), onOutcome);

    /// <summary>Records decoded as strings with <see cref="DelimitedStreamOptions.Encoding"/>.</summary>
    /// <param name="stream">The stream to read; read to its end.</param>
    /// <param name="options">The options; <see langword="null"/> for the defaults.</param>
    /// <param name="onOutcome">Told each record's number and final outcome (a stream cannot redeliver).</param>
    public static DelimitedStreamSource<string> ForStrings(Stream stream, DelimitedStreamOptions? options = null, Action<ulong, AckOutcome>? onOutcome = null)
        => new(stream, options ?? new(), static (record, encoding) => encoding.GetString(record), onOutcome);
}

/// <summary>
/// A source that reads a stream with System.IO.Pipelines and splits it into delimited records (Kawa's scanner):
/// log files, stdin, NDJSON.
/// </summary>
/// <typeparam name="T">The record type: <c>byte[]</c> or <see cref="string"/>.</typeparam>
/// <remarks>
/// <list type="bullet">
/// <item>Each record becomes a message with topic and <see cref="MessageAttributeKeys.Subject"/>/<see cref="MessageAttributeKeys.Stream"/>
/// set to <see cref="DelimitedStreamOptions.Name"/>, <see cref="MessageAttributeKeys.StreamSequence"/> set to its 1-based
/// record (line) number and <see cref="MessageAttributeKeys.PayloadSize"/> to its length in bytes.</item>
/// <item>A last record without a trailing delimiter is delivered; then the stream ends (and stays ended).</item>
/// <item>A record over <see cref="DelimitedStreamOptions.MaxRecordLength"/> is fatal (<see cref="RecordTooLongException"/>).</item>
/// </list>
/// </remarks>
public sealed class DelimitedStreamSource<T> : ISource<T>, IAsyncDisposable
{
    private readonly PipeReader _reader;
    private readonly DelimitedStreamOptions _options;
    private readonly Func<ReadOnlySequence<byte>, Encoding, T> _decode;
    private readonly Action<ulong, AckOutcome>? _onOutcome;
    private readonly MessageAttributes _baseAttributes;
    private ulong _recordNumber;
    private long _scanned;
    private bool _ended;
    private Exception? _failure;

    internal DelimitedStreamSource(Stream stream, DelimitedStreamOptions options, Func<ReadOnlySequence<byte>, Encoding, T> decode, Action<ulong, AckOutcome>? onOutcome)
    {
        ArgumentNullException.ThrowIfNull(stream);
        options.Validate();
        _options = options;
        _decode = decode;
        _onOutcome = onOutcome;
        _reader = PipeReader.Create(stream, new StreamPipeReaderOptions(leaveOpen: options.LeaveOpen));
        _baseAttributes = MessageAttributes.CreateBuilder(4)
            .Set(MessageAttributeKeys.Subject, options.Name)
            .Set(MessageAttributeKeys.Stream, options.Name)
            .Build();
    }

    /// <inheritdoc/>
    public async ValueTask<Delivery<T>> ReceiveAsync(CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        if (_failure is not null)
        {
            // A broken record stops the source for good: every later receive reports the same failure.
            throw _failure;
        }

        try
        {
            return await ReceiveCoreAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (RecordTooLongException ex)
        {
            _failure = ex;
            throw;
        }
    }

    private async ValueTask<Delivery<T>> ReceiveCoreAsync(CancellationToken cancellationToken)
    {
        while (!_ended)
        {
            var result = await _reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            var buffer = result.Buffer;
            if (TryTakeRecord(ref buffer, result.IsCompleted, out var record, out var length))
            {
                var message = Decode(record, length);
                _reader.AdvanceTo(buffer.Start);
                if (message is null)
                {
                    continue; // an empty record, skipped
                }

                return message.Value;
            }

            if (buffer.Length > _options.MaxRecordLength + (_options.TrimCarriageReturn ? 1 : 0))
            {
                throw new RecordTooLongException(_options.Name, _recordNumber + 1, _options.MaxRecordLength);
            }

            if (result.IsCompleted)
            {
                _ended = true;
                _reader.AdvanceTo(buffer.End);
                await _reader.CompleteAsync().ConfigureAwait(false);
                break;
            }

            // Nothing complete yet: keep what was read and ask for more.
            _reader.AdvanceTo(buffer.Start, buffer.End);
        }

        return Delivery<T>.EndOfStream;
    }

    /// <summary>Stops reading; closes the stream unless <see cref="DelimitedStreamOptions.LeaveOpen"/>.</summary>
    public async ValueTask DisposeAsync()
    {
        _ended = true;
        await _reader.CompleteAsync().ConfigureAwait(false);
    }

    // Takes one record off the front of buffer. At the end of the stream the rest, if any, is the last record.
    private bool TryTakeRecord(ref ReadOnlySequence<byte> buffer, bool isCompleted, out ReadOnlySequence<byte> record, out int length)
    {
        // Search only the bytes not searched before: a long record arriving in many reads is scanned once.
        var position = buffer.Slice(_scanned).PositionOf(_options.Delimiter);
        if (position is null)
        {
            _scanned = buffer.Length;
            if (isCompleted && !buffer.IsEmpty)
            {
                _scanned = 0;
                record = buffer;
                buffer = buffer.Slice(buffer.End);
                length = CheckLength(record.Length);
                return true;
            }

            record = default;
            length = 0;
            return false;
        }

        _scanned = 0;
        record = buffer.Slice(0, position.Value);
        buffer = buffer.Slice(buffer.GetPosition(1, position.Value));
        if (_options.TrimCarriageReturn && _options.Delimiter == (byte)'\n' && !record.IsEmpty && EndsWithCarriageReturn(record))
        {
            record = record.Slice(0, record.Length - 1);
        }

        length = CheckLength(record.Length);
        return true;
    }

    private int CheckLength(long length)
    {
        if (length > _options.MaxRecordLength)
        {
            throw new RecordTooLongException(_options.Name, _recordNumber + 1, _options.MaxRecordLength);
        }

        return (int)length;
    }

    private static bool EndsWithCarriageReturn(ReadOnlySequence<byte> record)
    {
        var last = record.Slice(record.Length - 1);
        return last.FirstSpan[0] == (byte)'\r';
    }

    private Delivery<T>? Decode(ReadOnlySequence<byte> record, int length)
    {
        var number = ++_recordNumber;
        if (length == 0 && _options.SkipEmptyRecords)
        {
            return null;
        }

        var attributes = _baseAttributes
            .With(MessageAttributeKeys.StreamSequence, number)
            .With(MessageAttributeKeys.PayloadSize, length);
        var message = new Message<T>(_decode(record, _options.Encoding), Topic: _options.Name, Attributes: attributes);
        var onOutcome = _onOutcome;
        var token = onOutcome is null ? AckToken.None() : AckToken.Create(outcome => onOutcome(number, outcome));
        return new Delivery<T>(message, token);
    }
}
